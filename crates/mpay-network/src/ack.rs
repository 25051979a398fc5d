//! The receiver's signed acknowledgement of an inbox delivery.
//!
//! A service answers every frame it accepted at `/v1/inbox` with an
//! [`InboxAck`] signed by itself and sealed to the sender (kind
//! [`INBOX_ACK`]), naming the BLAKE3 hash of the very frame it accepted.
//! The sender marks an outbox message delivered only when the ack opens
//! with its own keys, verifies against the receiver's directory
//! certificate, and names the frame just sent (each attempt is sealed
//! afresh, so an old ack names another frame): a party between the two
//! can drop a delivery, never fake one. Banks acknowledge interbank
//! transfers the same way (`mpay_bank::interbank`).
//!
//! Layout: `u8 version (1) | [32] frame hash | text outcome`.

use mpay_envelope::MessageKind;
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};

/// Envelope kind of an [`InboxAck`] (receiver → sender).
pub const INBOX_ACK: MessageKind = MessageKind(0x0411);

/// The payload layout version.
pub const INBOX_ACK_VERSION: u8 = 1;

/// Longest outcome text an ack carries.
pub const OUTCOME_LEN_MAX: usize = 256;

/// What the receiver did with one delivered frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxAck {
    /// BLAKE3 of the sealed frame as received.
    pub frame_hash: [u8; 32],
    /// The receiver's outcome (`accepted`, `repeat`, …).
    pub outcome: String,
}

impl InboxAck {
    /// The hash an ack of `frame` names.
    pub fn hash_of(frame: &[u8]) -> [u8; 32] {
        *blake3::hash(frame).as_bytes()
    }
}

impl Encode for InboxAck {
    fn encode(&self, w: &mut Writer) {
        w.u8(INBOX_ACK_VERSION)
            .raw(&self.frame_hash)
            .text(&self.outcome);
    }
}

impl Decode for InboxAck {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("inbox ack version")?;
        if version != INBOX_ACK_VERSION {
            return Err(DecodeError::UnknownTag {
                what: "inbox ack version",
                tag: version,
            });
        }
        Ok(InboxAck {
            frame_hash: r.array("inbox ack frame hash")?,
            outcome: r.text("inbox ack outcome", OUTCOME_LEN_MAX)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_round_trip_and_decoding_is_total() {
        let ack = InboxAck {
            frame_hash: [7; 32],
            outcome: "accepted".into(),
        };
        let bytes = ack.to_wire();
        assert_eq!(InboxAck::from_wire(&bytes).expect("decodes"), ack);
        for len in 0..bytes.len() {
            assert!(InboxAck::from_wire(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut other_version = bytes.clone();
        other_version[0] = 2;
        assert!(InboxAck::from_wire(&other_version).is_err());
        let mut longer = bytes;
        longer.push(0);
        assert!(InboxAck::from_wire(&longer).is_err());
    }
}
