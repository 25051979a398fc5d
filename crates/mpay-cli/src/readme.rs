//! Every command README.md shows in its `sh` blocks parses with the real
//! command-line definition ([`crate::Cli`]), with the environment the block
//! sets (`export VAR=…` and `VAR=… mpay …`) standing for clap's `env`.
//! A line that would not run in a shell as written (a `<placeholder>`, an
//! ellipsis) fails the test too.

use std::collections::BTreeMap;

use clap::{Command, CommandFactory, FromArgMatches};

use crate::Cli;

const README: &str = include_str!("../../../README.md");

/// The lines of the README's ```` ```sh ```` blocks, with their line numbers.
fn sh_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut in_sh = false;
    let mut in_other = false;
    for (index, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        if fence && !in_sh && !in_other {
            in_sh = line.trim() == "```sh";
            in_other = !in_sh;
        } else if fence {
            in_sh = false;
            in_other = false;
        } else if in_sh && !line.trim().is_empty() {
            lines.push((index + 1, line.to_owned()));
        }
    }
    lines
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

#[test]
fn every_readme_command_parses() {
    let mut env = BTreeMap::new();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (number, line) in sh_lines(README) {
        let words = match words(&line) {
            Ok(words) => words,
            Err(why) => {
                failures.push(format!("README.md:{number}: {why}: {line}"));
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
            Ok(_) => checked += 1,
            Err(e) => failures.push(format!(
                "README.md:{number}: {line}\n{}",
                e.render().to_string().trim_end()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "README commands that do not parse:\n\n{}",
        failures.join("\n\n")
    );
    assert!(
        checked >= 20,
        "only {checked} mpay commands found in README.md"
    );
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
