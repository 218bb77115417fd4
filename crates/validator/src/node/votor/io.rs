//! What goes into the Votor machine ([`Event`]) and what comes out
//! ([`Action`]).
//!
//! A store of the vote history carries an [`OpId`] and its answer comes back
//! with it; an answer whose id is not the store in flight (late, repeated,
//! from before a reload) is ignored.

use solana_hash::Hash;
use towerlock_storage::{StorageError, VoteHistoryStored};
use towerlock_tower::{vote_history::Block, Slot, VoteHistory};

use super::{SendableVotorVote, VotorExit};
pub use crate::node::machine::OpId;

/// A share of the epoch's stake in basis points: 10 000 is all of it.
/// Integers, so that a threshold is met or not the same way everywhere.
pub type StakeBps = u32;

/// A certificate the node's pool assembled or received: enough stake voted
/// one way for the cluster to act on it (SIMD-0326).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certificate {
    /// At least 60 % notarized this block.
    Notarize(Block),
    /// At least 60 % voted notarize or notarize-fallback for this block.
    NotarizeFallback(Block),
    /// At least 60 % voted skip or skip-fallback in this slot.
    Skip(Slot),
    /// At least 80 % notarized this block: it is final (and notarized).
    FastFinalize(Block),
    /// At least 60 % cast a finalize vote in this slot: it is final.
    Finalize(Slot),
}

/// The stake behind the first-round votes seen in one slot, as the pool
/// counts them: what SafeToNotar and SafeToSkip are decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotTally {
    pub slot: Slot,
    /// Stake that voted skip in the slot.
    pub skip: StakeBps,
    /// Stake that voted notarize, per block id.
    pub notarize: Vec<(Hash, StakeBps)>,
}

/// Something that happened.
#[derive(Debug)]
pub enum Event {
    /// The vote history read under the fence at takeover or set-identity
    /// (`None`: this identity never stored one), with the newest slot the
    /// cluster shows this identity voted in, if any. Until it comes the
    /// machine casts no vote.
    Loaded {
        history: Option<VoteHistory>,
        landed: Option<Slot>,
    },
    /// A block for `slot` was received and replayed; `parent: None` means it
    /// builds on the genesis block the machine was configured with.
    Block {
        slot: Slot,
        block_id: Hash,
        parent: Option<Block>,
    },
    /// A certificate.
    Certificate(Certificate),
    /// The stake behind the votes of a slot changed.
    Tally(SlotTally),
    /// The cluster is at this slot: its leader window has started.
    Slot(Slot),
    /// Time passed (timeouts are checked at every event; this is one with
    /// nothing else in it).
    Tick,
    /// The answer to [`Action::StoreVoteHistory`].
    Stored {
        op: OpId,
        result: Result<VoteHistoryStored, StorageError>,
    },
}

/// Something the node must do, in the order given.
#[must_use]
#[derive(Debug)]
pub enum Action {
    /// Sign `history` with the identity and store it under the fence; answer
    /// with [`Event::Stored`]. After a store whose outcome is unknown the
    /// node renews the fence before this one, so that the earlier write
    /// cannot land after it (a rule of the node's, for every record).
    StoreVoteHistory { op: OpId, history: VoteHistory },
    /// Send a vote whose history is stored.
    SendVote(SendableVotorVote),
    /// Stop: why. Nothing follows.
    Exit(VotorExit),
}
