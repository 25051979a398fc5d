//! The bank's configuration text: account patterns, account ids, peer banks
//! (id and certificate as hex), interbank ids, amounts.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_bank::{AccountId, AccountPattern, InterbankId, PeerBank};
use mpay_fuzz::select;

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = select(data) else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match selector % 5 {
        0 => {
            if let Ok(AccountPattern::Exact(id)) = AccountPattern::parse(&text) {
                assert_eq!(id.as_str(), text, "account pattern not read as written");
            }
        }
        1 => {
            if let Ok(id) = AccountId::parse(&text) {
                assert_eq!(AccountId::parse(id.as_str()), Ok(id));
            }
        }
        2 => {
            // Three fields separated by newlines.
            let mut parts = text.splitn(3, '\n');
            let id = parts.next().unwrap_or("");
            let url = parts.next().unwrap_or("");
            let cert = parts.next().unwrap_or("");
            if let Ok(peer) = PeerBank::from_hex(id, url, cert) {
                assert!(peer.base_url.starts_with("http"));
            }
        }
        3 => {
            let _ = InterbankId::from_hex(&text);
        }
        _ => {
            if let Ok(amount) = mpay_money::Amount::parse(&text) {
                assert_eq!(mpay_money::Amount::parse(&amount.to_string()), Ok(amount));
            }
        }
    }
});
