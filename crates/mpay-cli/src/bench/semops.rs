//! `mpay bench semops`: a closed-loop load of macro payments through the
//! real multi-process SEMOPS network (3 banks, 2 DCs, 2 CPPs, 2 MPPs as
//! child processes on loopback) on PostgreSQL at full durability, then two
//! of micropayments by the same customers, and, in the same run, pgbench's
//! TPC-B-like transactions per second on the same server. Half the macro
//! payments are domestic, half international; the micropayments go to the
//! merchant at home (cpp1 and mpp1 take micropayments, mode one): first
//! with the merchant deciding each, then under its standing approval (mpp1
//! approves each as its PN arrives, without a round trip to the merchant;
//! the `micro_per_s` of the last line). Beside
//! the rates, the CPU time per macro payment of every process on the
//! machine that serves it ([`super::cpu`]).
//!
//! Each worker is one customer paying in a loop: the merchant's TRANS is
//! signed in-process, the PR sealed and submitted to the CPP, and the worker
//! long-polls its status until the T confirmation; one approver task per
//! merchant long-polls its MPP's notices and approves all of one poll in
//! one request (`POST /v1/decisions/batch`, each decision signed). The
//! load itself is `mpay_network::load`. A payment's latency is from
//! submitting the PR to seeing the confirmation.

use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use mpay_api::semops::DcClient;
use mpay_money::Amount;
use mpay_network::load::{self, LoadCustomer, Window};
use mpay_network::{Directory, Timing};

use super::{cpu, percentile};
use crate::network::provision::{self, DIRECTORY_FILE};
use crate::network::supervisor;

/// A macro payment of the load.
const MACRO_AMOUNT: &str = "1.00 EUR";
/// A micropayment of the load (below the micro limit).
pub const MICRO_AMOUNT: &str = "0.05 EUR";

/// The run's settings.
pub struct Settings {
    pub postgres: String,
    pub workers: usize,
    pub seconds: u64,
    pub warmup_seconds: u64,
    pub pgbench_clients: u32,
}

