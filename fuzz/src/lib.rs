//! Helpers shared by the fuzz targets: the round-trip check every decoder
//! must pass. The `engines` target drives `mpay_sim::schedule`, the harness
//! that runs the real seller and buyer engines under a network, a disk and
//! crashes the fuzzer chooses (its tests run with the workspace's).

use std::fmt::Debug;

use mpay_wire::{Decode, Encode};


/// Decodes `data` as a `T`. If it decodes, the encoding is canonical (it
/// re-encodes to exactly `data`, as docs/wire-format.md promises) and
/// decoding the re-encoding gives the same value. A decoder must never
/// panic; any panic is a finding.
pub fn roundtrip<T: Encode + Decode + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let value = T::from_wire(data).ok()?;
    let encoded = value.to_wire();
    assert_eq!(
        encoded,
        data,
        "{} is not canonical",
        std::any::type_name::<T>()
    );
    let again = T::from_wire(&encoded).expect("a re-encoded value decodes");
    assert_eq!(again, value);
    Some(value)
}

/// Splits the first byte off as a selector: `(selector, rest)`.
pub fn select(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(s, rest)| (*s, rest))
}
