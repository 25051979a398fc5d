//! The compact binary encoding every mpay message uses on the wire and at rest.
//!
//! The rules are few, so that another implementation can follow them from
//! `docs/wire-format.md`: integers are fixed width and big-endian; byte strings
//! and text carry a length prefix (`u16` for short fields, `u32` for long ones)
//! checked against a named maximum; enums are one tag byte; optional values
//! are a presence byte (0 or 1) and the value. Nothing is self-describing: the
//! message kind in the envelope header says which layout follows.
//!
//! Decoding is total: any byte string yields a value or a [`DecodeError`],
//! never a panic, and a value must consume its input exactly.

use thiserror::Error;

/// Why a byte string is not a valid encoding. Always the sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("input ended early: {what} needs {needed} bytes, {remaining} left")]
    UnexpectedEnd {
        what: &'static str,
        needed: usize,
        remaining: usize,
    },
    #[error("{count} bytes left over after the value")]
    TrailingBytes { count: usize },
    #[error("unknown {what} tag {tag}")]
    UnknownTag { what: &'static str, tag: u8 },
    #[error("{what} is {len} bytes long, more than the limit of {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    #[error("invalid {what}: {reason}")]
    Invalid {
        what: &'static str,
        reason: &'static str,
    },
}

/// Largest text field (descriptions, names): 1 KiB.
pub const TEXT_LEN_MAX: usize = 1024;
/// Largest length-prefixed byte field inside one message: 64 KiB.
pub const BYTES_LEN_MAX: usize = 64 * 1024;
/// Largest list inside one message.
pub const LIST_LEN_MAX: usize = 4096;

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary: how a producer cuts its own text to a field's limit
/// (a decoder refuses text over it instead).
pub fn prefix_within(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Appends encodings to a buffer.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }
    /// Fixed-size bytes, no prefix.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// `u16` length then the bytes. Panics if longer than `u16::MAX`: a
    /// local programming error, since every caller's field has a smaller limit.
    pub fn bytes16(&mut self, v: &[u8]) -> &mut Self {
        let len = u16::try_from(v.len()).expect("field longer than u16::MAX");
        self.u16(len).raw(v)
    }
    /// `u32` length then the bytes.
    pub fn bytes32(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).expect("field longer than u32::MAX");
        self.u32(len).raw(v)
    }
    /// UTF-8 text with a `u16` length.
    pub fn text(&mut self, v: &str) -> &mut Self {
        self.bytes16(v.as_bytes())
    }
    pub fn put<T: Encode + ?Sized>(&mut self, v: &T) -> &mut Self {
        v.encode(self);
        self
    }
    /// Presence byte then the value.
    pub fn option<T: Encode>(&mut self, v: &Option<T>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => self.u8(1).put(v),
        }
    }
    /// `u16` count then each item.
    pub fn list<T: Encode>(&mut self, items: &[T]) -> &mut Self {
        let len = u16::try_from(items.len()).expect("list longer than u16::MAX");
        self.u16(len);
        for item in items {
            item.encode(self);
        }
        self
    }
}

/// Reads encodings from a byte slice; every read checks the remaining length.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self { input }
    }
    pub fn remaining(&self) -> usize {
        self.input.len()
    }
    /// Fails unless all input was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                count: self.input.len(),
            })
        }
    }
    pub fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.input.len() < n {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed: n,
                remaining: self.input.len(),
            });
        }
        let (head, tail) = self.input.split_at(n);
        self.input = tail;
        Ok(head)
    }
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(what, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::UnknownTag { what, tag }),
        }
    }
    pub fn bytes16(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16(what)?);
        self.limited(what, len, max)
    }
    pub fn bytes32(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32(what)?).unwrap_or(usize::MAX);
        self.limited(what, len, max)
    }
    fn limited(
        &mut self,
        what: &'static str,
        len: usize,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        if len > max {
            return Err(DecodeError::TooLong { what, len, max });
        }
        self.take(what, len)
    }
    pub fn text(&mut self, what: &'static str, max: usize) -> Result<String, DecodeError> {
        let bytes = self.bytes16(what, max)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { what })
    }
    pub fn get<T: Decode>(&mut self) -> Result<T, DecodeError> {
        T::decode(self)
    }
    pub fn option<T: Decode>(&mut self, what: &'static str) -> Result<Option<T>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(self)?)),
            tag => Err(DecodeError::UnknownTag { what, tag }),
        }
    }
    pub fn list<T: Decode>(
        &mut self,
        what: &'static str,
        max: usize,
    ) -> Result<Vec<T>, DecodeError> {
        let len = usize::from(self.u16(what)?);
        if len > max {
            return Err(DecodeError::TooLong { what, len, max });
        }
        // Each item takes at least one byte, so a count larger than the input is
        // rejected before allocating for it.
        if len > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed: len,
                remaining: self.remaining(),
            });
        }
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(T::decode(self)?);
        }
        Ok(items)
    }
}

