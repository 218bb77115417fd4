//! Votor's decisions (the paper's Algorithms 1 and 2, agave's
//! `event_handler` and `voting_utils`), read from and written to the vote
//! history only:
//!
//! | history | the paper's state | set by |
//! |---|---|---|
//! | `voted` | `Voted` | notarize, skip |
//! | `voted_notar` | `VotedNotar(hash)` | notarize |
//! | `skipped` | `BadWindow` | skip, skip-fallback, notarize-fallback |
//! | `its_over` | `ItsOver` | finalize |
//!
//! Each rule checks the history before it votes, so the same block or
//! certificate arriving again — or after a reload of a history an earlier
//! holder wrote — never yields a contradicting vote.

use towerlock_tower::{
    vote_history::{Block, VotePayload},
    Slot,
};

use super::{
    window::{is_first_in_window, window_slots},
    SlotTally, StakeBps, VotorMachine,
};

/// SafeToNotar: notarize stake alone that may still certify the block.
const NOTAR_ALONE: StakeBps = 4_000;
/// SafeToNotar: skip and notarize stake together, with at least
/// [`NOTAR_WITH_SKIP`] of notarize stake.
const SKIP_AND_NOTAR: StakeBps = 6_000;
const NOTAR_WITH_SKIP: StakeBps = 2_000;
/// SafeToSkip: stake that did not notarize the leading block.
const NOT_THE_LEADING_BLOCK: StakeBps = 4_000;

/// The shred version recorded in the history (agave records 0 and signs
/// with the cluster's when the vote leaves).
const RECORDED_SHRED_VERSION: u16 = 0;

impl VotorMachine {
    /// Records `vote` in the history, then queues it for the next store.
    fn cast(&mut self, vote: VotePayload) {
        let history = &mut self.history;
        let slot = vote.slot();
        match vote {
            VotePayload::Notar { block, .. } => {
                history.voted.insert(slot);
                history.voted_notar.insert(slot, block.block_id);
            }
            VotePayload::Skip { .. } => {
                history.voted.insert(slot);
                history.skipped.insert(slot);
            }
            VotePayload::Finalize { .. } => {
                history.its_over.insert(slot);
            }
            VotePayload::NotarFallback { block, .. } => {
                history
                    .voted_notar_fallback
                    .entry(slot)
                    .or_default()
                    .insert(block.block_id);
                history.skipped.insert(slot);
            }
            VotePayload::SkipFallback { .. } => {
                history.voted_skip_fallback.insert(slot);
                history.skipped.insert(slot);
            }
            VotePayload::Genesis { .. } => {}
        }
        history.votes_cast.entry(slot).or_default().push(vote);
        tracing::debug!(slot, kind = vote.kind(), "vote recorded");
        self.queued.push(vote);
    }

    /// Whether the first-round vote of `slot` (notarize or skip) is still
    /// open: above the root, and no vote there that rules it out.
    fn first_round_open(&self, slot: Slot) -> bool {
        let h = &self.history;
        slot > self.root
            && !h.voted.contains(&slot)
            && !h.voted_notar.contains_key(&slot)
            && !h.skipped.contains(&slot)
            && !h.its_over.contains(&slot)
    }

    /// tryNotar, for every block seen whose slot has no vote yet, oldest
    /// first: notarizing one slot may let the next be notarized.
    pub(super) fn notarize_pending(&mut self) {
        let candidates: Vec<_> = self
            .blocks
            .range(self.root + 1..)
            .map(|(_, seen)| *seen)
            .collect();
        for seen in candidates {
            self.try_notarize(seen.block, seen.parent);
        }
    }

