//! The real seller and buyer engines under a fuzzer-chosen schedule of
//! delivery, loss, duplication, tampering, time, durable writes and crashes;
//! conservation after every step, atomicity and recovery after healing
//! (see mpay_fuzz::engines).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mpay_fuzz::engines::Harness::run(data);
});
