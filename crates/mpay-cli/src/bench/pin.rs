//! `mpay bench pin`: what checking a customer's PIN costs the CPP, the
//! keyed verification value it checks now (DESIGN §3.2) against the
//! Argon2id hash of a customer enrolled before (at the default cost a CPP
//! used), in the same run. `ratio` = Argon2id / PVV.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mpay_semops::{Pin, PinCheck, PinHash, PinKey, PinKeys, PinParams, StoredPin};

use super::{median, micros};

pub fn run(rounds: usize, pvv_checks: usize, argon2_checks: usize) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        rounds > 0 && pvv_checks > 0 && argon2_checks > 0,
        "rounds and checks must be positive"
    );
    let keys = PinKeys::new(vec![PinKey::new([7; 32])]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let pin = Pin::new("123456").map_err(|e| anyhow::anyhow!("{e}"))?;
    let pvv = StoredPin::Pvv(keys.current().pvv("alice", &pin));
    let hash =
        PinHash::new(&pin, [3; 16], PinParams::DEFAULT).map_err(|e| anyhow::anyhow!("{e}"))?;
    let argon2 = StoredPin::Argon2(hash);
    let per_check = |stored: &StoredPin, checks: usize| -> anyhow::Result<Duration> {
        let started = Instant::now();
        for _ in 0..checks {
            let check = black_box(stored).check(&keys, black_box("alice"), black_box(&pin));
            anyhow::ensure!(
                matches!(check, PinCheck::Right { .. }),
                "the right PIN was refused"
            );
        }
        Ok(started.elapsed() / u32::try_from(checks).unwrap_or(u32::MAX))
    };
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        fast.push(per_check(&pvv, pvv_checks)?);
        slow.push(per_check(&argon2, argon2_checks)?);
    }
    let (fast, slow) = (median(&fast), median(&slow));
    let p = PinParams::DEFAULT;
    println!(
        "argon2id m={} KiB t={} p={}: {:.1} us per check",
        p.memory_kib,
        p.iterations,
        p.parallelism,
        micros(slow)
    );
    println!("pvv (keyed BLAKE3): {:.3} us per check", micros(fast));
    println!(
        "pvv_us={:.3} argon2_us={:.1} ratio={:.0}",
        micros(fast),
        micros(slow),
        micros(slow) / micros(fast).max(f64::MIN_POSITIVE)
    );
    Ok(ExitCode::SUCCESS)
}
