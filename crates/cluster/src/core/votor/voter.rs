//! A synthetic Votor voter: the paper's per-node state (Algorithm 2) and
//! the votes it casts on each event.
//!
//! - a block in slot `s` whose parent is valid (the window's first slot: a
//!   ready parent; later slots: the block this voter notarized in `s - 1`)
//!   and no vote yet in `s` → notarize (TryNotar);
//! - the slot's timeout without a vote → skip;
//! - a notarization certificate of the block it notarized, in a slot where
//!   it cast no fallback or skip → finalize (TryFinal);
//! - SafeToNotar for a block it did not notarize, after voting in the slot
//!   → notarize-fallback; SafeToSkip after a notarize → skip-fallback.
//!
//! Nothing is cast in a slot it finalized (`its_over`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use towerlock_wire::votor::VotorVote;

/// One synthetic voter's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticVoter {
    pub identity: Pubkey,
    /// Slots with a notarize or skip vote.
    voted: BTreeSet<u64>,
    /// The block notarized in each slot.
    voted_notar: BTreeMap<u64, Hash>,
    /// Slots with a skip, skip-fallback or notarize-fallback vote: no
    /// finalize there.
    bad_window: BTreeSet<u64>,
    /// Slots with a finalize vote: no further vote there.
    its_over: BTreeSet<u64>,
    notarize_fallback: BTreeMap<u64, BTreeSet<Hash>>,
    skip_fallback: BTreeSet<u64>,
}

impl SyntheticVoter {
    pub fn new(identity: Pubkey) -> Self {
        Self {
            identity,
            voted: BTreeSet::new(),
            voted_notar: BTreeMap::new(),
            bad_window: BTreeSet::new(),
            its_over: BTreeSet::new(),
            notarize_fallback: BTreeMap::new(),
            skip_fallback: BTreeSet::new(),
        }
    }

    pub fn has_voted(&self, slot: u64) -> bool {
        self.voted.contains(&slot)
    }

    /// The block this voter notarized in `slot`.
    pub fn notarized(&self, slot: u64) -> Option<Hash> {
        self.voted_notar.get(&slot).copied()
    }

    /// TryNotar: `parent_valid` says whether the block's parent is one this
    /// voter may build on (decided by the caller, who knows the certificates).
    pub fn try_notarize(
        &mut self,
        slot: u64,
        block_id: Hash,
        parent_valid: bool,
    ) -> Option<VotorVote> {
        if self.voted.contains(&slot) || !parent_valid {
            return None;
        }
        self.voted.insert(slot);
        self.voted_notar.insert(slot, block_id);
        Some(VotorVote::Notarize { slot, block_id })
    }

    /// The slot timed out: skip it unless this voter voted there already.
    pub fn timeout(&mut self, slot: u64) -> Option<VotorVote> {
        if !self.voted.insert(slot) {
            return None;
        }
        self.bad_window.insert(slot);
        Some(VotorVote::Skip { slot })
    }

    /// TryFinal on a notarization certificate of `block_id` in `slot`.
    pub fn try_finalize(&mut self, slot: u64, block_id: Hash) -> Option<VotorVote> {
        let eligible = self.voted_notar.get(&slot) == Some(&block_id)
            && !self.bad_window.contains(&slot)
            && !self.its_over.contains(&slot);
        if !eligible {
            return None;
        }
        self.its_over.insert(slot);
        Some(VotorVote::Finalize { slot })
    }

    /// SafeToNotar(`slot`, `block_id`): a fallback for a block this voter
    /// did not notarize, once it has voted in the slot.
    pub fn safe_to_notar(&mut self, slot: u64, block_id: Hash) -> Option<VotorVote> {
        let eligible = self.voted.contains(&slot)
            && !self.its_over.contains(&slot)
            && self.voted_notar.get(&slot) != Some(&block_id);
        if !eligible
            || !self
                .notarize_fallback
                .entry(slot)
                .or_default()
                .insert(block_id)
        {
            return None;
        }
        self.bad_window.insert(slot);
        Some(VotorVote::NotarizeFallback { slot, block_id })
    }

    /// SafeToSkip(`slot`): a skip-fallback after a notarize.
    pub fn safe_to_skip(&mut self, slot: u64) -> Option<VotorVote> {
        let eligible = self.voted_notar.contains_key(&slot) && !self.its_over.contains(&slot);
        if !eligible || !self.skip_fallback.insert(slot) {
            return None;
        }
        self.bad_window.insert(slot);
        Some(VotorVote::SkipFallback { slot })
    }

    /// Forgets every slot below `slot` (decided by finalization).
    pub fn prune_below(&mut self, slot: u64) {
        self.voted = self.voted.split_off(&slot);
        self.voted_notar = self.voted_notar.split_off(&slot);
        self.bad_window = self.bad_window.split_off(&slot);
        self.its_over = self.its_over.split_off(&slot);
        self.notarize_fallback = self.notarize_fallback.split_off(&slot);
        self.skip_fallback = self.skip_fallback.split_off(&slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u8) -> Hash {
        Hash::new_from_array([n; 32])
    }

    #[test]
    fn notarize_then_finalize_and_nothing_after() {
        let mut v = SyntheticVoter::new(Pubkey::new_unique());
        assert_eq!(v.try_notarize(4, block(1), false), None);
        assert!(v.try_notarize(4, block(1), true).is_some());
        assert_eq!(v.try_notarize(4, block(2), true), None);
        assert_eq!(v.timeout(4), None);
        assert_eq!(v.try_finalize(4, block(2)), None);
        assert_eq!(
            v.try_finalize(4, block(1)),
            Some(VotorVote::Finalize { slot: 4 })
        );
        assert_eq!(v.try_finalize(4, block(1)), None);
        assert_eq!(v.safe_to_skip(4), None);
    }

    #[test]
    fn a_skipped_slot_gets_fallbacks_but_no_finalize() {
        let mut v = SyntheticVoter::new(Pubkey::new_unique());
        assert_eq!(v.timeout(5), Some(VotorVote::Skip { slot: 5 }));
        assert_eq!(v.try_notarize(5, block(1), true), None);
        assert_eq!(
            v.safe_to_notar(5, block(1)),
            Some(VotorVote::NotarizeFallback {
                slot: 5,
                block_id: block(1)
            })
        );
        assert_eq!(v.safe_to_notar(5, block(1)), None);
        assert_eq!(v.safe_to_skip(5), None, "a skip needs no skip-fallback");
        assert_eq!(v.try_finalize(5, block(1)), None);
    }

    #[test]
    fn a_notarized_slot_may_fall_back_to_skip_then_not_finalize() {
        let mut v = SyntheticVoter::new(Pubkey::new_unique());
        v.try_notarize(6, block(1), true);
        assert_eq!(v.safe_to_skip(6), Some(VotorVote::SkipFallback { slot: 6 }));
        assert_eq!(v.try_finalize(6, block(1)), None);
    }
}
