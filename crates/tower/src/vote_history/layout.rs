//! The bytes of a `VoteHistory`: wincode's derive over agave's struct, field
//! after field (see `codec.rs` for the primitives).
//!
//! | field | encoding |
//! |---|---|
//! | `node_pubkey` | 32 bytes |
//! | `voted`, `voted_skip_fallback`, `skipped`, `its_over` | `u64` count, then each slot as `u64` |
//! | `voted_notar` | `u64` count, then (slot `u64`, block id 32 bytes) |
//! | `voted_notar_fallback` | `u64` count, then (slot `u64`, `u64` count, block ids) |
//! | `votes_cast` | `u64` count, then (slot `u64`, `u64` count, votes) |
//! | vote (`VotePayloadToSign`) | `u8` tag 1–6, then the block (slot `u64`, id 32 bytes) or the slot, then `shred_version` `u16` |
//! | `notarized_blocks` | `u64` count, then blocks |
//! | `parent_ready_slots` | `u64` count, then (slot `u64`, `u64` count, blocks) |
//! | `root` | `u64` |
//!
//! A set or map member that appears twice is refused: agave's `HashSet` and
//! `HashMap` never write one, and a decoder that kept the last would accept
//! two different encodings of one history.

use std::collections::{BTreeMap, BTreeSet};

use solana_hash::Hash;
use solana_pubkey::Pubkey;

use super::{
    codec::{Reader, Writer},
    Block, VoteHistory, VoteHistoryError, VotePayload,
};
use crate::Slot;

const SLOT: usize = 8;
const HASH: usize = 32;
const BLOCK: usize = SLOT + HASH;
const LEN: usize = 8;
/// The shortest vote: tag, slot, shred version.
const MIN_VOTE: usize = 1 + SLOT + 2;

impl VoteHistory {
    /// The wincode encoding agave signs (`SavedVoteHistory::data`).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(self.node_pubkey.as_ref());
        write_slots(&mut w, &self.voted);
        w.len(self.voted_notar.len());
        for (slot, id) in &self.voted_notar {
            w.u64(*slot);
            w.raw(id.as_ref());
        }
        w.len(self.voted_notar_fallback.len());
        for (slot, ids) in &self.voted_notar_fallback {
            w.u64(*slot);
            w.len(ids.len());
            ids.iter().for_each(|id| w.raw(id.as_ref()));
        }
        write_slots(&mut w, &self.voted_skip_fallback);
        write_slots(&mut w, &self.skipped);
        write_slots(&mut w, &self.its_over);
        w.len(self.votes_cast.len());
        for (slot, votes) in &self.votes_cast {
            w.u64(*slot);
            w.len(votes.len());
            votes.iter().for_each(|vote| write_vote(&mut w, vote));
        }
        write_blocks(&mut w, &self.notarized_blocks);
        w.len(self.parent_ready_slots.len());
        for (slot, parents) in &self.parent_ready_slots {
            w.u64(*slot);
            write_blocks(&mut w, parents);
        }
        w.u64(self.root);
        w.bytes
    }

    /// Decodes [`VoteHistory::encode`]'s bytes (in any member order), with no
    /// bytes after them.
    pub fn decode(bytes: &[u8]) -> Result<Self, VoteHistoryError> {
        let mut r = Reader::new(bytes);
        let node_pubkey = Pubkey::new_from_array(r.array("node_pubkey")?);
        let voted = read_slots(&mut r, "voted")?;
        let voted_notar = read_map(&mut r, SLOT + HASH, "voted_notar", |r| {
            Ok(Hash::new_from_array(r.array("voted_notar block id")?))
        })?;
        let voted_notar_fallback = read_map(&mut r, SLOT + LEN, "voted_notar_fallback", |r| {
            read_set(r, HASH, "voted_notar_fallback block ids", |r| {
                Ok(Hash::new_from_array(r.array("block id")?))
            })
        })?;
        let voted_skip_fallback = read_slots(&mut r, "voted_skip_fallback")?;
        let skipped = read_slots(&mut r, "skipped")?;
        let its_over = read_slots(&mut r, "its_over")?;
        let votes_cast = read_map(&mut r, SLOT + LEN, "votes_cast", |r| {
            let len = r.len(MIN_VOTE, "votes_cast votes")?;
            (0..len).map(|_| read_vote(r)).collect()
        })?;
        let notarized_blocks = read_blocks(&mut r, "notarized_blocks")?;
        let parent_ready_slots = read_map(&mut r, SLOT + LEN, "parent_ready_slots", |r| {
            read_blocks(r, "parent_ready_slots parents")
        })?;
        let root = r.u64("root")?;
        r.finish("vote history")?;
        Ok(Self {
            node_pubkey,
            voted,
            voted_notar,
            voted_notar_fallback,
            voted_skip_fallback,
            skipped,
            its_over,
            votes_cast,
            notarized_blocks,
            parent_ready_slots,
            root,
        })
    }
}

