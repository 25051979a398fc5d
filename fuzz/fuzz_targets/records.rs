//! The wallet's durable transaction records (records.rs) as read back from
//! disk.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_offline::records::TxRecord;

fuzz_target!(|data: &[u8]| {
    mpay_fuzz::roundtrip::<TxRecord>(data);
});
