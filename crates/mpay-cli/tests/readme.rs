//! The README's money-office and wallet block and its SEMOPS block run as
//! written, in bash on a clean machine (issue 16: parsing every command,
//! which `src/readme.rs` checks, does not show that it runs: an amount the
//! command refuses, a token it will not send, a step missing).
//!
//! What the tests change, and why: the office's port (a free one instead of
//! 7700, with `MPAY_OFFICE_URL` saying so to the commands that take the
//! default), the PIN of the wallets (`MPAY_PIN`, where a person types it at
//! the prompt), the wallets' multicast group (the test's own), and a wait
//! after each line sent to the background (until the office answers, until
//! the network says it is running, a second for the buyer). Nothing else of
//! the environment reaches the commands.

mod common;

use std::process::{Command, Stdio};

/// The ```` ```sh ```` block of README.md that holds `needle`.
fn sh_block(readme: &str, needle: &str) -> Vec<String> {
    let mut block = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            if in_sh && block.iter().any(|l: &String| l.contains(needle)) {
                return block;
            }
            in_sh = !in_sh && line.trim() == "```sh";
            block.clear();
        } else if in_sh {
            block.push(line.to_owned());
        }
    }
    panic!("README.md has no sh block with {needle:?}")
}

/// A free TCP port on loopback (bound and released).
fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port()
}

/// How a block runs: what changes in its lines, what to wait for after a
/// line sent to the background, and the check's own commands at the end.
struct Harness<'a> {
    /// `(written, instead)` replacements in every line.
    replace: Vec<(String, String)>,
    /// Waits after a background line holding the key.
    waits: Vec<(&'a str, String)>,
    /// Commands run after the block.
    tail: &'a str,
}

/// The longest a harness wait lasts, in tenths of a second.
const WAIT_TENTHS_MAX: u32 = 900;

/// The block as a bash script: each background line followed by its wait
/// (the last one's pid in `$background`), then the harness's tail. The
/// script's stdout is `out.log` in its folder, so a wait can read it.
fn script(block: &[String], harness: &Harness) -> String {
    let mut script =
        String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    for line in block {
        let mut line = line.clone();
        for (written, instead) in &harness.replace {
            line = line.replace(written, instead);
        }
        script.push_str(&line);
        script.push('\n');
        let command = line.split(" #").next().unwrap_or_default().trim_end();
        if !command.ends_with('&') {
            continue;
        }
        script.push_str("background=$!\n");
        if let Some((_, ready)) = harness.waits.iter().find(|(key, _)| command.contains(key)) {
            script.push_str(&format!(
                "for _ in $(seq {WAIT_TENTHS_MAX}); do {ready} && break; sleep 0.1; done\n{ready}\n"
            ));
        }
    }
    script.push_str(harness.tail);
    script
}

/// Runs `script` in bash in `dir` with nothing of this process's
/// environment but `PATH` (the `mpay` under test first) and `env`.
fn run_script(script: &str, dir: &std::path::Path, env: &[(&str, String)]) -> common::Run {
    let bin_dir = std::path::Path::new(common::mpay_bin())
        .parent()
        .expect("the binary's folder")
        .to_owned();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let log = std::fs::File::create(dir.join("out.log")).expect("out.log");
    let mut bash = Command::new("bash");
    bash.arg("-c")
        .arg(script)
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::piped());
    let child = bash.spawn().expect("bash starts");
    let mut ran = common::finish(child, 240, "a README block");
    ran.stdout = std::fs::read_to_string(dir.join("out.log")).unwrap_or_default();
    ran
}

fn readme() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    std::fs::read_to_string(path).expect("README.md")
}

#[test]
fn the_readme_wallet_block_runs_as_written() {
    let block = sh_block(&readme(), "mpay wallet --dir alice init");
    let port = free_tcp_port();
    let group = common::free_udp_port();
    let root = tempfile::tempdir().expect("temp dir");
    let harness = Harness {
        replace: vec![("127.0.0.1:7700".into(), format!("127.0.0.1:{port}"))],
        waits: vec![
            (
                "office serve",
                format!("(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null"),
            ),
            ("wallet", "sleep 1".to_owned()),
        ],
        tail: "wait \"$background\"\n\
               echo '== the check'\n\
               mpay wallet --dir alice balance --json\n\
               mpay wallet --dir sam balance --json\n\
               MPAY_OWNER_TOKEN=$alice_token mpay office account --json\n\
               MPAY_OWNER_TOKEN=$sam_token mpay office account --json\n",
    };
    let ran = run_script(
        &script(&block, &harness),
        root.path(),
        &[
            ("MPAY_PIN", common::PIN.to_owned()),
            ("MPAY_OFFICE_URL", format!("http://127.0.0.1:{port}")),
            (
                "MPAY_WALLET_BROADCAST",
                format!("multicast:239.255.79.1:{group}"),
            ),
        ],
    );
    assert_eq!(ran.code, 0, "{ran:?}");
    // The line the README comments: alice's office account after the charge.
    assert!(
        ran.stdout.contains("owner alice: balance 150.00 EUR"),
        "{ran:?}"
    );
    assert!(ran.stdout.contains("no double spends caught"), "{ran:?}");
    let check: Vec<serde_json::Value> = ran
        .stdout
        .split("== the check\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(check.len(), 4, "{ran:?}");
    let minor = |v: &serde_json::Value, field: &str| v[field].as_i64().unwrap_or(-1);
    let wallets = minor(&check[0], "balance_minor")
        + minor(&check[0], "locked_minor")
        + minor(&check[1], "balance_minor")
        + minor(&check[1], "locked_minor");
    let accounts: i64 = check[2..]
        .iter()
        .map(|a| common::minor(a["balance"].as_str().unwrap_or_default()))
        .sum();
    // sam sold alice 3.50 EUR; the 200.00 EUR paid in are all still there.
    assert_eq!(minor(&check[1], "balance_minor"), 350, "{ran:?}");
    assert_eq!(wallets + accounts, 20_000, "{ran:?}");
}

/// The SEMOPS block: a network up on loopback, a payment approved and part
/// refunded, `reconcile` (exit 2 on any mismatch of books or money across
/// banks) before the network is stopped as the README says.
#[test]
fn the_readme_semops_block_runs_as_written() {
    let block = sh_block(&readme(), "mpay network up");
    let root = tempfile::tempdir().expect("temp dir");
    let harness = Harness {
        replace: Vec::new(),
        waits: vec![(
            "network up",
            "grep -q '^running; SIGTERM or Ctrl-C stops every process' out.log".to_owned(),
        )],
        tail: "wait \"$background\"\n",
    };
    let ran = run_script(&script(&block, &harness), root.path(), &[]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("refund of 2.50 EUR"), "{ran:?}");
    assert!(
        ran.stdout
            .contains("reconciled: nothing lost, nothing doubled"),
        "{ran:?}"
    );
}
