//! agave's `VoteHistory` and the types it holds, field for field.
//!
//! agave keeps the sets and maps in `HashSet`/`HashMap`, which it writes in
//! whatever order the hasher gives; here they are ordered (`BTreeSet`,
//! `BTreeMap`), so that what we write is deterministic. Both orders decode to
//! the same history.

use std::collections::{BTreeMap, BTreeSet};

use solana_hash::Hash;
use solana_pubkey::Pubkey;

use crate::Slot;

/// A block of the Alpenglow chain: its slot and its block id (the Merkle root
/// of its last FEC set; `agave_votor_messages::consensus_message::BlockId`, a
/// `Hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Block {
    pub slot: Slot,
    pub block_id: Hash,
}

/// One Alpenglow vote as agave keeps it for refreshing
/// (`agave_votor_messages::wire::VotePayloadToSign`). Variant order is the
/// wire tag minus one: tags are a `u8`, `Notar` = 1 … `Genesis` = 6.
/// agave stores `shred_version` 0 in the history and re-signs with the
/// cluster's shred version when it refreshes a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VotePayload {
    Notar { block: Block, shred_version: u16 },
    Finalize { slot: Slot, shred_version: u16 },
    Skip { slot: Slot, shred_version: u16 },
    NotarFallback { block: Block, shred_version: u16 },
    SkipFallback { slot: Slot, shred_version: u16 },
    Genesis { block: Block, shred_version: u16 },
}

impl VotePayload {
    /// The slot the vote is for.
    pub fn slot(&self) -> Slot {
        match self {
            VotePayload::Notar { block, .. }
            | VotePayload::NotarFallback { block, .. }
            | VotePayload::Genesis { block, .. } => block.slot,
            VotePayload::Finalize { slot, .. }
            | VotePayload::Skip { slot, .. }
            | VotePayload::SkipFallback { slot, .. } => *slot,
        }
    }

    /// agave's name of the vote kind.
    pub fn kind(&self) -> &'static str {
        match self {
            VotePayload::Notar { .. } => "notarize",
            VotePayload::Finalize { .. } => "finalize",
            VotePayload::Skip { .. } => "skip",
            VotePayload::NotarFallback { .. } => "notarize-fallback",
            VotePayload::SkipFallback { .. } => "skip-fallback",
            VotePayload::Genesis { .. } => "genesis",
        }
    }

    /// The block voted for, for the votes that name one.
    pub fn block(&self) -> Option<Block> {
        match self {
            VotePayload::Notar { block, .. }
            | VotePayload::NotarFallback { block, .. }
            | VotePayload::Genesis { block, .. } => Some(*block),
            _ => None,
        }
    }

    /// The wire tag (`#[wincode(tag = …)]` in agave).
    pub(crate) fn tag(&self) -> u8 {
        match self {
            VotePayload::Notar { .. } => 1,
            VotePayload::Finalize { .. } => 2,
            VotePayload::Skip { .. } => 3,
            VotePayload::NotarFallback { .. } => 4,
            VotePayload::SkipFallback { .. } => 5,
            VotePayload::Genesis { .. } => 6,
        }
    }

    pub(crate) fn shred_version(&self) -> u16 {
        match self {
            VotePayload::Notar { shred_version, .. }
            | VotePayload::Finalize { shred_version, .. }
            | VotePayload::Skip { shred_version, .. }
            | VotePayload::NotarFallback { shred_version, .. }
            | VotePayload::SkipFallback { shred_version, .. }
            | VotePayload::Genesis { shred_version, .. } => *shred_version,
        }
    }
}

/// agave's `VoteHistory` (agave-votor 4.x, `vote_history.rs`): what an
/// Alpenglow validator has voted, kept so that it never votes against itself
/// after a restart. Field order is the encoding order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteHistory {
    /// The validator identity that cast the votes.
    pub node_pubkey: Pubkey,
    /// Slots with a notarize or skip vote.
    pub voted: BTreeSet<Slot>,
    /// The block notarized in each slot.
    pub voted_notar: BTreeMap<Slot, Hash>,
    /// The blocks with a notarize-fallback vote, per slot.
    pub voted_notar_fallback: BTreeMap<Slot, BTreeSet<Hash>>,
    /// Slots with a skip-fallback vote.
    pub voted_skip_fallback: BTreeSet<Slot>,
    /// Slots with a skip, skip-fallback or notarize-fallback vote.
    pub skipped: BTreeSet<Slot>,
    /// Slots with a finalize vote: no further vote in them.
    pub its_over: BTreeSet<Slot>,
    /// Every vote cast per slot, in the order cast (for refreshing).
    pub votes_cast: BTreeMap<Slot, Vec<VotePayload>>,
    /// Blocks with a notarization certificate.
    pub notarized_blocks: BTreeSet<Block>,
    /// Slots whose parent is ready, with the parent blocks.
    pub parent_ready_slots: BTreeMap<Slot, BTreeSet<Block>>,
    /// The latest root; nothing above holds slots before it.
    pub root: Slot,
}

impl VoteHistory {
    /// An empty history of `node_pubkey` rooted at `root` (agave's
    /// `VoteHistory::new`).
    pub fn new(node_pubkey: Pubkey, root: Slot) -> Self {
        Self {
            node_pubkey,
            voted: BTreeSet::new(),
            voted_notar: BTreeMap::new(),
            voted_notar_fallback: BTreeMap::new(),
            voted_skip_fallback: BTreeSet::new(),
            skipped: BTreeSet::new(),
            its_over: BTreeSet::new(),
            votes_cast: BTreeMap::new(),
            notarized_blocks: BTreeSet::new(),
            parent_ready_slots: BTreeMap::new(),
            root,
        }
    }

    /// The newest slot this node cast any vote in.
    pub fn last_voted_slot(&self) -> Option<Slot> {
        let cast = self.votes_cast.keys().next_back().copied();
        [self.voted.last(), self.its_over.last(), self.skipped.last()]
            .into_iter()
            .flatten()
            .copied()
            .chain(cast)
            .max()
    }

    /// Every vote cast, oldest slot first.
    pub fn votes(&self) -> impl Iterator<Item = &VotePayload> {
        self.votes_cast.values().flatten()
    }
}
