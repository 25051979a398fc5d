//! The CPP's payment notice (PN), signed and as routed hop to hop.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_fuzz::{roundtrip, select};
use mpay_semops::{PaymentNotice, RoutedNotice, SignedPaymentNotice};

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = select(data) else {
        return;
    };
    match selector % 3 {
        0 => drop(roundtrip::<SignedPaymentNotice>(rest)),
        1 => drop(roundtrip::<RoutedNotice>(rest)),
        _ => drop(roundtrip::<PaymentNotice>(rest)),
    }
});
