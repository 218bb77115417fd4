//! Why a node stops (other than an orderly exit). One variant per reason,
//! each with the sentence an operator reads.

use std::time::Duration;

use solana_pubkey::Pubkey;
use towerlock_storage::{InstanceRecord, StorageError};
use towerlock_tower::Slot;

use super::Now;

#[derive(Debug, thiserror::Error)]
pub enum NodeExit {
    /// Another instance took the fence (agave's message).
    #[error("Lost etcd instance lock for {identity}: taken over by {by}")]
    LockLost {
        identity: Pubkey,
        by: Box<InstanceRecord>,
    },
    /// Another instance published this identity with a newer outset
    /// (agave's message). `ahead` is how far that outset lies beyond this
    /// machine's clock when that is more than a clock's usual drift: then
    /// the "newer" instance may only have a clock set ahead.
    #[error(
        "duplicate running instances of the same validator node: {identity}{}",
        clock_hint(*ahead)
    )]
    DuplicateInstance {
        identity: Pubkey,
        ahead: Option<Duration>,
    },
    /// A store got no answer and the policy is to exit (agave's message).
    #[error("Unable to save tower to storage: {source}")]
    StorageUnavailable {
        #[source]
        source: StorageError,
    },
    /// Storage refused a write for a reason other than the fence (an etcd
    /// error, a file that cannot be written).
    #[error("Unable to save tower to storage: {source}")]
    StorageFailed {
        #[source]
        source: StorageError,
    },
    /// The tower stored for the identity cannot be used; nothing was moved.
    #[error(
        "cannot take over the tower of {identity}: {source}; the stored tower and the fence were left untouched \
         (inspect it with `towerlock tower show --identity {identity}` and the etcd flags; \
         replace it with `towerlock tower import --force`)"
    )]
    TakeoverRefused {
        identity: Pubkey,
        #[source]
        source: StorageError,
    },
    /// The tower found for the identity is missing or older than its landed
    /// votes; the node will not invent one.
    #[error("refusing to take over as {identity}: {refusal}")]
    TowerRefused {
        identity: Pubkey,
        refusal: crate::node::decide::TowerRefusal,
    },
    /// The tower could not be signed for storing.
    #[error("cannot sign the tower of {identity}: {reason}")]
    CannotSignTower { identity: Pubkey, reason: String },
    /// A store receipt did not match the vote it was to release. Storage
    /// broke its contract; the vote was not sent.
    #[error("the store receipt for {identity} covers the vote at {stored:?}, not the vote at {slot}: the vote was not sent")]
    ReceiptMismatch {
        identity: Pubkey,
        slot: Slot,
        stored: Option<Slot>,
    },
    /// The vote account does not exist in the cluster.
    #[error("vote account {vote_account} does not exist in the cluster")]
    VoteAccountMissing { vote_account: Pubkey },
    /// The vote account names another node (a secondary needs
    /// `--no-check-vote-account`).
    #[error("vote account {vote_account} belongs to node {node}, not to this identity {identity}; a secondary needs --no-check-vote-account")]
    VoteAccountNotOurs {
        vote_account: Pubkey,
        node: String,
        identity: Pubkey,
    },
    /// The cluster did not answer at start-up.
    #[error("cannot use the cluster at {url}: {reason} (is the cluster running, and is --entrypoint its RPC address?)")]
    ClusterUnreachable { url: String, reason: String },
    /// The entrypoint is a Solana RPC, but not towerlock's local cluster.
    #[error(
        "{url} is a Solana RPC (solana-core {version}), not a towerlock local cluster: \
         towerlock-validator is the reference node of the fenced-tower protocol and runs only against \
         `towerlock cluster run`; beside agave, use towerlock's operator tools (certs, etcd check, \
         tower import/export, the admin client, the sentinel, status)"
    )]
    NotTowerlockCluster { url: String, version: String },
    /// The cluster's streams could not be reopened.
    /// The Votor machine stopped for a reason of its own (a history older
    /// than the landed votes, another node's history, a receipt mismatch).
    #[error("{source}")]
    Votor {
        #[source]
        source: crate::node::votor::VotorExit,
    },
    #[error("lost the cluster: {reason}")]
    ClusterLost { reason: String },
}

/// How far ahead of this machine's clock an outset must be before it is
/// named as a clock error: NTP keeps machines within milliseconds, and a
/// restart takes longer than this.
const CLOCK_AHEAD_NOTICE: Duration = Duration::from_secs(5);

/// How far `outset` (µs) lies beyond this machine's clock, when that is more
/// than drift explains.
pub(super) fn ahead_of_clock(outset: u64, now: Now) -> Option<Duration> {
    let ahead = Duration::from_micros(outset.saturating_sub(now.unix_micros));
    (ahead > CLOCK_AHEAD_NOTICE).then_some(ahead)
}

fn clock_hint(ahead: Option<Duration>) -> String {
    match ahead {
        Some(ahead) => format!(
            "; the other instance's start time is {:.1} s ahead of this machine's clock, so one of the two clocks is wrong \
             (check NTP on both machines); an instance with a clock ahead keeps every restart of this identity out until the true time passes its start",
            ahead.as_secs_f64()
        ),
        None => String::new(),
    }
}
