//! Alpenglow's vote history beside the tower: agave's
//! `vote_history-<pubkey>.bin` file, and the `<identity>/vote_history` key in
//! etcd, written only under the identity's fence (docs/vote-history.md).
//!
//! The etcd value is the file's bytes. Every backend keeps it behind the
//! tower's fence: the takeover reads it with the tower, a store is the
//! tower's fenced write, so a fenced-out holder can neither overwrite it nor
//! have it read before its last store.

use std::path::Path;

use solana_pubkey::Pubkey;
use towerlock_tower::SavedVoteHistory;

use crate::{file::write_file, StorageError};

/// agave's name for a vote history file.
pub fn vote_history_file_name(identity: &Pubkey) -> String {
    format!("vote_history-{identity}.bin")
}

/// The identity named by `vote_history-<pubkey>.bin`.
pub fn parse_vote_history_file_name(name: &str) -> Option<Pubkey> {
    name.strip_prefix("vote_history-")?
        .strip_suffix(".bin")?
        .parse()
        .ok()
}

/// Writes `bytes` as the vote history file of `identity` in `dir`, durably
/// (as [`crate::write_tower_file`]): a failure leaves the old file whole.
pub fn write_vote_history_file(
    dir: &Path,
    identity: &Pubkey,
    bytes: &[u8],
) -> Result<(), StorageError> {
    write_file(dir, &vote_history_file_name(identity), bytes, true)
}

/// Reads a vote history's bytes found at `location` (a file, an etcd key,
/// memory): verified to be `identity`'s, or the one sentence why not. The
/// bytes are left where they are.
pub(crate) fn verify_vote_history(
    identity: &Pubkey,
    location: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<SavedVoteHistory, StorageError> {
    SavedVoteHistory::from_bytes(bytes, identity).map_err(|source| StorageError::VoteHistory {
        identity: *identity,
        location: location(),
        source: Box::new(source),
    })
}

/// Reads `vote_history-<identity>.bin` in `dir`; `None` if there is none.
pub(crate) fn read_vote_history_file(
    dir: &Path,
    identity: &Pubkey,
) -> Result<Option<SavedVoteHistory>, StorageError> {
    let path = dir.join(vote_history_file_name(identity));
    match std::fs::read(&path) {
        Ok(bytes) => verify_vote_history(identity, || path.display().to_string(), &bytes).map(Some),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StorageError::Io {
            action: "cannot read",
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_agaves() {
        let identity = Pubkey::new_unique();
        let name = vote_history_file_name(&identity);
        assert_eq!(name, format!("vote_history-{identity}.bin"));
        assert_eq!(parse_vote_history_file_name(&name), Some(identity));
        assert_eq!(
            parse_vote_history_file_name(&format!("tower-1_9-{identity}.bin")),
            None
        );
        assert_eq!(parse_vote_history_file_name("vote_history-nope.bin"), None);
    }
}
