//! Persist before send, in types, for Alpenglow votes: a vote recorded in
//! the vote history becomes sendable only with the receipt of a successful
//! store of that history, which only storage can make.
//!
//! The tower's rule (`node::vote`) compares the receipt's last vote with the
//! vote; an Alpenglow vote may be older than the history's newest slot (a
//! finalize or fallback vote), so here the pending votes keep the stored
//! history's newest slot and vote count, and the receipt must name both.

use solana_pubkey::Pubkey;
use towerlock_storage::VoteHistoryStored;
use towerlock_tower::{vote_history::VotePayload, Slot, VoteHistory};

/// Votes recorded in a history that was handed to storage, awaiting its
/// receipt.
#[must_use = "pending votes must be stored, then sent"]
#[derive(Debug)]
pub struct PendingVotorVotes {
    identity: Pubkey,
    newest_vote: Option<Slot>,
    votes_in_history: usize,
    votes: Vec<VotePayload>,
}

/// A vote whose history is stored: the only kind the node sends.
/// Neither `Clone` nor constructible outside this file.
#[derive(Debug, PartialEq, Eq)]
pub struct SendableVotorVote {
    identity: Pubkey,
    payload: VotePayload,
}

/// A receipt that does not cover the votes it was to release.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the receipt covers the history of {stored_identity} up to slot {stored_newest:?} with {stored_votes} votes, \
     not the history of {identity} up to slot {newest:?} with {votes} votes"
)]
pub struct VotorReceiptMismatch {
    pub identity: Pubkey,
    pub newest: Option<Slot>,
    pub votes: usize,
    pub stored_identity: Pubkey,
    pub stored_newest: Option<Slot>,
    pub stored_votes: usize,
}

impl PendingVotorVotes {
    /// `votes` as recorded in `history`, the history about to be stored. A
    /// vote the history does not hold is dropped: it could not be released.
    pub(super) fn new(history: &VoteHistory, votes: Vec<VotePayload>) -> Self {
        let holds = |vote: &VotePayload| {
            history
                .votes_cast
                .get(&vote.slot())
                .is_some_and(|cast| cast.contains(vote))
        };
        debug_assert!(votes.iter().all(holds), "a pending vote is in its history");
        Self {
            identity: history.node_pubkey,
            newest_vote: history.last_voted_slot(),
            votes_in_history: history.votes().count(),
            votes: votes.into_iter().filter(holds).collect(),
        }
    }

    pub fn votes(&self) -> &[VotePayload] {
        &self.votes
    }

    /// The store succeeded: the votes may leave, if the receipt is for this
    /// identity's history and names the history they were recorded in.
    pub fn stored(
        self,
        receipt: VoteHistoryStored,
    ) -> Result<Vec<SendableVotorVote>, VotorReceiptMismatch> {
        if receipt.identity() != self.identity
            || receipt.newest_vote() != self.newest_vote
            || receipt.votes() != self.votes_in_history
        {
            return Err(VotorReceiptMismatch {
                identity: self.identity,
                newest: self.newest_vote,
                votes: self.votes_in_history,
                stored_identity: receipt.identity(),
                stored_newest: receipt.newest_vote(),
                stored_votes: receipt.votes(),
            });
        }
        let identity = self.identity;
        Ok(self
            .votes
            .into_iter()
            .map(|payload| SendableVotorVote { identity, payload })
            .collect())
    }
}

impl SendableVotorVote {
    /// The identity whose stored history holds the vote: it signs it.
    pub fn identity(&self) -> Pubkey {
        self.identity
    }

    /// The vote, as recorded (shred version 0, as agave records it; the
    /// sender signs it with the cluster's).
    pub fn payload(&self) -> &VotePayload {
        &self.payload
    }

    pub fn slot(&self) -> Slot {
        self.payload.slot()
    }
}