fn write_slots(w: &mut Writer, slots: &BTreeSet<Slot>) {
    w.len(slots.len());
    slots.iter().for_each(|slot| w.u64(*slot));
}

fn write_block(w: &mut Writer, block: &Block) {
    w.u64(block.slot);
    w.raw(block.block_id.as_ref());
}

fn write_blocks(w: &mut Writer, blocks: &BTreeSet<Block>) {
    w.len(blocks.len());
    blocks.iter().for_each(|block| write_block(w, block));
}

fn write_vote(w: &mut Writer, vote: &VotePayload) {
    w.u8(vote.tag());
    match vote {
        VotePayload::Notar { block, .. }
        | VotePayload::NotarFallback { block, .. }
        | VotePayload::Genesis { block, .. } => write_block(w, block),
        VotePayload::Finalize { slot, .. }
        | VotePayload::Skip { slot, .. }
        | VotePayload::SkipFallback { slot, .. } => w.u64(*slot),
    }
    w.u16(vote.shred_version());
}

fn read_set<T: Ord + std::fmt::Debug>(
    r: &mut Reader,
    min_element: usize,
    what: &str,
    mut read: impl FnMut(&mut Reader) -> Result<T, VoteHistoryError>,
) -> Result<BTreeSet<T>, VoteHistoryError> {
    let len = r.len(min_element, what)?;
    let mut set = BTreeSet::new();
    for _ in 0..len {
        let member = read(r)?;
        if let Some(member) = set.replace(member) {
            return Err(VoteHistoryError::corrupt(format!(
                "{what}: {member:?} appears twice"
            )));
        }
    }
    Ok(set)
}

fn read_map<V>(
    r: &mut Reader,
    min_entry: usize,
    what: &str,
    mut read_value: impl FnMut(&mut Reader) -> Result<V, VoteHistoryError>,
) -> Result<BTreeMap<Slot, V>, VoteHistoryError> {
    let len = r.len(min_entry, what)?;
    let mut map = BTreeMap::new();
    for _ in 0..len {
        let slot = r.u64(what)?;
        let value = read_value(r)?;
        if map.insert(slot, value).is_some() {
            return Err(VoteHistoryError::corrupt(format!(
                "{what}: slot {slot} appears twice"
            )));
        }
    }
    Ok(map)
}

fn read_slots(r: &mut Reader, what: &str) -> Result<BTreeSet<Slot>, VoteHistoryError> {
    read_set(r, SLOT, what, |r| r.u64(what))
}

fn read_block(r: &mut Reader, what: &str) -> Result<Block, VoteHistoryError> {
    Ok(Block {
        slot: r.u64(what)?,
        block_id: Hash::new_from_array(r.array(what)?),
    })
}

fn read_blocks(r: &mut Reader, what: &str) -> Result<BTreeSet<Block>, VoteHistoryError> {
    read_set(r, BLOCK, what, |r| read_block(r, what))
}

fn read_vote(r: &mut Reader) -> Result<VotePayload, VoteHistoryError> {
    const WHAT: &str = "votes_cast vote";
    let tag = r.u8(WHAT)?;
    let vote = match tag {
        1 | 4 | 6 => {
            let block = read_block(r, WHAT)?;
            let shred_version = r.u16(WHAT)?;
            match tag {
                1 => VotePayload::Notar {
                    block,
                    shred_version,
                },
                4 => VotePayload::NotarFallback {
                    block,
                    shred_version,
                },
                _ => VotePayload::Genesis {
                    block,
                    shred_version,
                },
            }
        }
        2 | 3 | 5 => {
            let slot = r.u64(WHAT)?;
            let shred_version = r.u16(WHAT)?;
            match tag {
                2 => VotePayload::Finalize {
                    slot,
                    shred_version,
                },
                3 => VotePayload::Skip {
                    slot,
                    shred_version,
                },
                _ => VotePayload::SkipFallback {
                    slot,
                    shred_version,
                },
            }
        }
        other => {
            return Err(VoteHistoryError::corrupt(format!(
                "unknown vote tag {other} (agave knows 1 to 6)"
            )))
        }
    };
    Ok(vote)
}
