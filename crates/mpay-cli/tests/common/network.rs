//! A whole SEMOPS network as real processes for the end-to-end tests:
//! `mpay network init` in a temporary folder, then one `mpay serve …` per
//! bank and service, so a test can SIGKILL and restart any one of them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Run, mpay, run};

pub const PIN: &str = "1357";
pub const WRONG_PIN: &str = "9999";

/// One process of the network.
pub struct Process {
    pub role: String,
    pub name: String,
    pub url: String,
    child: Option<Child>,
}

pub struct Network {
    pub dir: tempfile::TempDir,
    pub processes: Vec<Process>,
}

/// The body of `url``path` if it answers 200, over TLS trusting the CA
/// file `ca` only (`https://`), or plaintext (`http://`, no token).
fn get(url: &str, path: &str, ca: &Path) -> Option<String> {
    mpay_tls::install_ring_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let ca = ca.exists().then_some(ca);
    runtime.block_on(async {
        let http = mpay_tls::http_client(ca, Duration::from_secs(2)).ok()?;
        let answer = http.get(format!("{url}{path}")).send().await.ok()?;
        if !answer.status().is_success() {
            return None;
        }
        answer.text().await.ok()
    })
}

/// True if `url`/health answers 200.
fn healthy(url: &str, ca: &Path) -> bool {
    get(url, "/health", ca).is_some()
}

