//! Every command the project's Markdown shows (README.md, ARCHITECTURE.md,
//! docs/…) parses with the real command-line definition ([`crate::Cli`]),
//! with the environment the block sets (`export VAR=…` and `VAR=… mpay …`)
//! standing for clap's `env`. A line that would not run in a shell as
//! written (a `<placeholder>`, an ellipsis) fails the test too.
//!
//! Shell blocks are fenced ```` ```sh ```` (or `bash`, `shell`). A command in
//! a block fenced otherwise (```` ``` ````, `console`) fails the test: such a
//! block is not read, so a command in it could break unseen (issue 16: the
//! wallet example that did not run sat where no test looked). Output is
//! fenced ```` ```text ````.

use std::collections::BTreeMap;

use clap::{Command, CommandFactory, FromArgMatches};

use crate::Cli;

/// The fence languages of shell blocks, whose every line is checked.
const SHELL_FENCES: [&str; 3] = ["sh", "bash", "shell"];
/// Fences whose blocks hold no command to check: a command in any other
/// block (no language, `console`) is refused.
fn is_other_language(fence: &str) -> bool {
    !fence.is_empty() && fence != "console" && !SHELL_FENCES.contains(&fence)
}

/// A line of a fenced block.
#[derive(Debug, PartialEq, Eq)]
enum BlockLine {
    /// In a shell block: to be run as written.
    Shell(usize, String),
    /// A command in a block that is not a shell block, so not checked.
    Unchecked(usize, String),
}

/// The lines of a Markdown text's fenced blocks that a test must look at,
/// with their line numbers.
fn block_lines(text: &str) -> Vec<BlockLine> {
    let mut lines = Vec::new();
    let mut fence: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                None => Some(info.split_whitespace().next().unwrap_or("").to_owned()),
                Some(_) => None,
            };
            continue;
        }
        let Some(language) = fence.as_deref() else {
            continue;
        };
        if trimmed.is_empty() || is_other_language(language) {
            continue;
        }
        if SHELL_FENCES.contains(&language) {
            lines.push(BlockLine::Shell(index + 1, line.to_owned()));
        } else if looks_like_a_command(trimmed) {
            lines.push(BlockLine::Unchecked(index + 1, line.to_owned()));
        }
    }
    lines
}

/// Whether a line (of a block that is not a shell block) reads as an mpay
/// command: `mpay …`, `$ mpay …`, `VAR=… mpay …` or `cargo run … -- …`.
fn looks_like_a_command(line: &str) -> bool {
    let line = line.strip_prefix("$ ").unwrap_or(line);
    let mut rest = line
        .split_whitespace()
        .skip_while(|w| assignment(w).is_some());
    match rest.next() {
        Some("mpay") => true,
        Some("cargo") => rest.next() == Some("run"),
        _ => false,
    }
}

/// The Markdown files of the repository (not under `target` or a hidden
/// folder), relative to its root, sorted.
fn markdown_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.starts_with("target") || name == "node_modules" {
                continue;
            }
            if path.is_dir() {
                walk(&path, files);
            } else if name.ends_with(".md") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    files.sort();
    files
}

/// Splits a shell line into words: quotes group, `#` starts a comment, a
/// trailing `&` runs it in the background. Errors on what a shell would not
/// take as written.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c == '#' && !in_word => break,
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None if c == '<' || c == '>' || c == '|' || c == ';' => {
                return Err(format!("`{c}` outside quotes (a placeholder?)"));
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("an unclosed quote".to_owned());
    }
    if in_word {
        words.push(word);
    }
    if words.last().is_some_and(|w| w == "&") {
        words.pop();
    }
    if words.iter().any(|w| w.contains('…')) {
        return Err("an ellipsis stands for something left out".to_owned());
    }
    Ok(words)
}

/// `NAME=value` as a shell assignment.
fn assignment(word: &str) -> Option<(String, String)> {
    let (name, value) = word.split_once('=')?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_lowercase() || c == '_');
    valid.then(|| (name.to_owned(), value.to_owned()))
}

/// The mpay command line of a shell line (without `mpay`), or None for a
/// line that runs no mpay command. `env` collects `export`s.
fn mpay_args(
    words: &[String],
    env: &mut BTreeMap<String, String>,
) -> Option<(Vec<String>, BTreeMap<String, String>)> {
    let mut rest = words;
    if rest.first().is_some_and(|w| w == "export") {
        for word in &rest[1..] {
            if let Some((name, value)) = assignment(word) {
                env.insert(name, value);
            }
        }
        return None;
    }
    // `x=$(mpay …)`: the command inside the substitution.
    if let Some(inner) = words
        .first()
        .and_then(|w| w.split_once("=$("))
        .map(|(_, after)| after)
    {
        let mut inner_words = vec![inner.to_owned()];
        inner_words.extend(words[1..].iter().cloned());
        let last = inner_words.last_mut()?;
        *last = last.strip_suffix(')')?.to_owned();
        return mpay_args(&inner_words, env);
    }
    let mut line_env = env.clone();
    while let Some((name, value)) = rest.first().and_then(|w| assignment(w)) {
        line_env.insert(name, value);
        rest = &rest[1..];
    }
    match rest {
        [first, args @ ..] if first == "mpay" => Some((args.to_vec(), line_env)),
        [cargo, run, tail @ ..] if cargo == "cargo" && run == "run" => {
            let split = tail.iter().position(|w| w == "--")?;
            Some((tail[split + 1..].to_vec(), line_env))
        }
        _ => None,
    }
}

