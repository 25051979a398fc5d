//! The bank's sealed interbank messages and the ledger types they carry.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_bank::interbank::{InterbankAck, InterbankMessage};
use mpay_bank::{
    AccountId, AccountView, Destination, HoldView, InterbankId, InterbankReceipt, TransferReceipt,
};
use mpay_fuzz::{roundtrip, select};

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = select(data) else {
        return;
    };
    match selector % 9 {
        0 => drop(roundtrip::<InterbankMessage>(rest)),
        1 => drop(roundtrip::<InterbankAck>(rest)),
        2 => drop(roundtrip::<AccountId>(rest)),
        3 => drop(roundtrip::<Destination>(rest)),
        4 => drop(roundtrip::<InterbankId>(rest)),
        5 => drop(roundtrip::<AccountView>(rest)),
        6 => drop(roundtrip::<TransferReceipt>(rest)),
        7 => drop(roundtrip::<HoldView>(rest)),
        _ => drop(roundtrip::<InterbankReceipt>(rest)),
    }
});
