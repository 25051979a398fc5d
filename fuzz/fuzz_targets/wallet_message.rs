//! Wallet messages (LOOKUP … ABORTED): `Message::decode` for any kind and
//! payload; a decoded message re-encodes to the same payload.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_envelope::MessageKind;
use mpay_offline::messages::Message;

fuzz_target!(|data: &[u8]| {
    let Some((selector, payload)) = mpay_fuzz::select(data) else {
        return;
    };
    // Mostly the nine wallet kinds; sometimes any kind at all.
    let kind = match selector % 10 {
        k @ 0..=8 => [
            0x8101u16, 0x0102, 0x0103, 0x0104, 0x0105, 0x0106, 0x0107, 0x0108, 0x0109,
        ][usize::from(k)],
        _ => u16::from_be_bytes([payload.first().copied().unwrap_or(0), selector]),
    };
    if let Ok(message) = Message::decode(MessageKind(kind), payload) {
        assert_eq!(message.kind(), MessageKind(kind));
        assert_eq!(message.payload(), payload, "wallet message not canonical");
        assert_eq!(
            Message::decode(MessageKind(kind), &message.payload()),
            Ok(message)
        );
    }
});
