//! The vote history left in etcd, for the audit: every landed Votor vote of
//! an identity must be in the history it stored before sending it.

use solana_pubkey::Pubkey;
use towerlock_audit::event::Event;
use towerlock_audit::{votes_missing_from_history, HistoryVote, StoredVoteHistory, Violation};
use towerlock_storage::{EtcdTowerStorage, StorageError, TowerStorage};
use towerlock_tower::VoteHistory;

use towerlock_etcd::EtcdConfig;

use crate::LabError;

/// A vote history as the audit reads it (plain data: the audit shares no
/// code with the validator).
pub fn audited_history(history: &VoteHistory) -> StoredVoteHistory {
    StoredVoteHistory {
        identity: history.node_pubkey.to_string(),
        root: history.root,
        votes: history
            .votes()
            .map(|vote| HistoryVote {
                kind: vote.kind().to_string(),
                slot: vote.slot(),
                block_id: vote.block().map(|block| block.block_id.to_string()),
            })
            .collect(),
    }
}

/// The vote history of `identity` in the etcd `config` reaches (`None` if
/// none is stored).
pub async fn stored_vote_history(
    config: &EtcdConfig,
    identity: &Pubkey,
) -> Result<Option<VoteHistory>, LabError> {
    let storage = EtcdTowerStorage::connect(config)
        .await
        .map_err(LabError::storage("connect to etcd"))?;
    match storage.load_vote_history_unfenced(identity).await {
        Ok(saved) => Ok(Some(saved.into_history())),
        Err(StorageError::VoteHistoryNotFound { .. }) => Ok(None),
        Err(err) => Err(LabError::storage("read the vote history")(err)),
    }
}

/// The landed votes of `identity` in `events` that the vote history it
/// left in etcd does not hold; `None` when it left none.
pub async fn votes_missing_from_etcd(
    config: &EtcdConfig,
    identity: &Pubkey,
    events: &[Event],
) -> Result<Option<Vec<Violation>>, LabError> {
    Ok(stored_vote_history(config, identity)
        .await?
        .map(|history| votes_missing_from_history(&audited_history(&history), events)))
}