/// The CLI's definition with every option clap would read from an
/// environment variable the block sets defaulting to that value instead.
fn with_env(command: Command, env: &BTreeMap<String, String>) -> Command {
    let command = command.mut_args(|arg| {
        let value = arg
            .get_env()
            .and_then(|name| name.to_str())
            .and_then(|name| env.get(name))
            .cloned();
        match value {
            // A test's few bytes: leaked, as clap's builder takes `&'static str`.
            Some(value) => arg
                .default_value(&*Box::leak(value.into_boxed_str()))
                .required(false),
            None => arg,
        }
    });
    command.mut_subcommands(|sub| with_env(sub, env))
}

/// The failures of one Markdown file's commands; `checked` counts those
/// that parse.
fn check_markdown(name: &str, text: &str, checked: &mut usize) -> Vec<String> {
    let mut env = BTreeMap::new();
    let mut failures = Vec::new();
    for block_line in block_lines(text) {
        let (number, line) = match block_line {
            BlockLine::Shell(number, line) => (number, line),
            BlockLine::Unchecked(number, line) => {
                failures.push(format!(
                    "{name}:{number}: a command in a block not fenced ```sh (so never \
                     checked; fence output as ```text): {line}"
                ));
                continue;
            }
        };
        let words = match words(&line) {
            Ok(words) => words,
            Err(why) => {
                failures.push(format!("{name}:{number}: {why}: {line}"));
                continue;
            }
        };
        let Some((args, line_env)) = mpay_args(&words, &mut env) else {
            continue;
        };
        let command = with_env(Cli::command(), &line_env);
        let parsed = command
            .try_get_matches_from(std::iter::once("mpay".to_owned()).chain(args))
            .and_then(|matches| Cli::from_arg_matches(&matches));
        match parsed {
            Ok(_) => *checked += 1,
            Err(e) => failures.push(format!(
                "{name}:{number}: {line}\n{}",
                e.render().to_string().trim_end()
            )),
        }
    }
    failures
}

#[test]
fn every_readme_command_parses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let files = markdown_files(&root);
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(&root).ok())
        .map(|f| f.display().to_string())
        .collect();
    for expected in ["README.md", "ARCHITECTURE.md", "docs/benchmarks.md"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for (file, name) in files.iter().zip(&names) {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        failures.extend(check_markdown(name, &text, &mut checked));
    }
    assert!(
        failures.is_empty(),
        "commands in the Markdown that do not parse:\n\n{}",
        failures.join("\n\n")
    );
    assert!(
        checked >= 30,
        "only {checked} mpay commands found in the Markdown"
    );
}

/// A command sits where the check reads it: in a shell block, not in an
/// unmarked block or one of another language.
#[test]
fn commands_outside_shell_blocks_are_refused() {
    let text = "```sh\nmpay demo\n```\n\n```\nmpay wallet --dir a nonsense\n```\n\n\
                ```text\nmpay demo — seed 7\n```\n\n```python\nimport x\n```\n\n\
                ```console\n$ MPAY_PIN=1 mpay wallet balance\nbalance 1.00 EUR\n```\n";
    assert_eq!(
        block_lines(text),
        vec![
            BlockLine::Shell(2, "mpay demo".to_owned()),
            BlockLine::Unchecked(6, "mpay wallet --dir a nonsense".to_owned()),
            BlockLine::Unchecked(18, "$ MPAY_PIN=1 mpay wallet balance".to_owned()),
        ]
    );
    let mut checked = 0;
    let failures = check_markdown("x.md", text, &mut checked);
    assert_eq!(checked, 1);
    assert_eq!(failures.len(), 2, "{failures:?}");
    // The wallet example of issue 16, in a shell block: its options before
    // the subcommand parse.
    let wallet = "```sh\nexport MPAY_OWNER_TOKEN=t\nmpay wallet --dir alice init --office \
                  http://127.0.0.1:7700 --owner alice\nmpay wallet --dir alice charge 5.00\n```\n";
    assert_eq!(
        check_markdown("y.md", wallet, &mut checked),
        Vec::<String>::new()
    );
    assert_eq!(checked, 3);
    let broken = "```sh\nmpay wallet --dir alice nonsense\n```\n";
    assert_eq!(check_markdown("z.md", broken, &mut checked).len(), 1);
}

