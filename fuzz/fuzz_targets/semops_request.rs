//! The customer's payment request (PR), what it names, and the shipping
//! details it may carry.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_fuzz::{roundtrip, select};
use mpay_semops::{
    CustomerRef, PaymentRequest, Pin, PinGuard, PinHash, SealedShipping, ShippingDetails,
};

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = select(data) else {
        return;
    };
    match selector % 7 {
        0 => drop(roundtrip::<PaymentRequest>(rest)),
        1 => drop(roundtrip::<CustomerRef>(rest)),
        2 => drop(roundtrip::<PinHash>(rest)),
        3 => drop(roundtrip::<PinGuard>(rest)),
        4 => drop(roundtrip::<SealedShipping>(rest)),
        5 => drop(roundtrip::<ShippingDetails>(rest)),
        _ => drop(roundtrip::<Pin>(rest)),
    }
});
