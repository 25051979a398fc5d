//! Runs a provisioned network's processes as children of this one: starts
//! them in order, waits until each answers `/health`, restarts one that
//! dies, and stops them all on Ctrl-C or SIGTERM. Each child's output goes
//! to `<dir>/logs/<name>.log`; `<dir>/pids.toml` lists the running ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::provision::Process;

/// Pause between two looks at the children.
const SUPERVISE_INTERVAL_MS: u64 = 200;
/// Pause between two health probes while starting.
const HEALTH_PROBE_INTERVAL_MS: u64 = 50;
/// Restarts of one process after which the supervisor gives up on it.
const RESTARTS_MAX: u32 = 20;

pub struct Network {
    dir: PathBuf,
    processes: Vec<Process>,
    children: Vec<Option<Child>>,
    restarts: Vec<u32>,
}

/// Starts one `mpay serve <role> --config <file>` child.
pub fn spawn(dir: &Path, process: &Process) -> anyhow::Result<Child> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let log_path = logs.join(format!("{}.log", process.name));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let exe = std::env::current_exe().context("finding the mpay executable")?;
    Command::new(exe)
        .arg("serve")
        .arg(&process.role)
        .arg("--config")
        .arg(&process.config)
        .env(
            "MPAY_LOG",
            std::env::var("MPAY_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", process.name))
}

/// Waits until `url`/health answers, up to `limit` (over TLS, trusting the
/// network's CA: see [`trust_network`]).
pub async fn wait_health(url: &str, limit: Duration) -> anyhow::Result<()> {
    let http = mpay_tls::default_client(Duration::from_secs(2))?;
    let started = Instant::now();
    loop {
        if let Ok(answer) = http.get(format!("{url}/health")).send().await
            && answer.status().is_success()
        {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("{url} did not become healthy within {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(HEALTH_PROBE_INTERVAL_MS)).await;
    }
}

/// Makes the TLS CA of the network in `dir` (if it has one) the root of
/// trust of this process's clients.
pub fn trust_network(dir: &Path) {
    let ca = dir.join(super::provision::TLS_CA_FILE);
    if ca.exists() {
        mpay_tls::set_default_ca(&ca);
    }
}

impl Network {
    pub fn start(dir: &Path, processes: Vec<Process>) -> anyhow::Result<Network> {
        trust_network(dir);
        let mut network = Network {
            dir: dir.to_owned(),
            children: Vec::new(),
            restarts: vec![0; processes.len()],
            processes,
        };
        for process in network.processes.clone() {
            network.children.push(Some(spawn(dir, &process)?));
        }
        network.write_pids()?;
        Ok(network)
    }

    pub fn processes(&self) -> &[Process] {
        &self.processes
    }

    /// The process ids of the running children, with their names.
    pub fn pids(&self) -> Vec<(u32, String)> {
        self.processes
            .iter()
            .zip(&self.children)
            .filter_map(|(p, c)| Some((c.as_ref()?.id(), p.name.clone())))
            .collect()
    }

    /// SIGKILLs process `i` (no chance to clean up) and reaps it.
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.children.get_mut(i).and_then(Option::take) {
            child.kill().context("SIGKILL")?;
            child.wait().context("reaping")?;
        }
        Ok(())
    }

    /// Starts process `i` again if it is not running.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        if self.children.get(i).is_some_and(Option::is_none) {
            let process = self.processes[i].clone();
            self.children[i] = Some(spawn(&self.dir, &process)?);
            self.write_pids()?;
        }
        Ok(())
    }

    pub async fn wait_healthy(&mut self, limit: Duration) -> anyhow::Result<()> {
        for process in &self.processes {
            wait_health(&process.url, limit).await.with_context(|| {
                format!(
                    "{} {} (see {})",
                    process.role,
                    process.name,
                    self.dir
                        .join("logs")
                        .join(format!("{}.log", process.name))
                        .display()
                )
            })?;
        }
        Ok(())
    }

    fn write_pids(&self) -> anyhow::Result<()> {
        let pids: BTreeMap<String, u32> = self
            .processes
            .iter()
            .zip(&self.children)
            .filter_map(|(p, c)| c.as_ref().map(|c| (p.name.clone(), c.id())))
            .collect();
        let text = toml::to_string(&pids).context("encoding pids")?;
        std::fs::write(self.dir.join("pids.toml"), text).context("writing pids.toml")
    }

    /// Restarts every child that exited; false once one has failed too often.
    fn restart_dead(&mut self) -> anyhow::Result<()> {
        let mut changed = false;
        for i in 0..self.processes.len() {
            let exited = match self.children[i].as_mut() {
                Some(child) => child.try_wait().context("checking a child")?,
                None => continue,
            };
            if let Some(status) = exited {
                let process = self.processes[i].clone();
                self.restarts[i] += 1;
                if self.restarts[i] > RESTARTS_MAX {
                    self.children[i] = None;
                    eprintln!(
                        "{} exited ({status}) too often; not restarting it",
                        process.name
                    );
                    continue;
                }
                eprintln!("{} exited ({status}); restarting it", process.name);
                self.children[i] = Some(spawn(&self.dir, &process)?);
                changed = true;
            }
        }
        if changed {
            self.write_pids()?;
        }
        Ok(())
    }

    pub async fn supervise_until_interrupted(&mut self) -> anyhow::Result<()> {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("listening for SIGTERM")?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
                _ = tokio::time::sleep(Duration::from_millis(SUPERVISE_INTERVAL_MS)) => {
                    self.restart_dead()?;
                }
            }
        }
        self.stop();
        Ok(())
    }

    /// Kills every child and waits for it.
    pub fn stop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.iter_mut().for_each(|c| *c = None);
        let _ = std::fs::remove_file(self.dir.join("pids.toml"));
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.stop();
    }
}
