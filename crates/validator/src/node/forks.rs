//! The banks the node has replayed, as a fork tree.

use std::collections::{BTreeMap, BTreeSet};

use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_slot_history::{Check, SlotHistory};
use towerlock_tower::Slot;
use towerlock_wire::api::{BankNotification, VoteAccountState};

/// A frozen bank.
#[derive(Debug, Clone, PartialEq)]
pub struct Bank {
    pub slot: Slot,
    pub parent: Slot,
    pub hash: Hash,
    pub block_id: Hash,
    pub blockhash: Hash,
    pub leader: Pubkey,
    pub vote_accounts: Vec<VoteAccountState>,
}

impl Bank {
    pub fn from_notification(n: &BankNotification) -> Self {
        Self {
            slot: n.slot,
            parent: n.parent,
            hash: n.hash,
            block_id: n.block_id,
            blockhash: n.blockhash,
            leader: n.leader,
            vote_accounts: n.vote_accounts.clone(),
        }
    }

    pub fn vote_account(&self, vote_pubkey: &Pubkey) -> Option<&VoteAccountState> {
        self.vote_accounts
            .iter()
            .find(|a| a.vote_pubkey == *vote_pubkey)
    }
}

/// Keep this many slots of banks below the cluster's root; older ones only
/// as slot numbers on the rooted chain.
const RETAINED_BELOW_ROOT: Slot = 1024;

/// The replayed banks and the cluster's view of them (root, confirmed, tip).
#[derive(Debug, Default)]
pub struct ForkView {
    banks: BTreeMap<Slot, Bank>,
    /// Slots of pruned banks that are ancestors of the root.
    rooted: BTreeSet<Slot>,
    pub root: Slot,
    pub confirmed: Slot,
    pub tip: Slot,
    /// The highest slot replayed.
    pub newest: Slot,
    /// The cluster's SlotHistory as of a root, once fetched: which slots
    /// below the replayed banks are on the rooted chain.
    slot_history: Option<SlotHistory>,
}

impl ForkView {
    /// Adds a frozen bank and the cluster view it came with.
    pub fn insert(&mut self, n: &BankNotification) {
        let bank = Bank::from_notification(n);
        self.newest = self.newest.max(bank.slot);
        self.root = self.root.max(n.root);
        self.confirmed = n.confirmed;
        self.tip = n.tip;
        self.banks.insert(bank.slot, bank);
        self.prune();
    }

    pub fn get(&self, slot: Slot) -> Option<&Bank> {
        self.banks.get(&slot)
    }

    /// Keeps the cluster's SlotHistory (the newest one fetched).
    pub fn set_slot_history(&mut self, history: SlotHistory) {
        if self
            .slot_history
            .as_ref()
            .is_none_or(|held| held.newest() <= history.newest())
        {
            self.slot_history = Some(history);
        }
    }

    /// What the SlotHistory says of `slot`: on the rooted chain or not;
    /// `None` when there is none or it does not cover `slot`.
    pub fn rooted_in_history(&self, slot: Slot) -> Option<bool> {
        match self.slot_history.as_ref()?.check(slot) {
            Check::Found => Some(true),
            Check::NotFound => Some(false),
            Check::Future | Check::TooOld => None,
        }
    }

    /// The newest bank, if any.
    pub fn newest_bank(&self) -> Option<&Bank> {
        self.banks.get(&self.newest)
    }

    /// Whether `ancestor` is a strict ancestor of `slot`.
    pub fn is_ancestor(&self, ancestor: Slot, slot: Slot) -> bool {
        if ancestor >= slot {
            return false;
        }
        let mut current = slot;
        while let Some(bank) = self.banks.get(&current) {
            if bank.parent == ancestor {
                return true;
            }
            if bank.parent >= current || bank.parent < ancestor {
                return false;
            }
            current = bank.parent;
        }
        // Walked off the retained banks: below them lies the rooted chain.
        current <= self.oldest_retained() && self.rooted.contains(&ancestor)
    }

    /// Whether `slot` is `of` or one of its ancestors.
    pub fn is_ancestor_or_self(&self, slot: Slot, of: Slot) -> bool {
        slot == of || self.is_ancestor(slot, of)
    }

    /// The newest bank that descends from (or is) `slot`.
    pub fn newest_descendant(&self, slot: Slot) -> Option<Slot> {
        self.banks
            .keys()
            .rev()
            .copied()
            .find(|candidate| self.is_ancestor_or_self(slot, *candidate))
    }

    /// The oldest bank still held: a walk down from a bank ends here.
    pub fn oldest_retained(&self) -> Slot {
        self.banks.keys().next().copied().unwrap_or(0)
    }

    fn prune(&mut self) {
        let horizon = self.root.saturating_sub(RETAINED_BELOW_ROOT);
        while let Some((&slot, _)) = self.banks.first_key_value() {
            if slot >= horizon {
                break;
            }
            if self.is_ancestor_or_self(slot, self.root) {
                self.rooted.insert(slot);
            }
            self.banks.remove(&slot);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn notification(slot: Slot, parent: Slot) -> BankNotification {
        let hash = Hash::new_from_array([slot as u8; 32]);
        BankNotification {
            slot,
            parent,
            hash,
            block_id: hash,
            blockhash: hash,
            leader: Pubkey::new_from_array([1; 32]),
            block_height: slot,
            root: 0,
            confirmed: 0,
            tip: slot,
            vote_accounts: vec![],
        }
    }

    #[test]
    fn ancestry_follows_parents_across_forks() {
        let mut view = ForkView::default();
        // 0 - 1 - 2 - 3
        //       \ 4 - 5
        for (slot, parent) in [(0, 0), (1, 0), (2, 1), (3, 2), (4, 1), (5, 4)] {
            view.insert(&notification(slot, parent));
        }
        assert!(view.is_ancestor(1, 5));
        assert!(view.is_ancestor(0, 5));
        assert!(!view.is_ancestor(2, 5));
        assert!(!view.is_ancestor(3, 5));
        assert!(view.is_ancestor(2, 3));
        assert!(!view.is_ancestor(5, 5));
        assert!(view.is_ancestor_or_self(5, 5));
        assert_eq!(view.newest_descendant(2), Some(3));
        assert_eq!(view.newest_descendant(4), Some(5));
        assert_eq!(view.newest_descendant(1), Some(5));
    }

    #[test]
    fn pruned_rooted_slots_stay_ancestors() {
        let mut view = ForkView::default();
        view.insert(&notification(0, 0));
        for slot in 1..3000 {
            let mut n = notification(slot, slot - 1);
            n.root = slot.saturating_sub(32);
            view.insert(&n);
        }
        assert!(view.get(10).is_none(), "old banks are pruned");
        assert!(view.is_ancestor(10, 2999));
        assert!(view.is_ancestor(1500, 2999));
    }
}
