//! What services send one another around the messages themselves: the
//! receiver's ack of one frame, a batch of messages, and its ack.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_fuzz::{roundtrip, select};
use mpay_network::ack::{InboxAck, InboxBatch, InboxBatchAck};

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = select(data) else {
        return;
    };
    match selector % 3 {
        0 => drop(roundtrip::<InboxAck>(rest)),
        1 => drop(roundtrip::<InboxBatch>(rest)),
        _ => drop(roundtrip::<InboxBatchAck>(rest)),
    }
});
