//! wincode's default configuration, as far as the vote history uses it.
//!
//! agave encodes the vote history with `wincode` 0.6 and its default
//! configuration (`wincode::config::Configuration::default()`, only the
//! preallocation limit raised): integers fixed-width little-endian, a length
//! prefix as a `u64` (`BincodeLen`), enum tags as a `u32` unless the type
//! says `#[wincode(tag_encoding = "u8")]`, byte arrays (`Pubkey`, `Hash`,
//! `Signature`) raw without a length. That is bincode 1.3's fixint layout.
//!
//! The reader checks every length against the bytes left before it builds
//! anything, so a hostile length prefix fails at once instead of allocating.

use super::VoteHistoryError;

/// Reads the wincode primitives from a byte slice, naming the field that was
/// being read in every error.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.offset
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], VoteHistoryError> {
        if n > self.left() {
            return Err(VoteHistoryError::corrupt(format!(
                "truncated: {what} needs {n} bytes at offset {}, only {} left",
                self.offset,
                self.left()
            )));
        }
        let slice = &self.bytes[self.offset..self.offset + n];
        self.offset += n;
        Ok(slice)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &str,
    ) -> Result<[u8; N], VoteHistoryError> {
        Ok(self
            .take(N, what)?
            .try_into()
            .expect("take returns exactly N bytes"))
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, VoteHistoryError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, VoteHistoryError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, VoteHistoryError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, VoteHistoryError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A `u64` length prefix of a sequence whose elements take at least
    /// `min_element` bytes each; refused when the bytes left cannot hold it.
    pub(crate) fn len(
        &mut self,
        min_element: usize,
        what: &str,
    ) -> Result<usize, VoteHistoryError> {
        let at = self.offset;
        let len = self.u64(what)?;
        let room = self.left() / min_element.max(1);
        match usize::try_from(len) {
            Ok(len) if len <= room => Ok(len),
            _ => Err(VoteHistoryError::corrupt(format!(
                "{what} claims {len} elements at offset {at}, but the {} bytes left hold at most {room}",
                self.left()
            ))),
        }
    }

    /// Refuses bytes after the value.
    pub(crate) fn finish(self, what: &str) -> Result<(), VoteHistoryError> {
        match self.left() {
            0 => Ok(()),
            n => Err(VoteHistoryError::corrupt(format!(
                "{n} trailing bytes after the {what} (which ends at offset {})",
                self.offset
            ))),
        }
    }
}

/// Appends the wincode primitives to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.raw(&value.to_le_bytes());
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.raw(&value.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.raw(&value.to_le_bytes());
    }

    pub(crate) fn len(&mut self, len: usize) {
        self.u64(len as u64);
    }
}
