//! The real seller and buyer engines under a fuzzer-chosen schedule of
//! delivery, loss, duplication, tampering, time, durable writes and crashes;
//! buyer 2 may be dishonest (replays of its frames, fresh STATUS, AGREED or
//! ABORT after completion, a restored older store). Each honest party holds
//! exactly what its own decisions say after every step; the honest seller
//! never signs an ABORT for a sale it committed; transfers between honest
//! parties are atomic after healing (see mpay_fuzz::engines).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mpay_fuzz::engines::Harness::run(data);
});
