//! The keyed PIN verification value (DESIGN §3.2): right and wrong PINs,
//! customers enrolled before PVVs, key rotation, and the stored form's
//! decoder.

use mpay_semops::{
    PIN_KEYS_MAX, Pin, PinCheck, PinHash, PinKey, PinKeys, PinKeysError, PinParams, StoredPin,
};
use mpay_wire::{Decode, Encode};
use proptest::prelude::*;

fn pin(digits: &str) -> Pin {
    Pin::new(digits).expect("a PIN")
}

fn keys(seeds: &[u8]) -> PinKeys {
    PinKeys::new(seeds.iter().map(|s| PinKey::new([*s; 32])).collect()).expect("keys")
}

#[test]
fn a_pvv_knows_its_customers_pin_and_nothing_else() {
    let keys = keys(&[1]);
    let stored = StoredPin::Pvv(keys.current().pvv("alice", &pin("1234")));
    assert_eq!(
        stored.check(&keys, "alice", &pin("1234")),
        PinCheck::Right { renew: None }
    );
    assert_eq!(stored.check(&keys, "alice", &pin("1235")), PinCheck::Wrong);
    assert_eq!(stored.check(&keys, "alice", &pin("01234")), PinCheck::Wrong);
    // Bound to the customer: Bob's PVV of the same PIN is another value.
    assert_eq!(stored.check(&keys, "bob", &pin("1234")), PinCheck::Wrong);
    assert!(!stored.is_slow());
}

#[test]
fn a_pvv_is_worthless_without_the_key() {
    let pvv = StoredPin::Pvv(PinKey::new([1; 32]).pvv("alice", &pin("1234")));
    let other = keys(&[2]);
    assert_eq!(
        pvv.check(&other, "alice", &pin("1234")),
        PinCheck::UnknownKey
    );
}

#[test]
fn a_customer_enrolled_before_pvvs_gets_one_at_the_next_right_pin() {
    let keys = keys(&[1]);
    let hash = PinHash::new(&pin("987654"), [3; 16], PinParams::FAST_FOR_TESTS).expect("hash");
    let stored = StoredPin::Argon2(hash);
    assert!(stored.is_slow());
    assert_eq!(
        stored.check(&keys, "carol", &pin("987655")),
        PinCheck::Wrong
    );
    let PinCheck::Right { renew: Some(pvv) } = stored.check(&keys, "carol", &pin("987654")) else {
        panic!("a right PIN against an Argon2id hash must be answered with a PVV");
    };
    assert_eq!(pvv.key(), keys.current().id());
    let migrated = StoredPin::Pvv(pvv);
    assert_eq!(
        migrated.check(&keys, "carol", &pin("987654")),
        PinCheck::Right { renew: None }
    );
    assert_eq!(
        migrated.check(&keys, "carol", &pin("987655")),
        PinCheck::Wrong
    );
}

#[test]
fn a_rotation_renews_pvvs_as_customers_pay_and_a_dropped_key_stops_checking() {
    let old = keys(&[1]);
    let stored = StoredPin::Pvv(old.current().pvv("dave", &pin("4321")));
    let rotated = old.rotated(PinKey::new([2; 32])).expect("rotated");
    assert_eq!(rotated.current().id(), PinKey::new([2; 32]).id());
    assert_eq!(
        stored.check(&rotated, "dave", &pin("0000")),
        PinCheck::Wrong
    );
    let PinCheck::Right { renew: Some(pvv) } = stored.check(&rotated, "dave", &pin("4321")) else {
        panic!("a PVV under a replaced key must be renewed under the current one");
    };
    assert_eq!(pvv.key(), rotated.current().id());
    // The old key rotated out entirely: its PVVs can no longer be checked.
    let mut keys = rotated;
    for seed in 3..(3 + PIN_KEYS_MAX as u8) {
        keys = keys.rotated(PinKey::new([seed; 32])).expect("rotated");
    }
    assert_eq!(keys.all().len(), PIN_KEYS_MAX);
    assert_eq!(
        stored.check(&keys, "dave", &pin("4321")),
        PinCheck::UnknownKey
    );
}

#[test]
fn a_key_set_is_one_to_eight_distinct_keys() {
    assert_eq!(PinKeys::new(vec![]).unwrap_err(), PinKeysError::Empty);
    let twice = vec![PinKey::new([1; 32]), PinKey::new([1; 32])];
    assert_eq!(PinKeys::new(twice).unwrap_err(), PinKeysError::Duplicate);
    let many = (0..=PIN_KEYS_MAX as u8)
        .map(|s| PinKey::new([s; 32]))
        .collect();
    assert_eq!(PinKeys::new(many).unwrap_err(), PinKeysError::TooMany);
}

#[test]
fn no_key_or_pvv_prints_its_secret() {
    let key = PinKey::new([0xab; 32]);
    let pvv = key.pvv("erin", &pin("1111"));
    for text in [
        format!("{key:?}"),
        format!("{pvv:?}"),
        format!("{:?}", keys(&[0xab])),
    ] {
        assert!(!text.contains("171, 171, 171"), "{text}");
    }
}

#[test]
fn the_stored_form_round_trips_both_kinds() {
    let keys = keys(&[9]);
    let pvv = StoredPin::Pvv(keys.current().pvv("frank", &pin("2468")));
    let wire = pvv.to_wire();
    assert_eq!(wire.len(), 1 + 8 + 32);
    assert_eq!(StoredPin::from_wire(&wire).expect("decodes"), pvv);
    // A hash stored before PVVs (the bytes of a PinHash, untagged).
    let hash = PinHash::new(&pin("2468"), [4; 16], PinParams::FAST_FOR_TESTS).expect("hash");
    let legacy = StoredPin::from_wire(&hash.to_wire()).expect("a legacy hash decodes");
    assert_eq!(legacy, StoredPin::Argon2(hash));
    assert!(StoredPin::from_wire(&[2; 41]).is_err(), "an unknown tag");
    assert!(StoredPin::from_wire(&wire[..40]).is_err(), "short");
}

proptest! {
    #[test]
    fn the_stored_pin_decoder_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let _ = StoredPin::from_wire(&bytes);
    }
}
