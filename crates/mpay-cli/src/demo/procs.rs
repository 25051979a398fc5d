//! The demo's real processes: the money office (`mpay office serve`) and
//! the phones (`mpay wallet …`, one process per command, each wallet in a
//! directory of its own), all this same executable on loopback.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

/// The PIN of every demo wallet (wallet stores use the cheap KDF).
pub const WALLET_PIN: &str = "2468";
/// Longest one wallet command may run before it is killed.
pub const WALLET_COMMAND_SECS_MAX: u64 = 60;
/// Longest the office may take to print its address and answer `/health`.
const OFFICE_START_SECS_MAX: u64 = 30;
/// Pause between two looks at a running child.
const CHILD_POLL_MS: u64 = 10;

/// Variables the CLI reads: never inherited by the demo's children.
const CLI_VARIABLES: [&str; 12] = [
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
    "MPAY_CONFIG",
    "MPAY_NETWORK",
];

/// `mpay` (this executable) with a clean environment.
pub fn mpay(exe: &Path) -> Command {
    let mut command = Command::new(exe);
    for var in CLI_VARIABLES {
        command.env_remove(var);
    }
    command.stdin(Stdio::null());
    // Children trust what this process trusts: the network's TLS CA.
    if let Some(ca) = mpay_tls::default_ca() {
        command.env(mpay_tls::ENV_TLS_CA, ca);
    }
    command
}

/// What a finished child said.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// The last JSON object the command printed on stdout.
    pub fn json(&self) -> anyhow::Result<Value> {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or(self.stdout.trim());
        serde_json::from_str(line.trim()).with_context(|| {
            format!(
                "expected JSON, got stdout {:?} stderr {:?}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Waits for `child` at most `limit` (measured from `started`), killing it
/// beyond.
pub fn finish(mut child: Child, started: Instant, limit: Duration) -> anyhow::Result<Run> {
    let deadline = started + limit;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "a child ran over {} s: {}",
                limit.as_secs(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(CHILD_POLL_MS));
    }
    let elapsed = started.elapsed();
    let out = child.wait_with_output()?;
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
    })
}

/// The money office as a child process; killed when dropped.
pub struct OfficeProcess {
    child: Option<Child>,
    pub url: String,
    pub db: String,
}

impl OfficeProcess {
    /// Starts `mpay office serve` on a free loopback port with `db`; its
    /// log goes to `logs/office.log` under `dir`.
    /// Over TLS when the network folder `network` holds the office's
    /// certificate and key (`office-tls.pem`, `office-tls.key`).
    pub fn start(
        exe: &Path,
        dir: &Path,
        network: &Path,
        db: &str,
        admin_token: &str,
    ) -> anyhow::Result<Self> {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let log = std::fs::File::create(logs.join("office.log"))?;
        let mut command = mpay(exe);
        command.args(["office", "serve", "--listen", "127.0.0.1:0", "--db", db]);
        let (cert, key) = (
            network.join("office-tls.pem"),
            network.join("office-tls.key"),
        );
        if cert.exists() && key.exists() {
            command
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key);
        }
        let mut child = command
            .env("MPAY_OFFICE_ADMIN_TOKEN", admin_token)
            .env(
                "MPAY_LOG",
                std::env::var("MPAY_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting the money office")?;
        let stdout = child.stdout.take().context("office stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut office = OfficeProcess {
            child: Some(child),
            url: String::new(),
            db: db.to_owned(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(OFFICE_START_SECS_MAX))
            .context("the money office did not print its address (see logs/office.log)")?;
        office.url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .with_context(|| format!("no URL in the office's first line {line:?}"))?
            .to_owned();
        Ok(office)
    }

    /// Stops the office (SIGKILL: every write it acknowledged is durable).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OfficeProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One phone: a wallet directory, its owner and how it reaches the others.
#[derive(Clone, Debug)]
pub struct Phone {
    /// Display name, e.g. "alice" or "mallory (copy)".
    pub name: String,
    pub owner: String,
    pub dir: PathBuf,
    /// Hex wallet id, once enrolled.
    pub id: String,
    /// `--broadcast` of this run.
    pub broadcast: String,
    pub exe: PathBuf,
}

impl Phone {
    /// `mpay wallet <sub> --dir … <args>` with the PIN in the environment.
    pub fn command(&self, sub: &str, args: &[&str]) -> Command {
        let mut command = mpay(&self.exe);
        command
            .args(["wallet", sub])
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            .env("MPAY_PIN", WALLET_PIN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// A command that talks to the other phones over UDP.
    pub fn net_command(&self, sub: &str, args: &[&str]) -> Command {
        let mut command = self.command(sub, args);
        command.args(["--broadcast", &self.broadcast]);
        command
    }

    /// Runs a command to its end.
    pub fn run(&self, sub: &str, args: &[&str]) -> anyhow::Result<Run> {
        let started = Instant::now();
        let child = self
            .command(sub, args)
            .spawn()
            .with_context(|| format!("starting wallet {sub} of {}", self.name))?;
        finish(child, started, Duration::from_secs(WALLET_COMMAND_SECS_MAX))
    }

    /// Runs a `--json` command that must succeed; its object.
    pub fn ok_json(&self, sub: &str, args: &[&str]) -> anyhow::Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(sub, &all)?;
        if out.code != 0 {
            bail!(
                "wallet {sub} of {} failed ({}): {} {}",
                self.name,
                out.code,
                out.stdout.trim(),
                out.stderr.trim()
            );
        }
        out.json()
    }

    /// Balance plus locked, minor units (`wallet balance --json`).
    pub fn holding_minor(&self) -> anyhow::Result<i64> {
        let b = self.ok_json("balance", &[])?;
        let field = |name: &str| {
            b[name]
                .as_i64()
                .with_context(|| format!("no {name} in {} balance: {b}", self.name))
        };
        Ok(field("balance_minor")? + field("locked_minor")?)
    }

    /// True if a payment or a sale of this wallet is still open.
    pub fn has_pending(&self) -> anyhow::Result<bool> {
        let b = self.ok_json("balance", &[])?;
        let open = |name: &str| b[name].as_array().is_some_and(|a| !a.is_empty());
        Ok(open("prepared") || open("committing"))
    }

    /// `history --json` entries.
    pub fn history(&self) -> anyhow::Result<Vec<Value>> {
        Ok(self.ok_json("history", &[])?["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

/// Copies a wallet directory (store, key file, settings) while no process
/// has it open: the "cloned phone".
pub fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// A child's stdout, line by line, on a channel.
pub fn lines_of(child: &mut Child) -> anyhow::Result<mpsc::Receiver<String>> {
    let stdout = child.stdout.take().context("piped stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Waits (at most `limit`) for a line containing `needle`.
pub fn wait_for_line(
    rx: &mpsc::Receiver<String>,
    needle: &str,
    limit: Duration,
) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return Ok(seen);
                }
            }
            Err(_) => bail!("no line with {needle:?} within {limit:?}; saw {seen:?}"),
        }
    }
}
