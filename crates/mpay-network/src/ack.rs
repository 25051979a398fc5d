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
//!
//! # Batches
//!
//! A sender with several messages for one receiver seals them together:
//! one [`InboxBatch`] in one frame (kind [`INBOX_BATCH`]), one HTTP request
//! and one seal for all of them. The receiver applies each item as if it
//! had come in its own frame from the batch's sender (the same checks of
//! who may send which kind, the same idempotency) and answers one
//! [`InboxBatchAck`] (kind [`INBOX_BATCH_ACK`]), signed and sealed back,
//! naming the batch frame's hash and each item's own result in order: one
//! refused item does not hold back the others, and the sender marks
//! delivered exactly the items the ack says were taken.
//!
//! Layouts: `InboxBatch` = `u8 version (1) | u16 count | count × (u16 kind
//! | [16] tx_id | u32 length, payload)`; `InboxBatchAck` = `u8 version (1)
//! | [32] batch frame hash | u16 count | count × (u8 taken (1) or not (0) |
//! text outcome)`.

use mpay_envelope::{MessageKind, PAYLOAD_LEN_MAX};
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

/// Envelope kind of an [`InboxBatch`] (sender → receiver).
pub const INBOX_BATCH: MessageKind = MessageKind(0x0412);

/// Envelope kind of an [`InboxBatchAck`] (receiver → sender).
pub const INBOX_BATCH_ACK: MessageKind = MessageKind(0x0413);

/// Most items in one batch.
pub const INBOX_BATCH_ITEMS_MAX: usize = 32;

/// Most payload bytes a sender puts in one batch (the items' payloads
/// together), so that the sealed batch stays well under the envelope's
/// `PAYLOAD_LEN_MAX` and the receiver's request body limit.
pub const INBOX_BATCH_PAYLOAD_BUDGET: usize = 32 * 1024;

/// Longest outcome text of one item in a batch ack (an error's text is cut
/// to it), so an ack of a full batch fits the sender's answer limit.
pub const ITEM_OUTCOME_LEN_MAX: usize = 96;

/// One message of a batch: what a frame of its own would have carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    /// The message's kind.
    pub kind: MessageKind,
    /// The message's transaction id (the payment id, …).
    pub tx_id: [u8; 16],
    /// The message's payload.
    pub payload: Vec<u8>,
}

impl Encode for BatchItem {
    fn encode(&self, w: &mut Writer) {
        w.u16(self.kind.0).raw(&self.tx_id).bytes32(&self.payload);
    }
}

impl Decode for BatchItem {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let kind = MessageKind(r.u16("batch item kind")?);
        if kind == INBOX_BATCH || kind == INBOX_BATCH_ACK || kind == INBOX_ACK {
            return Err(DecodeError::Invalid {
                what: "batch item kind",
                reason: "a batch carries messages, not batches or acks",
            });
        }
        Ok(BatchItem {
            kind,
            tx_id: r.array("batch item tx_id")?,
            payload: r.bytes32("batch item payload", PAYLOAD_LEN_MAX)?.to_vec(),
        })
    }
}

/// Several messages for one receiver, sealed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxBatch {
    /// The messages, 1 to [`INBOX_BATCH_ITEMS_MAX`].
    pub items: Vec<BatchItem>,
}

impl Encode for InboxBatch {
    fn encode(&self, w: &mut Writer) {
        w.u8(INBOX_ACK_VERSION).list(&self.items);
    }
}

impl Decode for InboxBatch {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        version(r, "inbox batch version")?;
        let items = r.list("inbox batch items", INBOX_BATCH_ITEMS_MAX)?;
        if items.is_empty() {
            return Err(DecodeError::Invalid {
                what: "inbox batch items",
                reason: "a batch carries at least one message",
            });
        }
        Ok(InboxBatch { items })
    }
}

