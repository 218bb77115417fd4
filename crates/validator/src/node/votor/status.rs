//! Where the Votor machine stands, for the admin RPC and monitoring.

use solana_pubkey::Pubkey;
use towerlock_tower::{vote_history::VotePayload, Slot};

use super::VotorMachine;

/// What the machine does about votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VotorPhase {
    /// Waiting for the history read under the fence: no vote.
    AwaitingHistory,
    /// Deciding votes.
    Voting,
    /// An exit was emitted.
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VotorStatus {
    pub identity: Pubkey,
    pub phase: VotorPhase,
    /// A store's outcome was unknown: votes are recorded, none leaves until
    /// a store succeeds.
    pub skipping: bool,
    /// The sent vote with the newest slot.
    pub newest_vote: Option<VotePayload>,
    /// The newest slot with a vote recorded, sent or not.
    pub newest_recorded_slot: Option<Slot>,
    /// The newest finalized slot seen (the history's root).
    pub finalized_slot: Slot,
    /// The newest slot the cluster was reported at.
    pub cluster_slot: Option<Slot>,
    pub store_in_flight: bool,
    /// Votes recorded and waiting for the store in flight.
    pub queued_votes: usize,
    pub votes_sent: u64,
    pub stores: u64,
    pub store_failures: u64,
    /// Slots in which a second, different block was seen.
    pub duplicate_blocks: u64,
}

impl VotorMachine {
    pub fn status(&self) -> VotorStatus {
        VotorStatus {
            identity: self.identity,
            phase: self.phase,
            skipping: self.skipping,
            newest_vote: self.newest_sent,
            newest_recorded_slot: self.history.last_voted_slot(),
            finalized_slot: self.root,
            cluster_slot: self.cluster_slot,
            store_in_flight: self.in_flight.is_some(),
            queued_votes: self.queued.len(),
            votes_sent: self.counters.votes_sent,
            stores: self.counters.stores,
            store_failures: self.counters.store_failures,
            duplicate_blocks: self.counters.duplicate_blocks,
        }
    }
}