    /// tryNotar: the first block of a window (or the chain's first block)
    /// needs a ready parent; a later one must build on the block this node
    /// notarized in the slot before.
    fn try_notarize(&mut self, block: Block, parent: Block) {
        let slot = block.slot;
        if !self.first_round_open(slot) {
            return;
        }
        let needs_ready_parent = is_first_in_window(slot) || self.certificates.is_genesis(&parent);
        let parent_ok = if needs_ready_parent {
            self.certificates.is_parent_ready(slot, &parent)
        } else {
            parent.slot + 1 == slot
                && self.history.voted_notar.get(&parent.slot) == Some(&parent.block_id)
        };
        if !parent_ok {
            return;
        }
        if needs_ready_parent {
            self.history
                .parent_ready_slots
                .entry(slot)
                .or_default()
                .insert(parent);
        }
        self.cast(VotePayload::Notar {
            block,
            shred_version: RECORDED_SHRED_VERSION,
        });
        self.try_finalize(block);
    }

    /// tryFinal: the block is notarized, this node notarized it, and it did
    /// not give up on the slot (no skip or fallback vote there).
    pub(super) fn try_finalize(&mut self, block: Block) {
        let slot = block.slot;
        let h = &self.history;
        if slot <= self.root
            || h.voted_notar.get(&slot) != Some(&block.block_id)
            || h.skipped.contains(&slot)
            || h.its_over.contains(&slot)
            || !self.certificates.is_notarized(&block)
        {
            return;
        }
        self.cast(VotePayload::Finalize {
            slot,
            shred_version: RECORDED_SHRED_VERSION,
        });
    }

    /// trySkipWindow: a skip vote for every slot of `slot`'s window that has
    /// none yet.
    fn skip_window(&mut self, slot: Slot) {
        for slot in window_slots(slot) {
            if self.first_round_open(slot) {
                self.cast(VotePayload::Skip {
                    slot,
                    shred_version: RECORDED_SHRED_VERSION,
                });
            }
        }
    }

    /// The timeouts that passed: a slot without a vote skips its window.
    /// A window whose slots all have a vote needs its clock no more.
    pub(super) fn on_timeouts(&mut self, now_ms: u64) {
        for slot in self.windows.expired(&self.timing, now_ms) {
            if self.first_round_open(slot) {
                tracing::debug!(slot, "timeout: skipping the window");
                self.skip_window(slot);
            }
        }
        let (history, root) = (&self.history, self.root);
        self.windows.retain(|start| {
            window_slots(start).any(|slot| slot > root && !history.voted.contains(&slot))
        });
    }

    /// SafeToNotar and SafeToSkip, once this node voted in the slot.
    pub(super) fn on_tally(&mut self, tally: &SlotTally) {
        let slot = tally.slot;
        if !matches!(self.phase, super::VotorPhase::Voting)
            || slot <= self.root
            || !self.history.voted.contains(&slot)
        {
            return;
        }
        for &(block_id, notar) in &tally.notarize {
            let block = Block { slot, block_id };
            let h = &self.history;
            let already = h.voted_notar.get(&slot) == Some(&block_id)
                || h.voted_notar_fallback
                    .get(&slot)
                    .is_some_and(|ids| ids.contains(&block_id));
            let safe = notar >= NOTAR_ALONE
                || (tally.skip.saturating_add(notar) >= SKIP_AND_NOTAR && notar >= NOTAR_WITH_SKIP);
            if already || !safe {
                continue;
            }
            self.skip_window(slot);
            if !self.history.its_over.contains(&slot) {
                self.cast(VotePayload::NotarFallback {
                    block,
                    shred_version: RECORDED_SHRED_VERSION,
                });
            }
        }
        // SafeToSkip: only after a notarize vote (a skip vote needs no
        // fallback), once per slot.
        let h = &self.history;
        if !h.voted_notar.contains_key(&slot)
            || h.voted_skip_fallback.contains(&slot)
            || h.its_over.contains(&slot)
        {
            return;
        }
        let notar: Vec<StakeBps> = tally.notarize.iter().map(|&(_, stake)| stake).collect();
        let total = notar.iter().fold(0u32, |sum, &s| sum.saturating_add(s));
        let leading = notar.iter().copied().max().unwrap_or(0);
        if tally.skip.saturating_add(total.saturating_sub(leading)) >= NOT_THE_LEADING_BLOCK {
            self.skip_window(slot);
            self.cast(VotePayload::SkipFallback {
                slot,
                shred_version: RECORDED_SHRED_VERSION,
            });
        }
    }
}
