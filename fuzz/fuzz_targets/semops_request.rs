//! The customer's payment request (PR) and what it names.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_fuzz::{roundtrip, select};
use mpay_semops::{CustomerRef, PaymentRequest, Pin, PinGuard, PinHash};

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = select(data) else {
        return;
    };
    match selector % 5 {
        0 => drop(roundtrip::<PaymentRequest>(rest)),
        1 => drop(roundtrip::<CustomerRef>(rest)),
        2 => drop(roundtrip::<PinHash>(rest)),
        3 => drop(roundtrip::<PinGuard>(rest)),
        _ => drop(roundtrip::<Pin>(rest)),
    }
});