/// pgbench's TPC-B-like transactions per second on `server`, in a database
/// of its own: scale 10, `-c clients -j 2 -T seconds`, default (full)
/// durability.
pub fn pgbench_tps(
    server: &str,
    database: &str,
    clients: u32,
    seconds: u64,
) -> anyhow::Result<f64> {
    let url = provision::postgres_database_url(server, database)?;
    let admin = Command::new("psql")
        .args([
            server,
            "-qc",
            &format!("DROP DATABASE IF EXISTS {database}"),
        ])
        .output()
        .context("running psql (is the PostgreSQL client installed?)")?;
    if !admin.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&admin.stderr));
    }
    let admin = Command::new("psql")
        .args([server, "-qc", &format!("CREATE DATABASE {database}")])
        .output()
        .context("running psql")?;
    if !admin.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&admin.stderr));
    }
    let init = Command::new("pgbench")
        .args(["-i", "-q", "-s", "10", &url])
        .stdout(Stdio::null())
        .output()
        .context("running pgbench -i (is pgbench installed?)")?;
    if !init.status.success() {
        bail!("pgbench -i: {}", String::from_utf8_lossy(&init.stderr));
    }
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            &url,
        ])
        .output()
        .context("running pgbench")?;
    // pgbench's tables are not kept: the figure is all that is needed.
    let dropped = Command::new("psql")
        .args([
            server,
            "-qc",
            &format!("DROP DATABASE IF EXISTS {database}"),
        ])
        .output();
    if !dropped.is_ok_and(|d| d.status.success()) {
        eprintln!("warning: database {database} was not dropped");
    }
    if !out.status.success() {
        bail!("pgbench: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .with_context(|| format!("no `tps = ` line in pgbench's output:\n{text}"))
}

/// What one load measured.
struct Phase {
    rate: f64,
    samples: Vec<Duration>,
    failures: u64,
    /// CPU milliseconds over the measured seconds, by process.
    cpu_ms: std::collections::BTreeMap<String, f64>,
}

impl Phase {
    fn cpu_ms_per_payment(&self) -> f64 {
        self.cpu_ms.values().sum::<f64>() / (self.samples.len().max(1) as f64)
    }

    /// `name=ms …` per payment, the largest first.
    fn cpu_by_process(&self) -> String {
        let n = self.samples.len().max(1) as f64;
        let mut parts: Vec<(&String, f64)> = self
            .cpu_ms
            .iter()
            .map(|(name, ms)| (name, ms / n))
            .collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        parts
            .iter()
            .map(|(name, ms)| format!("{}={ms:.1}", name.replace(' ', "_")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir().context("temporary directory")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let options = provision::Options {
        dir: dir.path().to_owned(),
        postgres: Some(settings.postgres.clone()),
        base_port: None,
        timing: Timing::default(),
        micro: mpay_network::MicroConfig::default(),
        seed: None,
        plaintext: false,
    };
    let processes = runtime.block_on(provision::provision(&options))?;
    load::enable_micro(dir.path())?;
    let mut network = supervisor::Network::start(dir.path(), processes)?;
    runtime.block_on(network.wait_healthy(Duration::from_secs(60)))?;
    let pids = network.pids();
    let result = runtime.block_on(load(dir.path(), &settings, &pids));
    network.stop();
    provision::drop_temporary_databases(&runtime, &settings.postgres, dir.path());
    let (macros, asked, micros, outbox) = result?;
    let pgbench = pgbench_tps(
        &settings.postgres,
        "mpay_bench_pgbench",
        settings.pgbench_clients,
        settings.seconds,
    )?;
    let ms = |samples: &[Duration], p| percentile(samples, p).as_secs_f64() * 1e3;
    println!(
        "workers={} seconds={} payments={} failures={} micropayments={} micro_failures={}",
        settings.workers,
        settings.seconds,
        macros.samples.len(),
        macros.failures,
        micros.samples.len(),
        micros.failures,
    );
    println!(
        "pgbench_clients={} pgbench_tps={pgbench:.0} isolation=serializable",
        settings.pgbench_clients
    );
    println!(
        "macro p50_ms={:.1} p99_ms={:.1} cpu_ms_per_payment={:.1}; micro p50_ms={:.1} p99_ms={:.1} cpu_ms_per_payment={:.1}",
        ms(&macros.samples, 50),
        ms(&macros.samples, 99),
        macros.cpu_ms_per_payment(),
        ms(&micros.samples, 50),
        ms(&micros.samples, 99),
        micros.cpu_ms_per_payment(),
    );
    println!(
        "macro cpu_ms_per_payment by process: {}",
        macros.cpu_by_process()
    );
    println!(
        "micro cpu_ms_per_payment by process: {}",
        micros.cpu_by_process()
    );
    println!(
        "micro without a standing approval (the merchant decides each): micro_per_s={:.1} p50_ms={:.1} p99_ms={:.1} cpu_ms_per_payment={:.1} failures={}; by process: {}",
        asked.rate,
        ms(&asked.samples, 50),
        ms(&asked.samples, 99),
        asked.cpu_ms_per_payment(),
        asked.failures,
        asked.cpu_by_process(),
    );
    println!(
        "outbox over the run, all services: messages_delivered={} frames={} batch_frames={} messages_per_frame={:.2}",
        outbox.delivered,
        outbox.frames,
        outbox.batches,
        outbox.delivered as f64 / outbox.frames.max(1) as f64,
    );
    println!(
        "merchants' decisions over the run (those no standing approval covers): decisions={} requests={} decisions_per_request={:.2}",
        outbox.decisions,
        outbox.decision_requests,
        outbox.decisions as f64 / outbox.decision_requests.max(1) as f64,
    );
    println!(
        "payments_per_s={:.1} p99_ms={:.1} ratio={:.4} micro_per_s={:.1} micro_ratio={:.2} cpu_ms_per_payment={:.1}",
        macros.rate,
        ms(&macros.samples, 99),
        macros.rate / pgbench,
        micros.rate,
        micros.rate / macros.rate.max(f64::MIN_POSITIVE),
        macros.cpu_ms_per_payment(),
    );
    Ok(ExitCode::SUCCESS)
}

/// What the services' outboxes sent over a run, from their metrics.
#[derive(Debug, Default)]
struct OutboxCounts {
    delivered: u64,
    frames: u64,
    batches: u64,
    /// Merchants' decisions the MPPs took, and the requests they came in.
    decisions: u64,
    decision_requests: u64,
}

/// Sums the outbox counters of every service of the directory in `dir`.
async fn outbox_counts(dir: &std::path::Path) -> anyhow::Result<OutboxCounts> {
    let directory = Directory::load(dir.join(DIRECTORY_FILE))?;
    let mut counts = OutboxCounts::default();
    for service in &directory.services {
        let text = DcClient::new(&service.url)?.metrics().await?;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let value: u64 = value.trim().parse().unwrap_or(0);
            if key.ends_with("_outbox_delivered_total") {
                counts.delivered += value;
            } else if key.ends_with("_outbox_frames_total") {
                counts.frames += value;
            } else if key.ends_with("_outbox_batches_total") {
                counts.batches += value;
            } else if key.ends_with("_mpp_decisions_total") {
                counts.decisions += value;
            } else if key.ends_with("_mpp_decision_requests_total") {
                counts.decision_requests += value;
            }
        }
    }
    Ok(counts)
}

/// The macro load over both merchants, then two micro loads to the one at
/// home by the same customers: the merchant deciding each, then under its
/// standing approval; one approver per merchant throughout (it approves
/// what no standing approval covers).
async fn load(
    dir: &std::path::Path,
    settings: &Settings,
    pids: &[(u32, String)],
) -> anyhow::Result<(Phase, Phase, Phase, OutboxCounts)> {
    let people = load::enrol(dir, &load::SHOPS, load::crowd(settings.workers)).await?;
    let merchants = &people.merchants;
    let stop = Arc::new(AtomicBool::new(false));
    let approvers: Vec<_> = merchants
        .iter()
        .map(|m| tokio::spawn(load::approver(Arc::clone(m), Arc::clone(&stop))))
        .collect();
    let macros = phase(
        &people.customers,
        merchants,
        Amount::parse(MACRO_AMOUNT)?,
        settings,
        pids,
    )
    .await;
    // Micropayments the merchant decides one by one (the approver), then
    // under its standing approval.
    let micro_amount = Amount::parse(MICRO_AMOUNT)?;
    let mut micros = Vec::new();
    if macros.is_ok() {
        for standing in [false, true] {
            if standing {
                load::stand_approving(&merchants[0], micro_amount).await?;
            }
            let measured = phase(
                &people.customers,
                &merchants[..1],
                micro_amount,
                settings,
                pids,
            )
            .await;
            let failed = measured.is_err();
            micros.push(measured);
            if failed {
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for a in approvers {
        let _ = a.await;
    }
    let macros = macros?;
    let mut micros = micros.into_iter();
    let (Some(asked), Some(standing)) = (micros.next(), micros.next()) else {
        bail!("the micropayment loads did not run");
    };
    let outbox = outbox_counts(dir).await?;
    Ok((macros, asked?, standing?, outbox))
}

/// One closed-loop load of payments of `amount` ([`load::closed_loop`]):
/// the warm-up, then `settings.seconds` measured, with the CPU time of
/// every process over the measured seconds.
async fn phase(
    customers: &[Arc<LoadCustomer>],
    merchants: &[Arc<mpay_api::device::MerchantTerminal>],
    amount: Amount,
    settings: &Settings,
    pids: &[(u32, String)],
) -> anyhow::Result<Phase> {
    let window = Window::from_now(
        Duration::from_secs(settings.warmup_seconds),
        Duration::from_secs(settings.seconds),
    );
    let pids = pids.to_vec();
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(window.warmup_end.into()).await;
        let before = cpu::sample(&pids);
        tokio::time::sleep_until(window.end.into()).await;
        cpu::sample(&pids).ms_since(&before)
    });
    let looped = load::closed_loop(customers, merchants, amount, window).await?;
    let cpu_ms = cpu.await.context("CPU sampler")?;
    let rate = looped.samples.len() as f64 / settings.seconds as f64;
    Ok(Phase {
        rate,
        samples: looped.samples,
        failures: looped.failures,
        cpu_ms,
    })
}
