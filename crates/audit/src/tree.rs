//! The fork tree, rebuilt from `bank` lines: each slot points at its parent.

use std::collections::{HashMap, HashSet};

/// Every bank the trail lists, by slot.
///
/// A slot is *known* when a bank line names it, or when it is the parent of one
/// (the genesis bank has no line of its own). Ancestry walks parent links and
/// stops at a slot without a bank line, so nothing is ever guessed.
#[derive(Debug, Default, Clone)]
pub struct ForkTree {
    parents: HashMap<u64, u64>,
    parent_only: HashSet<u64>,
}

impl ForkTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `slot` with `parent`. The first line for a slot wins; a later
    /// line with another parent is a duplicate block, reported elsewhere.
    pub fn insert(&mut self, slot: u64, parent: u64) {
        if self.parents.contains_key(&slot) {
            return;
        }
        self.parents.insert(slot, parent);
        self.parent_only.remove(&slot);
        if !self.parents.contains_key(&parent) {
            self.parent_only.insert(parent);
        }
    }

    /// The parent of `slot`, when a bank line names it.
    pub fn parent(&self, slot: u64) -> Option<u64> {
        self.parents.get(&slot).copied()
    }

    /// Whether the trail knows `slot` (a bank line, or the parent of one).
    pub fn contains(&self, slot: u64) -> bool {
        self.parents.contains_key(&slot) || self.parent_only.contains(&slot)
    }

    /// Number of slots with a bank line.
    pub fn len(&self) -> usize {
        self.parents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parents.is_empty()
    }

    /// Whether `ancestor` is `slot` itself or lies on the path from `slot` to
    /// the oldest known bank.
    pub fn is_ancestor_or_self(&self, ancestor: u64, slot: u64) -> bool {
        let mut current = slot;
        loop {
            if current == ancestor {
                return true;
            }
            if current < ancestor {
                return false;
            }
            match self.parent(current) {
                // A parent is always an older slot; anything else ends the walk
                // (a genesis bank that names itself, or a corrupt line).
                Some(parent) if parent < current => current = parent,
                _ => return false,
            }
        }
    }

    /// Whether `a` and `b` lie on one fork (one is an ancestor of the other).
    pub fn on_one_fork(&self, a: u64, b: u64) -> bool {
        if a <= b {
            self.is_ancestor_or_self(a, b)
        } else {
            self.is_ancestor_or_self(b, a)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> ForkTree {
        // 0 ─ 1 ─ 2 ─ 4
        //      └─ 3 ─ 5
        let mut tree = ForkTree::new();
        for (slot, parent) in [(1, 0), (2, 1), (3, 1), (4, 2), (5, 3)] {
            tree.insert(slot, parent);
        }
        tree
    }

    #[test]
    fn ancestry_follows_parents() {
        let tree = tree();
        assert!(tree.is_ancestor_or_self(1, 4));
        assert!(tree.is_ancestor_or_self(0, 5));
        assert!(tree.is_ancestor_or_self(4, 4));
        assert!(!tree.is_ancestor_or_self(2, 5));
        assert!(!tree.is_ancestor_or_self(5, 1));
        assert!(tree.on_one_fork(4, 1));
        assert!(!tree.on_one_fork(4, 3));
    }

    #[test]
    fn parents_are_known_and_unknown_slots_end_walks() {
        let tree = tree();
        assert!(tree.contains(0));
        assert!(!tree.contains(6));
        assert!(!tree.is_ancestor_or_self(0, 6));
        assert_eq!(tree.len(), 5);
    }

    #[test]
    fn self_parent_does_not_loop() {
        let mut tree = ForkTree::new();
        tree.insert(0, 0);
        tree.insert(1, 0);
        assert!(tree.is_ancestor_or_self(0, 1));
        assert!(!tree.is_ancestor_or_self(7, 0));
    }
}