#[test]
fn the_shell_splitter_reads_what_a_shell_reads() {
    assert_eq!(
        words(r#"A=1 mpay x --deposit "2.00 EUR" 'q&r' &   # note"#),
        Ok(vec![
            "A=1".to_owned(),
            "mpay".to_owned(),
            "x".to_owned(),
            "--deposit".to_owned(),
            "2.00 EUR".to_owned(),
            "q&r".to_owned()
        ])
    );
    assert!(words("mpay approve <payment id>").is_err());
    assert!(words("mpay pay 'mpay:trans?d=…'").is_err());
    let mut env = BTreeMap::new();
    assert_eq!(
        mpay_args(&words("export X=1").unwrap_or_default(), &mut env),
        None
    );
    assert_eq!(env.get("X").map(String::as_str), Some("1"));
    let (args, line_env) =
        mpay_args(&words("t=$(Y=2 mpay a b)").unwrap_or_default(), &mut env).unwrap_or_default();
    assert_eq!(args, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(line_env.get("X").map(String::as_str), Some("1"));
}

/// Every option and argument of every command says what it is in `--help`.
#[test]
fn every_option_has_a_description() {
    fn walk(command: &Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_hide_set() || id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_about().is_none() && sub.get_name() != "help" {
                missing.push(format!("{path} {} (no description)", sub.get_name()));
            }
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(&Cli::command(), "mpay", &mut missing);
    assert!(
        missing.is_empty(),
        "options without a description:\n{}",
        missing.join("\n")
    );
}

/// The wallet's exit codes as README.md lists them in one sentence
/// (`Exit codes: 0 done, 1 …, 2 …`): each code's words, in order.
fn readme_wallet_exit_codes(readme: &str) -> Vec<(u8, String)> {
    let start = readme
        .find("prints one JSON object (failures too). Exit codes: ")
        .map(|i| i + "prints one JSON object (failures too). Exit codes: ".len());
    let Some(start) = start else {
        return Vec::new();
    };
    let text: String = readme[start..]
        .split("`--drop-permille")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut codes = Vec::new();
    let mut rest = text.as_str();
    let mut code = 0u8;
    // Each code starts the text or follows ", " and is followed by a space.
    while let Some(after) = rest.strip_prefix(&format!("{code} ")) {
        let next = format!(", {} ", code + 1);
        let (words, tail) = after.split_once(&next).unwrap_or((after, ""));
        codes.push((code, words.trim_end_matches('.').to_owned()));
        rest = if tail.is_empty() {
            ""
        } else {
            &after[words.len() + 2..]
        };
        code += 1;
    }
    codes
}

/// The wallet's exit codes as `mpay wallet --help` lists them, one a line
/// (continuation lines joined).
fn help_wallet_exit_codes(help: &str) -> Vec<(u8, String)> {
    let mut codes: Vec<(u8, String)> = Vec::new();
    let listing = help
        .split("Exit codes:\n")
        .nth(1)
        .unwrap_or_default()
        .split("\n\n")
        .next()
        .unwrap_or_default();
    for line in listing.lines() {
        let trimmed = line.trim();
        let (first, words) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
        match first.parse::<u8>() {
            Ok(code) if line.starts_with("  ") && !line.starts_with("      ") => {
                codes.push((code, words.trim().to_owned()));
            }
            _ => {
                if let Some((_, words)) = codes.last_mut() {
                    words.push(' ');
                    words.push_str(trimmed);
                }
            }
        }
    }
    codes
}

/// README.md and `mpay wallet --help` list the same exit codes, and each
/// cause under one code only: "the office refused" is code 1, not also 6
/// (issue 16).
#[test]
fn the_wallet_exit_codes_agree_between_readme_and_help() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
    let in_readme = readme_wallet_exit_codes(&readme);
    let in_help = help_wallet_exit_codes(crate::wallet::EXIT_CODES_HELP);
    let numbers = |codes: &[(u8, String)]| codes.iter().map(|(c, _)| *c).collect::<Vec<u8>>();
    let all: Vec<u8> = (0..=11).collect();
    assert_eq!(numbers(&in_readme), all, "README: {in_readme:?}");
    assert_eq!(numbers(&in_help), all, "help: {in_help:?}");
    for codes in [&in_readme, &in_help] {
        let office_refused: Vec<u8> = codes
            .iter()
            .filter(|(_, words)| words.contains("office") && words.contains("refused"))
            .map(|(c, _)| *c)
            .collect();
        assert_eq!(office_refused, vec![1], "{codes:?}");
        let several: Vec<u8> = codes
            .iter()
            .filter(|(_, words)| words.contains("several buyers"))
            .map(|(c, _)| *c)
            .collect();
        assert_eq!(several, vec![11], "{codes:?}");
    }
    // The reader of the parsers: a code listed twice, or out of order, ends
    // the list where it goes wrong.
    assert_eq!(
        readme_wallet_exit_codes(
            "x prints one JSON object (failures too). Exit codes: 0 done, 1 a, b, 2 c, 2 d."
        ),
        vec![
            (0, "done".to_owned()),
            (1, "a, b".to_owned()),
            (2, "c, 2 d".to_owned())
        ]
    );
}
