//! `mpay:trans?v=1&d=…` URIs as a customer's phone scans them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_semops::SignedTrans;

fuzz_target!(|data: &[u8]| {
    // Bytes as text; also the prefix glued on, so the fuzzer reaches the
    // parameter and base64url parsing quickly.
    let text = String::from_utf8_lossy(data);
    for uri in [text.to_string(), format!("mpay:trans?{text}")] {
        if let Ok(trans) = SignedTrans::from_uri(&uri) {
            let again = SignedTrans::from_uri(&trans.to_uri()).expect("own URI reads back");
            assert_eq!(again, trans);
        }
    }
    if let Some(bytes) = mpay_semops::base64url_decode(&text) {
        assert_eq!(
            mpay_semops::base64url_encode(&bytes),
            text,
            "base64url not canonical"
        );
    }
});
