//! Merchant decisions, standing approvals, T/DT confirmations, refunds and
//! their MPP relays.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_fuzz::{roundtrip, select};
use mpay_semops::{
    Authority, Confirmation, ConfirmationOutcome, DecisionRelay, MerchantDecision, RefundRelay,
    RefundRequest, SignedConfirmation, SignedDecisionRelay, SignedMerchantDecision,
    SignedRefundRelay, SignedRefundRequest, SignedStandingApproval, StandingApproval,
};

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = select(data) else {
        return;
    };
    match selector % 14 {
        0 => drop(roundtrip::<SignedMerchantDecision>(rest)),
        1 => drop(roundtrip::<MerchantDecision>(rest)),
        2 => drop(roundtrip::<SignedConfirmation>(rest)),
        3 => drop(roundtrip::<Confirmation>(rest)),
        4 => drop(roundtrip::<ConfirmationOutcome>(rest)),
        5 => drop(roundtrip::<SignedRefundRequest>(rest)),
        6 => drop(roundtrip::<RefundRequest>(rest)),
        7 => drop(roundtrip::<SignedDecisionRelay>(rest)),
        8 => drop(roundtrip::<DecisionRelay>(rest)),
        9 => drop(roundtrip::<SignedRefundRelay>(rest)),
        10 => drop(roundtrip::<SignedStandingApproval>(rest)),
        11 => drop(roundtrip::<StandingApproval>(rest)),
        12 => drop(roundtrip::<Authority>(rest)),
        _ => drop(roundtrip::<RefundRelay>(rest)),
    }
});
