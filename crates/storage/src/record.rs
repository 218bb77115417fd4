//! The records towerlock defines in etcd — the fence holder's instance
//! record and the last fenced leader slot — carry a format version, so that
//! a node of one release can tell a record of the next one and refuse it
//! with a clear sentence instead of misreading it. The tower itself stays
//! agave's bytes.
//!
//! Format 1 (the first release) had no version: an instance record was a
//! JSON object without `format`, a leader slot a bare decimal number. Both
//! are still read.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use towerlock_tower::Slot;

/// The record format this release writes, and the newest it reads.
pub const RECORD_FORMAT: u32 = 2;

/// Why a stored record cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Written by a newer release.
    #[error(
        "written by a newer towerlock (record format {format}; this version reads formats up to {RECORD_FORMAT})"
    )]
    Newer { format: u32 },
    /// Not a record of any known format.
    #[error("{0}")]
    Unreadable(String),
}

/// A record with its format.
#[derive(Serialize, Deserialize)]
struct Versioned<T> {
    #[serde(default = "first_format")]
    format: u32,
    #[serde(flatten)]
    record: T,
}

fn first_format() -> u32 {
    1
}

/// The bytes of `record` in the current format.
pub(crate) fn to_bytes<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(&Versioned {
        format: RECORD_FORMAT,
        record,
    })
    .expect("records always serialize")
}

/// Reads a JSON record of any format up to [`RECORD_FORMAT`].
pub(crate) fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RecordError> {
    // The format first: a newer record may not parse as this one at all.
    #[derive(Deserialize)]
    struct Format {
        #[serde(default = "first_format")]
        format: u32,
    }
    let Format { format } =
        serde_json::from_slice(bytes).map_err(|e| RecordError::Unreadable(e.to_string()))?;
    if format > RECORD_FORMAT {
        return Err(RecordError::Newer { format });
    }
    serde_json::from_slice::<Versioned<T>>(bytes)
        .map(|versioned| versioned.record)
        .map_err(|e| RecordError::Unreadable(e.to_string()))
}

#[derive(Serialize, Deserialize)]
struct LeaderRecord {
    slot: Slot,
}

/// The bytes of the `<identity>/leader` record for `slot`.
pub fn leader_record(slot: Slot) -> Vec<u8> {
    to_bytes(&LeaderRecord { slot })
}

/// The slot in a `<identity>/leader` record, of this format or format 1 (a
/// bare decimal number).
pub fn parse_leader_record(bytes: &[u8]) -> Result<Slot, RecordError> {
    if let Some(slot) = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.trim().parse().ok())
    {
        return Ok(slot);
    }
    from_bytes::<LeaderRecord>(bytes)
        .map(|record| record.slot)
        .map_err(|err| match err {
            RecordError::Unreadable(_) => RecordError::Unreadable(format!(
                "the last leader slot {:?} is not a slot number",
                String::from_utf8_lossy(bytes)
            )),
            newer => newer,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_records_of_this_and_the_first_format_are_read() {
        assert_eq!(parse_leader_record(&leader_record(104)), Ok(104));
        assert_eq!(
            String::from_utf8(leader_record(104)).unwrap(),
            r#"{"format":2,"slot":104}"#
        );
        assert_eq!(parse_leader_record(b"104"), Ok(104), "format 1");
    }

    #[test]
    fn a_newer_record_is_refused_and_garbage_is_unreadable() {
        assert_eq!(
            parse_leader_record(br#"{"format":3,"slot":104,"producer":"x"}"#),
            Err(RecordError::Newer { format: 3 })
        );
        let newer = RecordError::Newer { format: 3 }.to_string();
        assert!(newer.contains("newer towerlock"), "{newer}");
        assert!(matches!(
            parse_leader_record(b"not a slot"),
            Err(RecordError::Unreadable(reason)) if reason.contains("not a slot number")
        ));
    }
}
