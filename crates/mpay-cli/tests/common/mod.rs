//! Real processes for the end-to-end tests: one `mpay office serve` on a
//! free loopback port with SQLite in a temporary directory, and wallets in
//! their own directories driven through `mpay wallet …`.
#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const PIN: &str = "2468";
pub const ADMIN_TOKEN: &str = "e2e-admin-token";
/// Longest any one CLI process may run in these tests.
pub const PROCESS_SECS_MAX: u64 = 45;

pub fn mpay_bin() -> &'static str {
    env!("CARGO_BIN_EXE_mpay")
}

/// A `mpay` command with the environment of a clean machine: none of the
/// variables the CLI reads are inherited from the test runner.
pub fn mpay() -> Command {
    let mut command = Command::new(mpay_bin());
    for var in [
        "MPAY_WALLET_DIR",
        "MPAY_PIN",
        "MPAY_NEW_PIN",
        "MPAY_OWNER_TOKEN",
        "MPAY_OFFICE_URL",
        "MPAY_WALLET_BIND",
        "MPAY_WALLET_BROADCAST",
        "MPAY_OFFICE_ADMIN_TOKEN",
        "MPAY_OFFICE_LISTEN",
        "MPAY_OFFICE_DB",
        mpay_tls::ENV_TLS_CA,
    ] {
        command.env_remove(var);
    }
    // The standalone office of these tests serves plaintext on loopback,
    // so its owners' and operator's tokens travel there by the operator's
    // explicit allowance; a provisioned network is TLS and needs none.
    command.env(mpay_tls::ENV_ALLOW_PLAINTEXT_LOOPBACK, "1");
    command.stdin(Stdio::null());
    command
}

/// What a finished process said.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The one JSON object a `--json` command prints.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {self:?}"))
    }

    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Waits for `child` at most `secs`; kills it (and panics) beyond.
pub fn finish(child: Child, secs: u64, what: &str) -> Run {
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!("{what} ran over {secs} s: {:?}", Run::from_output(out));
            }
        }
    }
    Run::from_output(child.wait_with_output().expect("output"))
}

/// Runs `command` to its end (at most [`PROCESS_SECS_MAX`]).
pub fn run(mut command: Command, what: &str) -> Run {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("mpay starts");
    finish(child, PROCESS_SECS_MAX, what)
}

/// A money office process. Killed when dropped.
pub struct Office {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl Office {
    /// Starts `mpay office serve` on a free loopback port, SQLite in a new
    /// temporary directory, and waits until `/health` answers.
    pub fn start() -> Office {
        Office::start_with(&[])
    }

