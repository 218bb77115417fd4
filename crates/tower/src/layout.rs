//! The serde shapes agave writes, field for field (docs/architecture.md §7).
//!
//! bincode 1.3 with fixed-width little-endian integers turns these into the
//! exact bytes of agave's `tower-1_9-<pubkey>.bin`. Nothing here has logic: the
//! conversions to and from [`crate::Tower`] live in `saved.rs`.

use serde::{Deserialize, Serialize};
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_vote_interface::state::{
    serde_compact_vote_state_update, serde_tower_sync, BlockTimestamp, TowerSync, Vote,
    VoteState1_14_11, VoteStateUpdate,
};

use crate::{Slot, UnixTimestamp};

/// The last vote a tower sent, in whichever instruction shape it used.
///
/// agave's `VoteTransaction`; variant order and the compact encodings of the
/// last two variants are part of the file format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VoteTransaction {
    Vote(Vote),
    VoteStateUpdate(VoteStateUpdate),
    #[serde(with = "serde_compact_vote_state_update")]
    CompactVoteStateUpdate(VoteStateUpdate),
    #[serde(with = "serde_tower_sync")]
    TowerSync(TowerSync),
}

impl VoteTransaction {
    /// Slots of the vote, oldest first.
    pub fn slots(&self) -> Vec<Slot> {
        match self {
            VoteTransaction::Vote(vote) => vote.slots.clone(),
            VoteTransaction::VoteStateUpdate(update)
            | VoteTransaction::CompactVoteStateUpdate(update) => update.slots(),
            VoteTransaction::TowerSync(sync) => sync.slots(),
        }
    }

    /// The newest slot the vote is for.
    pub fn last_voted_slot(&self) -> Option<Slot> {
        self.slots().last().copied()
    }

    /// The bank hash of the newest voted slot.
    pub fn hash(&self) -> Hash {
        match self {
            VoteTransaction::Vote(vote) => vote.hash,
            VoteTransaction::VoteStateUpdate(update)
            | VoteTransaction::CompactVoteStateUpdate(update) => update.hash,
            VoteTransaction::TowerSync(sync) => sync.hash,
        }
    }

    /// The wall-clock timestamp the vote carried, if any.
    pub fn timestamp(&self) -> Option<UnixTimestamp> {
        match self {
            VoteTransaction::Vote(vote) => vote.timestamp,
            VoteTransaction::VoteStateUpdate(update)
            | VoteTransaction::CompactVoteStateUpdate(update) => update.timestamp,
            VoteTransaction::TowerSync(sync) => sync.timestamp,
        }
    }
}

impl Default for VoteTransaction {
    fn default() -> Self {
        VoteTransaction::TowerSync(TowerSync::default())
    }
}

/// agave's `Tower1_14_11`: the data signed inside a current saved tower.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tower1_14_11 {
    pub node_pubkey: Pubkey,
    pub threshold_depth: usize,
    pub threshold_size: f64,
    pub vote_state: VoteState1_14_11,
    pub last_vote: VoteTransaction,
    pub last_timestamp: BlockTimestamp,
}

/// agave's `Tower1_7_14`: the same, with a plain `Vote` as last vote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tower1_7_14 {
    pub node_pubkey: Pubkey,
    pub threshold_depth: usize,
    pub threshold_size: f64,
    pub vote_state: VoteState1_14_11,
    pub last_vote: Vote,
    pub last_timestamp: BlockTimestamp,
}

/// `SavedTower` and `SavedTower1_7_14` share this shape: a signature by the
/// node over `data`, and `data` itself (a bincode-encoded tower).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignedData {
    pub signature: Signature,
    pub data: Vec<u8>,
}

/// agave's `SavedTowerVersions`, the content of `tower-1_9-<pubkey>.bin` and
/// of the etcd tower key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SavedTowerVersions {
    /// Tag 0: data is a [`Tower1_7_14`].
    V1_17_14(SignedData),
    /// Tag 1: data is a [`Tower1_14_11`]. The only one we write.
    Current(SignedData),
}
