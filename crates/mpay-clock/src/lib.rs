//! The wall clock, read in one place.
//!
//! Pure code (the offline engine, the processor cores, the ledger, the
//! micropayment policy, the simulator) never reads a clock: it takes `now`
//! as a [`Timestamp`]. Drivers (the services' HTTP handlers and loops, the
//! phone's node, the CLI) call [`wall_clock`] and pass the reading in, so a
//! simulator can drive the same code with a clock of its own. The
//! workspace's `clippy.toml` forbids `SystemTime::now` everywhere else, and
//! no core crate depends on this one.

use std::time::{SystemTime, UNIX_EPOCH};

use mpay_identity::Timestamp;

/// Milliseconds since the Unix epoch. A clock set before 1970 reads as the
/// epoch (every signed message then looks stale to peers, the honest outcome
/// of a broken clock); one past `u64::MAX` ms reads as the end of time.
pub fn wall_clock() -> Timestamp {
    #[allow(clippy::disallowed_methods)] // the one wall-clock read
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Timestamp(u64::try_from(since_epoch).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_time_after_this_code_was_written() {
        // 2026-01-01T00:00:00Z
        assert!(wall_clock() > Timestamp(1_767_225_600_000));
    }
}