fn wait_health(url: &str, secs: u64, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let ca = log.with_file_name("tls-ca.pem");
    while !healthy(url, &ca) {
        assert!(
            Instant::now() < deadline,
            "{url} not healthy within {secs} s; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Network {
    /// Provisions and starts a network; `extra` are more `network init` flags.
    pub fn start(extra: &[&str]) -> Network {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut init = mpay();
        init.args(["network", "init", "--dir"])
            .arg(dir.path())
            .args(extra);
        let out = run(init, "network init");
        assert_eq!(out.code, 0, "network init: {out:?}");
        let mut processes = Vec::new();
        for line in out.stdout.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() == 3 && ["bank", "dc", "cpp", "mpp"].contains(&fields[0]) {
                processes.push(Process {
                    role: fields[0].to_owned(),
                    name: fields[1].to_owned(),
                    url: fields[2].to_owned(),
                    child: None,
                });
            }
        }
        assert_eq!(
            processes.len(),
            9,
            "3 banks, 2 DCs, 2 MPPs, 2 CPPs: {out:?}"
        );
        let mut network = Network { dir, processes };
        for i in 0..network.processes.len() {
            network.spawn(i);
        }
        for p in &network.processes {
            wait_health(
                &p.url,
                60,
                &network.dir.path().join(format!("{}.log", p.name)),
            );
        }
        network
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn index(&self, name: &str) -> usize {
        self.processes
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    fn spawn(&mut self, i: usize) {
        let dir = self.dir.path().to_owned();
        let p = &mut self.processes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.log", p.name)))
            .expect("log file");
        let child = mpay()
            .args(["serve", &p.role, "--config"])
            .arg(dir.join(format!("{}.toml", p.name)))
            .env("MPAY_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("serve starts");
        p.child = Some(child);
    }

    /// SIGKILLs one process (no chance to clean up).
    pub fn kill(&mut self, name: &str) {
        let i = self.index(name);
        if let Some(mut child) = self.processes[i].child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// Starts a killed process again and waits until it is healthy.
    pub fn restart(&mut self, name: &str) {
        let i = self.index(name);
        self.spawn(i);
        let log = self.dir.path().join(format!("{name}.log"));
        wait_health(&self.processes[i].url, 60, &log);
    }

    /// The lines of every process's `/metrics` that count something still
    /// moving (outboxes, `started` transfers), for a failure message.
    pub fn moving(&self) -> String {
        let mut out = String::new();
        let ca = self.dir.path().join("tls-ca.pem");
        for p in &self.processes {
            let Some(answer) = get(&p.url, "/metrics", &ca) else {
                continue;
            };
            for line in answer.lines() {
                let counts_sends = ["delivered", "frames_total", "batches_total"]
                    .iter()
                    .any(|c| line.contains(c));
                if ((line.contains("outbox") && !counts_sends) || line.contains("started"))
                    && !line.starts_with('#')
                    && !line.ends_with(" 0")
                {
                    out.push_str(&format!("{}: {line}\n", p.name));
                }
            }
        }
        out
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    fn network_arg(&self, command: &mut Command) {
        command.arg("--network").arg(self.dir.path());
    }

    /// `mpay bank open-account` with a first deposit.
    pub fn open_account(&self, bank: &str, account: &str, deposit: &str) {
        let mut c = mpay();
        c.args([
            "bank",
            "open-account",
            "--bank",
            bank,
            "--account",
            account,
            "--deposit",
            deposit,
        ]);
        self.network_arg(&mut c);
        let out = run(c, "bank open-account");
        assert_eq!(out.code, 0, "{out:?}");
    }

    /// An account's balance in minor units, from `mpay bank account`.
    pub fn balance_minor(&self, bank: &str, account: &str) -> i64 {
        let mut c = mpay();
        c.args(["bank", "account", "--bank", bank, "--account", account]);
        self.network_arg(&mut c);
        let out = run(c, "bank account");
        assert_eq!(out.code, 0, "{out:?}");
        let text = out
            .stdout
            .split("balance ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("no balance in {out:?}"));
        minor(text)
    }

    /// `mpay bank deposit` into an existing account.
    pub fn deposit(&self, bank: &str, account: &str, amount: &str) {
        let mut c = mpay();
        c.args([
            "bank",
            "deposit",
            "--bank",
            bank,
            "--account",
            account,
            "--amount",
            amount,
        ]);
        self.network_arg(&mut c);
        let out = run(c, "bank deposit");
        assert_eq!(out.code, 0, "{out:?}");
    }

    /// An account's held sum in minor units, from `mpay bank account`.
    pub fn held_minor(&self, bank: &str, account: &str) -> i64 {
        let mut c = mpay();
        c.args(["bank", "account", "--bank", bank, "--account", account]);
        self.network_arg(&mut c);
        let out = run(c, "bank account");
        assert_eq!(out.code, 0, "{out:?}");
        let text = out
            .stdout
            .split("held ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("no held sum in {out:?}"));
        minor(text)
    }

    /// Polls `balance_minor` until it equals `want` (at most `secs`); the
    /// last balance seen.
    pub fn wait_balance(&self, bank: &str, account: &str, want: i64, secs: u64) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let now = self.balance_minor(bank, account);
            if now == want || Instant::now() >= deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn party_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.party"))
    }

    /// Enrols a customer at `cpp` with an account at `bank`.
    pub fn customer(&self, name: &str, cpp: &str, bank: &str, deposit: &str) -> PathBuf {
        self.open_account(bank, &format!("cust:{name}"), deposit);
        let file = self.party_file(name);
        let mut c = mpay();
        c.args([
            "customer",
            "enroll",
            "--processor",
            cpp,
            "--name",
            name,
            "--bank",
            bank,
            "--pin",
            PIN,
            "--out",
        ])
        .arg(&file);
        self.network_arg(&mut c);
        let out = run(c, "customer enroll");
        assert_eq!(out.code, 0, "{out:?}");
        file
    }

    /// Enrols a merchant at `mpp` with an empty account at `bank`.
    pub fn merchant(&self, name: &str, mpp: &str, bank: &str) -> PathBuf {
        self.open_account(bank, &format!("shop:{name}"), "0.00 EUR");
        let file = self.party_file(name);
        let mut c = mpay();
        c.args([
            "merchant",
            "enroll",
            "--processor",
            mpp,
            "--name",
            name,
            "--bank",
            bank,
            "--out",
        ])
        .arg(&file);
        self.network_arg(&mut c);
        let out = run(c, "merchant enroll");
        assert_eq!(out.code, 0, "{out:?}");
        file
    }

    /// `mpay reconcile`; returns its run.
    pub fn reconcile(&self) -> Run {
        let mut c = mpay();
        c.args(["reconcile", "--wait-secs", "30"]);
        self.network_arg(&mut c);
        run(c, "reconcile")
    }

    /// [`Network::books`] once no money is between banks (the settlement
    /// accounts of all banks sum to zero), asked again for up to 20 s. A
    /// service may start a transfer after `mpay reconcile` found the
    /// network quiet (a window sweep, a net settlement run); its money is
    /// in a settlement account until the peer bank applies it.
    pub fn quiet_books(&self) -> BTreeMap<String, i64> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let books = self.books();
            let between_banks: i64 = books
                .iter()
                .filter(|(k, _)| {
                    k.split('/')
                        .nth(1)
                        .is_some_and(|a| a.starts_with("settlement:"))
                })
                .map(|(_, v)| v)
                .sum();
            if between_banks == 0 || std::time::Instant::now() >= until {
                return books;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }

    /// Σ over every bank of every account but settlement, which must stay 0
    /// (every deposit came from `external`), and the total held by holders.
    pub fn books(&self) -> BTreeMap<String, i64> {
        let mut all = BTreeMap::new();
        for bank in ["bank1", "bank2", "bank3"] {
            let mut c = mpay();
            c.args(["bank", "books", "--bank", bank]);
            self.network_arg(&mut c);
            let out = run(c, "bank books");
            assert_eq!(out.code, 0, "books of {bank}: {out:?}");
            for line in out.stdout.lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() == 3 && fields[2] == "EUR" {
                    all.insert(
                        format!("{bank}/{}", fields[0]),
                        minor(&format!("{} EUR", fields[1])),
                    );
                }
            }
        }
        all
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for p in &mut self.processes {
            if let Some(mut child) = p.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// "12.50 EUR" → 1250.
pub fn minor(text: &str) -> i64 {
    let number = text.split_whitespace().next().expect("an amount");
    let (units, cents) = number.split_once('.').unwrap_or((number, "0"));
    let negative = units.starts_with('-');
    let units: i64 = units.trim_start_matches('-').parse().expect("units");
    let cents: i64 = format!("{cents:0<2}")[..2].parse().expect("cents");
    let value = units * 100 + cents;
    if negative { -value } else { value }
}

/// A merchant terminal: `mpay merchant request --then …` running, with the
/// URI it printed.
pub struct Terminal {
    pub child: Child,
    pub uri: String,
    lines: mpsc::Receiver<String>,
}

impl Terminal {
    pub fn start(merchant: &Path, amount: &str, then: Option<&str>) -> Terminal {
        let mut c = mpay();
        c.args([
            "merchant",
            "request",
            "--amount",
            amount,
            "--reference",
            "order-1",
            "--merchant",
        ])
        .arg(merchant)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if let Some(then) = then {
            c.args(["--then", then, "--wait-secs", "40"]);
        }
        let mut child = c.spawn().expect("merchant request starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let uri = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the terminal prints its URI");
        assert!(uri.starts_with("mpay:trans?"), "{uri}");
        Terminal { child, uri, lines }
    }

    /// Waits for the terminal to exit; its exit code and every line.
    pub fn finish(self) -> (i32, Vec<String>) {
        let run = super::finish(self.child, 60, "merchant terminal");
        let mut lines: Vec<String> = self.lines.try_iter().collect();
        lines.extend(run.stdout.lines().map(str::to_owned));
        (run.code, lines)
    }

    /// The lines printed so far (without waiting); they are not seen again
    /// by [`Terminal::finish`].
    pub fn lines_so_far(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// The payment id from the terminal's "notice <id>: …" line.
    pub fn wait_notice(&self, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200))
                && let Some(rest) = line.strip_prefix("notice ")
            {
                return rest.split(':').next().expect("id").to_owned();
            }
        }
        panic!("no notice within {secs} s");
    }
}

/// `mpay customer pay`, JSON status out.
pub fn pay(customer: &Path, uri: &str, pin: &str, extra: &[&str]) -> Run {
    let mut c = mpay();
    c.args([
        "customer",
        "pay",
        uri,
        "--json",
        "--wait-secs",
        "30",
        "--pin",
        pin,
        "--customer",
    ])
    .arg(customer)
    .args(extra);
    run(c, "customer pay")
}

/// Starts `mpay customer pay` without waiting for it.
pub fn spawn_pay(customer: &Path, uri: &str, extra: &[&str]) -> Child {
    let mut c = mpay();
    c.args([
        "customer",
        "pay",
        uri,
        "--json",
        "--wait-secs",
        "40",
        "--pin",
        PIN,
        "--customer",
    ])
    .arg(customer)
    .args(extra)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c.spawn().expect("customer pay starts")
}
