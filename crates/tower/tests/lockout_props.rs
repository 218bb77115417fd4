//! Property tests of the lockout rules over random fork trees.

use std::collections::HashSet;

use proptest::prelude::*;
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use towerlock_tower::{Recorded, Slot, Tower, MAX_LOCKOUT_HISTORY};

/// A fork tree: `parents[s]` is the parent of slot `s` (slot 0 is genesis).
fn ancestors(parents: &[Slot], mut slot: Slot) -> HashSet<Slot> {
    let mut set = HashSet::new();
    while slot != 0 {
        slot = parents[slot as usize];
        set.insert(slot);
    }
    set
}

fn fork_tree() -> impl Strategy<Value = Vec<Slot>> {
    // Each slot's parent is one of the few slots before it: forks are common.
    prop::collection::vec(1u64..4, 1..400).prop_map(|back| {
        let mut parents = vec![0];
        for (i, b) in back.into_iter().enumerate() {
            let slot = i as u64 + 1;
            parents.push(slot.saturating_sub(b));
        }
        parents
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_careful_voter_never_violates_a_lockout(
        parents in fork_tree(),
        picks in prop::collection::vec(1u64..6, 1..300),
    ) {
        let mut tower = Tower::new(Pubkey::new_unique());
        // Every (slot, confirmation) the tower ever held, with the slot it was
        // recorded before; an independent record of what was promised.
        let mut history: Vec<Vec<(Slot, u32)>> = Vec::new();
        let mut last_root = None;
        let mut candidate = 0;
        for step in picks {
            candidate += step;
            if candidate as usize >= parents.len() {
                break;
            }
            let fork = ancestors(&parents, candidate);
            if tower.is_locked_out(candidate, |s| fork.contains(&s)) {
                continue;
            }
            // Safety, checked against everything promised before.
            for stack in &history {
                for &(slot, conf) in stack {
                    let locked_through = slot + (1u64 << conf);
                    prop_assert!(
                        locked_through < candidate || fork.contains(&slot) || slot == candidate,
                        "vote {candidate} breaks lockout ({slot},{conf})"
                    );
                }
            }
            let outcome = tower.record_vote(candidate, Hash::new_from_array([candidate as u8; 32]), Hash::default(), 0);
            prop_assert!(matches!(outcome, Recorded::Vote(_)));

            let stack: Vec<(Slot, u32)> = tower
                .lockouts()
                .iter()
                .map(|l| (l.slot(), l.confirmation_count()))
                .collect();
            prop_assert!(stack.len() <= MAX_LOCKOUT_HISTORY);
            for pair in stack.windows(2) {
                prop_assert!(pair[0].0 < pair[1].0, "slots not increasing: {stack:?}");
                prop_assert!(pair[0].1 > pair[1].1, "confirmations not decreasing: {stack:?}");
            }
            // Every lockout is on the fork just voted for.
            for &(slot, _) in &stack {
                prop_assert!(slot == candidate || fork.contains(&slot));
            }
            // The root only grows, and is on this fork.
            if let Some(prev) = last_root {
                let root = tower.root();
                prop_assert!(root.is_some_and(|r| r >= prev), "root went from {prev} to {root:?}");
            }
            if let Some(root) = tower.root() {
                prop_assert!(fork.contains(&root));
            }
            last_root = tower.root();
            history.push(stack);
        }
    }

    #[test]
    fn consecutive_votes_root_after_thirty_one(n in 32u64..200) {
        let mut tower = Tower::new(Pubkey::new_unique());
        for slot in 1..=n {
            let _ = tower.record_vote(slot, Hash::default(), Hash::default(), 0);
        }
        prop_assert_eq!(tower.lockouts().len(), MAX_LOCKOUT_HISTORY);
        prop_assert_eq!(tower.root(), Some(n - MAX_LOCKOUT_HISTORY as u64));
    }
}