/// What the receiver did with one item of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemResult {
    /// Taken: applied, or a duplicate, or recorded (`outcome` says which).
    /// Not taken: refused or failed; the sender keeps it and tries again.
    pub taken: bool,
    /// The outcome (`applied`, `duplicate`, …) or the error (`refused: …`).
    pub outcome: String,
}

impl Encode for ItemResult {
    fn encode(&self, w: &mut Writer) {
        w.bool(self.taken).text(&self.outcome);
    }
}

impl Decode for ItemResult {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ItemResult {
            taken: r.bool("item result taken")?,
            outcome: r.text("item result outcome", ITEM_OUTCOME_LEN_MAX)?,
        })
    }
}

/// The receiver's acknowledgement of a batch: each item's result, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxBatchAck {
    /// BLAKE3 of the sealed batch frame as received.
    pub batch_hash: [u8; 32],
    /// One result per item of the batch, in the batch's order.
    pub results: Vec<ItemResult>,
}

impl Encode for InboxBatchAck {
    fn encode(&self, w: &mut Writer) {
        w.u8(INBOX_ACK_VERSION)
            .raw(&self.batch_hash)
            .list(&self.results);
    }
}

impl Decode for InboxBatchAck {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        version(r, "inbox batch ack version")?;
        Ok(InboxBatchAck {
            batch_hash: r.array("inbox batch ack hash")?,
            results: r.list("inbox batch ack results", INBOX_BATCH_ITEMS_MAX)?,
        })
    }
}

fn version(r: &mut Reader<'_>, what: &'static str) -> Result<(), DecodeError> {
    match r.u8(what)? {
        INBOX_ACK_VERSION => Ok(()),
        tag => Err(DecodeError::UnknownTag { what, tag }),
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

    fn total<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: &T) {
        let bytes = value.to_wire();
        assert_eq!(&T::from_wire(&bytes).expect("decodes"), value);
        for len in 0..bytes.len() {
            assert!(T::from_wire(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(T::from_wire(&longer).is_err());
        let mut other_version = bytes;
        other_version[0] = 2;
        assert!(T::from_wire(&other_version).is_err());
    }

    #[test]
    fn batches_and_their_acks_round_trip_and_decoding_is_total() {
        let batch = InboxBatch {
            items: vec![
                BatchItem {
                    kind: MessageKind(0x0402),
                    tx_id: [1; 16],
                    payload: vec![9; 40],
                },
                BatchItem {
                    kind: MessageKind(0x0404),
                    tx_id: [2; 16],
                    payload: Vec::new(),
                },
            ],
        };
        total(&batch);
        total(&InboxBatchAck {
            batch_hash: [3; 32],
            results: vec![
                ItemResult {
                    taken: true,
                    outcome: "applied".into(),
                },
                ItemResult {
                    taken: false,
                    outcome: "refused: a DC does not take kind 0x0410".into(),
                },
            ],
        });
    }

    #[test]
    fn a_batch_is_never_empty_never_too_long_and_never_nests() {
        let empty = InboxBatch { items: Vec::new() }.to_wire();
        assert!(InboxBatch::from_wire(&empty).is_err());
        let item = BatchItem {
            kind: MessageKind(0x0402),
            tx_id: [1; 16],
            payload: vec![0; 4],
        };
        let full = InboxBatch {
            items: vec![item.clone(); INBOX_BATCH_ITEMS_MAX],
        };
        total(&full);
        let over = InboxBatch {
            items: vec![item; INBOX_BATCH_ITEMS_MAX + 1],
        }
        .to_wire();
        assert!(InboxBatch::from_wire(&over).is_err());
        for kind in [INBOX_BATCH, INBOX_BATCH_ACK, INBOX_ACK] {
            let nested = InboxBatch {
                items: vec![BatchItem {
                    kind,
                    tx_id: [1; 16],
                    payload: Vec::new(),
                }],
            }
            .to_wire();
            assert!(InboxBatch::from_wire(&nested).is_err(), "{kind:?}");
        }
    }
}
