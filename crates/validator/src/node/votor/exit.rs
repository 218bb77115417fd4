//! Why the Votor machine stops. One variant per reason, each with the
//! sentence an operator reads.

use solana_pubkey::Pubkey;
use towerlock_storage::{InstanceRecord, StorageError};
use towerlock_tower::Slot;

use super::VotorReceiptMismatch;

#[derive(Debug, thiserror::Error)]
pub enum VotorExit {
    /// Another instance took the fence (agave's message).
    #[error("Lost etcd instance lock for {identity}: taken over by {by}")]
    LockLost {
        identity: Pubkey,
        by: Box<InstanceRecord>,
    },
    /// A store got no answer and the policy is to exit.
    #[error("Unable to save vote history to storage: {source}")]
    StorageUnavailable {
        #[source]
        source: StorageError,
    },
    /// Storage refused the write for a reason other than the fence.
    #[error("Unable to save vote history to storage: {source}")]
    StorageFailed {
        #[source]
        source: StorageError,
    },
    /// The receipt did not match the history the votes are in: storage
    /// broke its contract, and the votes were not sent.
    #[error("the vote history receipt does not match the votes it was to release, which were not sent: {0}")]
    ReceiptMismatch(VotorReceiptMismatch),
    /// The loaded history is older than the votes the cluster shows this
    /// identity cast: voting from it could contradict them.
    #[error(
        "refusing to vote as {identity}: the cluster shows a vote of this identity in slot {landed}, \
         but its vote history goes no further than {covered:?}; a history cannot be rebuilt from the chain, \
         so bring the newer one (`towerlock vote-history import`)"
    )]
    HistoryOlderThanLanded {
        identity: Pubkey,
        covered: Option<Slot>,
        landed: Slot,
    },
    /// The loaded history is another node's.
    #[error("refusing to vote as {identity} from the vote history of {found}")]
    WrongHistory { identity: Pubkey, found: Pubkey },
}