/// A value with a wire encoding.
pub trait Encode {
    fn encode(&self, w: &mut Writer);

    fn to_wire(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_bytes()
    }
}

/// A value that can be decoded from its wire encoding.
pub trait Decode: Sized {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a value that must span all of `bytes`.
    fn from_wire(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let value = Self::decode(&mut r)?;
        r.finish()?;
        Ok(value)
    }
}

impl<T: Encode + ?Sized> Encode for Box<T> {
    fn encode(&self, w: &mut Writer) {
        (**self).encode(w);
    }
}

impl<T: Decode> Decode for Box<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        T::decode(r).map(Box::new)
    }
}

impl<const N: usize> Encode for [u8; N] {
    fn encode(&self, w: &mut Writer) {
        w.raw(self);
    }
}

impl<const N: usize> Decode for [u8; N] {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array("fixed bytes")
    }
}

impl Encode for u64 {
    fn encode(&self, w: &mut Writer) {
        w.u64(*self);
    }
}

impl Decode for u64 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u64("u64")
    }
}

/// Declares a `u8`-tagged enum of unit variants with its wire encoding.
#[macro_export]
macro_rules! wire_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident : $what:literal { $($(#[$vmeta:meta])* $variant:ident = $tag:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        $vis enum $name { $($(#[$vmeta])* $variant = $tag),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn tag(self) -> u8 { self as u8 }
            pub fn from_tag(tag: u8) -> Option<Self> {
                match tag { $($tag => Some($name::$variant),)+ _ => None }
            }
        }

        impl $crate::Encode for $name {
            fn encode(&self, w: &mut $crate::Writer) { w.u8(self.tag()); }
        }

        impl $crate::Decode for $name {
            fn decode(r: &mut $crate::Reader<'_>) -> Result<Self, $crate::DecodeError> {
                let tag = r.u8($what)?;
                $name::from_tag(tag).ok_or($crate::DecodeError::UnknownTag { what: $what, tag })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_are_big_endian_fixed_width() {
        let mut w = Writer::new();
        w.u8(1)
            .u16(0x0203)
            .u32(0x0405_0607)
            .u64(0x0809_0a0b_0c0d_0e0f);
        assert_eq!(
            w.as_bytes(),
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        );
    }

    #[test]
    fn length_over_the_limit_is_rejected_before_reading() {
        let mut w = Writer::new();
        w.bytes16(&[7; 20]);
        let bytes = w.into_bytes();
        let err = Reader::new(&bytes).bytes16("field", 10).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLong {
                what: "field",
                len: 20,
                max: 10
            }
        );
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        assert_eq!(
            u64::from_wire(&[0; 9]),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
        assert!(matches!(
            u64::from_wire(&[0; 7]),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }

    #[test]
    fn huge_list_count_does_not_allocate() {
        let err = Reader::new(&[0x0f, 0xff, 1])
            .list::<u64>("items", LIST_LEN_MAX)
            .unwrap_err();
        assert!(matches!(err, DecodeError::UnexpectedEnd { .. }));
    }

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        assert_eq!(prefix_within("applied", 96), "applied");
        assert_eq!(prefix_within("ééé", 3), "é");
        assert_eq!(prefix_within("abc", 0), "");
    }

    proptest! {
        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            let _ = r.text("t", TEXT_LEN_MAX);
            let _ = r.option::<u64>("o");
            let _ = r.list::<[u8; 3]>("l", 16);
            let _ = r.bool("b");
        }

        #[test]
        fn a_prefix_within_a_limit_is_text_and_fits(s in ".{0,64}", max in 0usize..80) {
            let prefix = prefix_within(&s, max);
            prop_assert!(prefix.len() <= max && s.starts_with(prefix));
            prop_assert!(prefix.len() == s.len() || prefix.len() + 4 > max);
        }

        #[test]
        fn text_round_trips(s in ".{0,200}") {
            let mut w = Writer::new();
            w.text(&s);
            let bytes = w.into_bytes();
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(r.text("t", TEXT_LEN_MAX).unwrap(), s);
            prop_assert!(r.finish().is_ok());
        }
    }
}
