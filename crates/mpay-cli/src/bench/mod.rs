//! `mpay bench …`: the benchmarks whose figures docs/benchmarks.md records.
//! Each compares against a baseline measured in the same run, so the ratio
//! means something on a noisy machine.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

mod envelope;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Seals and opens per second against the bare primitives they use.
    Envelope {
        /// Rounds; the median round is reported.
        #[arg(long, default_value_t = 7)]
        rounds: usize,
        /// Seal+open pairs per round.
        #[arg(long, default_value_t = 2_000)]
        iterations: usize,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 256)]
        payload_bytes: usize,
    },
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Envelope {
            rounds,
            iterations,
            payload_bytes,
        } => envelope::run(rounds, iterations, payload_bytes),
    }
}

/// The median of `samples` (upper median for an even count).
pub fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 50)
}

/// The `p`-th percentile by nearest rank.
pub fn percentile(samples: &[Duration], p: u32) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let n = sorted.len();
    let rank = (usize::try_from(p).unwrap_or(100) * n)
        .div_ceil(100)
        .clamp(1, n);
    sorted[rank - 1]
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
