//! CPU time of every process a benchmark runs on this machine: its own,
//! the service processes it started, and PostgreSQL's (every process named
//! `postgres`: the backends serving the services and its background
//! workers). Read from the kernel's accounting in `/proc/<pid>/stat`: user
//! and system time of all of a process's threads, the finished ones
//! included. A process that exits between two samples is not counted.

use std::collections::BTreeMap;
use std::process::Command;

/// Clock ticks per process, and whose it is, at one moment.
pub struct CpuSample {
    ticks: BTreeMap<u32, (String, u64)>,
    ticks_per_s: u64,
}

/// The name this process's time is reported under.
pub const CLIENT: &str = "load client";
/// The name PostgreSQL's processes' time is reported under.
pub const POSTGRES: &str = "postgres";

/// User + system clock ticks of `pid`, or `None` if it is gone; and its
/// command name.
fn read(pid: u32) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: the name may hold spaces and parentheses.
    let (head, rest) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), counted from `state` (field 3).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

fn ticks_per_s() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Samples this process, the named `pids`, and every `postgres` process.
pub fn sample(pids: &[(u32, String)]) -> CpuSample {
    let mut ticks = BTreeMap::new();
    let me = (std::process::id(), CLIENT.to_owned());
    for (pid, name) in pids.iter().cloned().chain([me]) {
        if let Some((_, t)) = read(pid) {
            ticks.insert(pid, (name, t));
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some((comm, t)) = read(pid)
                && comm == POSTGRES
            {
                ticks.insert(pid, (POSTGRES.to_owned(), t));
            }
        }
    }
    CpuSample {
        ticks,
        ticks_per_s: ticks_per_s(),
    }
}

impl CpuSample {
    /// CPU milliseconds spent from `earlier` to this sample by the
    /// processes sampled now (a process started in between counts whole),
    /// by name.
    pub fn ms_since(&self, earlier: &CpuSample) -> BTreeMap<String, f64> {
        let mut by_name = BTreeMap::new();
        for (pid, (name, t)) in &self.ticks {
            let before = earlier.ticks.get(pid).map_or(0, |(_, t)| *t);
            let ms = t.saturating_sub(before) as f64 * 1e3 / self.ticks_per_s as f64;
            *by_name.entry(name.clone()).or_insert(0.0) += ms;
        }
        by_name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_sampled_and_its_work_counted() {
        let before = sample(&[]);
        assert!(before.ticks.contains_key(&std::process::id()));
        // Spin about 50 ms of CPU.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = sample(&[]);
        let ms = after.ms_since(&before);
        let mine = ms.get(CLIENT).copied().unwrap_or(0.0);
        assert!(mine >= 10.0, "{mine} ms of CPU for a 50 ms spin: {ms:?}");
    }
}