    /// [`Office::start`] with more options for `mpay office serve`.
    pub fn start_with(extra: &[&str]) -> Office {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = format!("sqlite://{}", dir.path().join("office.db").display());
        let mut child = mpay()
            .args(["office", "serve", "--listen", "127.0.0.1:0", "--db", &db])
            .args(extra)
            .env("MPAY_OFFICE_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("office starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the office prints its address");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let office = Office {
            child,
            url,
            dir,
            runtime,
        };
        let client = office.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        while office.runtime.block_on(client.health()).is_err() {
            assert!(Instant::now() < deadline, "the office never became healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
        office
    }

    pub fn client(&self) -> mpay_office::http::OfficeClient {
        mpay_office::http::OfficeClient::new(&self.url)
            .expect("client")
            .with_plaintext(mpay_tls::Plaintext::AllowLoopback)
    }

    /// Opens an owner's account with `mpay office open-account`; returns
    /// the owner's token.
    pub fn open_account(&self, owner: &str, deposit: &str) -> String {
        let mut command = mpay();
        command
            .args(["office", "open-account", "--json", "--office", &self.url])
            .args(["--owner", owner, "--deposit", deposit])
            .env("MPAY_OFFICE_ADMIN_TOKEN", ADMIN_TOKEN);
        let out = run(command, "open-account");
        assert_eq!(out.code, 0, "{out:?}");
        out.json()["token"].as_str().expect("token").to_owned()
    }

    /// The owner's account balance in minor units (`GET /v1/owners/me`).
    pub fn owner_balance_minor(&self, token: &str) -> i64 {
        let info = self
            .runtime
            .block_on(self.client().owner_balance(token))
            .expect("owner balance");
        mpay_money::Amount::parse(&info.balance)
            .expect("amount")
            .minor_units()
    }

    /// `mpay office frauds --json`.
    pub fn frauds(&self) -> Value {
        let mut command = mpay();
        command
            .args(["office", "frauds", "--json", "--office", &self.url])
            .env("MPAY_OFFICE_ADMIN_TOKEN", ADMIN_TOKEN);
        let out = run(command, "frauds");
        assert_eq!(out.code, 0, "{out:?}");
        out.json()
    }
}

impl Drop for Office {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One wallet directory and its owner.
#[derive(Clone, Debug)]
pub struct Wallet {
    pub name: String,
    pub dir: PathBuf,
    pub token: String,
    /// Hex id, once enrolled.
    pub id: String,
    /// `--broadcast` of this test (its own multicast port).
    pub broadcast: String,
}

impl Wallet {
    /// Opens an account for `owner` with `deposit` and creates an enrolled
    /// wallet for it in `root/<owner>` (`init --kdf fast`, PIN by env).
    pub fn create(
        office: &Office,
        root: &Path,
        owner: &str,
        deposit: &str,
        group_port: u16,
    ) -> Wallet {
        let token = office.open_account(owner, deposit);
        let dir = root.join(owner);
        let mut command = mpay();
        command
            .args(["wallet", "init", "--json", "--kdf", "fast"])
            .arg("--dir")
            .arg(&dir)
            .args(["--office", &office.url, "--owner", owner])
            .env("MPAY_PIN", PIN)
            .env("MPAY_OWNER_TOKEN", &token);
        let out = run(command, "init");
        assert_eq!(out.code, 0, "{out:?}");
        let id = out.json()["wallet"].as_str().expect("wallet id").to_owned();
        Wallet {
            name: owner.to_owned(),
            dir,
            token,
            id,
            broadcast: format!("multicast:239.255.79.1:{group_port}"),
        }
    }

    /// `mpay wallet <sub> --dir … <args>` with the PIN in the environment.
    pub fn command(&self, sub: &str, args: &[&str]) -> Command {
        let mut command = mpay();
        command
            .args(["wallet", sub])
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            .env("MPAY_PIN", PIN);
        command
    }

    /// A network command (`sell`, `buy`, `resume`) on this test's group.
    pub fn net_command(&self, sub: &str, args: &[&str]) -> Command {
        let mut command = self.command(sub, args);
        command.args(["--broadcast", &self.broadcast]);
        command
    }

    pub fn run(&self, sub: &str, args: &[&str]) -> Run {
        run(self.command(sub, args), &format!("{} {sub}", self.name))
    }

    /// Runs a `--json` command that must succeed; its object.
    pub fn ok_json(&self, sub: &str, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(sub, &all);
        assert_eq!(out.code, 0, "{} {sub}: {out:?}", self.name);
        out.json()
    }

    pub fn charge(&self, amount: &str) {
        self.ok_json("charge", &[amount]);
    }

    pub fn balance(&self) -> Value {
        self.ok_json("balance", &[])
    }

    /// Balance plus locked, minor units.
    pub fn holding_minor(&self) -> i64 {
        let b = self.balance();
        b["balance_minor"].as_i64().expect("balance") + b["locked_minor"].as_i64().expect("locked")
    }

    pub fn history(&self) -> Vec<Value> {
        self.ok_json("history", &[])["entries"]
            .as_array()
            .expect("entries")
            .clone()
    }

    /// Starts `sell` in the background (JSON output).
    pub fn spawn_sell(&self, amount: &str, buyer: &str, extra: &[&str]) -> Child {
        let mut command = self.net_command(
            "sell",
            &[
                "--json",
                "--amount",
                amount,
                "--buyer",
                buyer,
                "--description",
                "e2e",
            ],
        );
        command.args(extra);
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sell starts")
    }

    /// Starts `buy` in the background (JSON output).
    pub fn spawn_buy(&self, max: &str, extra: &[&str]) -> Child {
        let mut command = self.net_command("buy", &["--json", "--yes", "--max", max]);
        command.args(extra);
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("buy starts")
    }
}

/// Copies a wallet directory (the store, its key file, settings) while no
/// process has it open.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

/// A child's stdout, line by line, on a channel (for waiting on progress).
pub fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (at most `secs`) for a line containing `needle`; returns the lines
/// read so far.
pub fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str, secs: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return seen;
                }
            }
            Err(_) => panic!("no line with {needle:?} within {secs} s; saw {seen:?}"),
        }
    }
}

/// Collects what remains on a line channel.
pub fn rest_of(rx: &mpsc::Receiver<String>) -> Vec<String> {
    rx.try_iter().collect()
}

/// A free UDP port on loopback (bound and released).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind")
        .port()
}

/// Parses `"12.50 EUR"` to minor units.
pub fn minor(amount: &str) -> i64 {
    mpay_money::Amount::parse(amount)
        .expect("amount")
        .minor_units()
}
pub mod network;
