//! Alpenglow's vote history beside the tower: agave's
//! `vote_history-<pubkey>.bin` file, and the `<identity>/vote_history` key in
//! etcd, written only under the identity's fence (docs/vote-history.md).
//!
//! The etcd value is the file's bytes. The takeover does not read it yet: a
//! fenced write is the same conditional transaction as a tower store, so a
//! fenced-out holder cannot overwrite it.

use std::path::Path;

use solana_pubkey::Pubkey;
use towerlock_etcd::etcd_client::TxnOp;
use towerlock_tower::SavedVoteHistory;

use crate::{file::write_file, EtcdTowerStorage, FenceToken, StorageError, VoteHistoryStored};

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

impl EtcdTowerStorage {
    /// Reads and verifies the vote history of `identity` without taking the
    /// fence, for inspection and export.
    pub async fn load_vote_history_unfenced(
        &self,
        identity: &Pubkey,
    ) -> Result<SavedVoteHistory, StorageError> {
        let key = self.key(identity, "vote_history");
        let kv = self
            .get(&key)
            .await?
            .ok_or(StorageError::VoteHistoryNotFound {
                identity: *identity,
            })?;
        SavedVoteHistory::from_bytes(kv.value(), identity).map_err(|source| {
            StorageError::VoteHistory {
                identity: *identity,
                location: format!("etcd key {key}"),
                source: Box::new(source),
            }
        })
    }

    /// Stores `history` if `token` still holds the fence: the tower's
    /// conditional transaction, putting `<identity>/vote_history`. The
    /// receipt is what releases the votes the history holds.
    pub async fn store_vote_history(
        &self,
        token: &FenceToken,
        history: &SavedVoteHistory,
    ) -> Result<VoteHistoryStored, StorageError> {
        if history.node_pubkey() != token.identity {
            return Err(StorageError::IdentityMismatch {
                fenced: token.identity,
                tower: history.node_pubkey(),
            });
        }
        let key = self.key(&token.identity, "vote_history");
        let revision = self
            .fenced(
                "store vote history",
                token,
                TxnOp::put(key, history.to_bytes(), None),
            )
            .await?;
        Ok(VoteHistoryStored::new(token, history, revision))
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
