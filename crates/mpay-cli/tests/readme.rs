//! The README's money-office and wallet block runs as written, line by
//! line, in bash on a clean machine (issue 16: parsing every command, which
//! `src/readme.rs` checks, does not show that it runs: an amount the command
//! refuses, a token it will not send, a step missing).
//!
//! What the test changes, and why: the office's port (a free one instead of
//! 7700, with `MPAY_OFFICE_URL` saying so to the commands that take the
//! default), the PIN (`MPAY_PIN`, where a person types it at the prompt), the
//! wallets' multicast group (this test's own), and a wait after each line
//! sent to the background (until the office answers; two seconds for the
//! buyer). Nothing else of the environment reaches the commands.

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

/// The block as a bash script: the office on `port`, a wait after each
/// background line, then the check's own commands.
fn script(block: &[String], port: u16) -> String {
    let mut script =
        String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    for line in block {
        let line = line.replace("127.0.0.1:7700", &format!("127.0.0.1:{port}"));
        script.push_str(&line);
        script.push('\n');
        let command = line.split(" #").next().unwrap_or_default().trim_end();
        if !command.ends_with('&') {
            continue;
        }
        if command.contains("office serve") {
            script.push_str(&format!(
                "for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && \
                 break; sleep 0.1; done\n"
            ));
        } else {
            script.push_str("background=$!\nsleep 2\n");
        }
    }
    script.push_str(
        "wait \"$background\"\n\
         echo '== the check'\n\
         mpay wallet --dir alice balance --json\n\
         mpay wallet --dir sam balance --json\n\
         MPAY_OWNER_TOKEN=$alice_token mpay office account --json\n\
         MPAY_OWNER_TOKEN=$sam_token mpay office account --json\n",
    );
    script
}

#[test]
fn the_readme_wallet_block_runs_as_written() {
    let readme_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(readme_path).expect("README.md");
    let block = sh_block(&readme, "mpay wallet --dir alice init");
    let port = free_tcp_port();
    let group = common::free_udp_port();
    let root = tempfile::tempdir().expect("temp dir");
    let bin_dir = std::path::Path::new(common::mpay_bin())
        .parent()
        .expect("the binary's folder")
        .to_owned();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let mut bash = Command::new("bash");
    bash.arg("-c")
        .arg(script(&block, port))
        .current_dir(root.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", root.path())
        .env("MPAY_PIN", common::PIN)
        .env("MPAY_OFFICE_URL", format!("http://127.0.0.1:{port}"))
        .env(
            "MPAY_WALLET_BROADCAST",
            format!("multicast:239.255.79.1:{group}"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = bash.spawn().expect("bash starts");
    let ran = common::finish(child, 120, "the README's wallet block");
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
