//! The real seller and buyer engines under a fuzzer-chosen schedule of
//! delivery, loss, duplication, tampering, time, durable writes and crashes;
//! two sellers and two buyers. The first byte makes buyer 2 (replays of its
//! frames, fresh STATUS, AGREED or ABORT after completion, a restored older
//! store: the same funds offered to both sellers) or seller B (replays, a
//! fresh COMMIT-REQUEST for a sale it received, ABORT after COMMIT, a
//! withheld COMMIT, a restored older store) the party that may be dishonest.
//! Each honest party holds exactly what its own decisions say after every
//! step; an honest seller never signs an ABORT for a sale it committed; an
//! honest buyer's authorizations are durable before they leave and stand in
//! its chain; transfers between honest parties are atomic after healing (see
//! mpay_sim::schedule).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mpay_sim::schedule::Harness::run(data);
});
