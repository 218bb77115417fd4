//! Trails built in code: a builder for trail lines, a reference TowerBFT tower,
//! and a generator of long well-behaved runs.
//!
//! The tower here is deliberately the simplest reading of docs/architecture.md §7, kept
//! apart from the validator's tower so that the checker's tests do not inherit
//! that code's mistakes.

use std::collections::HashMap;

use crate::check::locked_out_through;
use crate::event::{BankEvent, BlockEvent, Event, VoteEvent, VoteResult};
use crate::tree::ForkTree;

/// Votes kept in a tower before the oldest becomes the root.
pub const MAX_LOCKOUT_HISTORY: usize = 31;

/// A TowerBFT tower: lockouts from oldest to newest, and the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimTower {
    pub lockouts: Vec<(u64, u32)>,
    pub root: Option<u64>,
}

impl SimTower {
    pub fn new() -> Self {
        Self::default()
    }

    /// The newest voted slot.
    pub fn last_slot(&self) -> Option<u64> {
        self.lockouts.last().map(|&(slot, _)| slot)
    }

    /// How many lockouts stay when voting for `slot`: expired ones are popped
    /// from the top only.
    fn kept_at(&self, slot: u64) -> usize {
        let mut kept = self.lockouts.len();
        while kept > 0 {
            let (top, confirmation_count) = self.lockouts[kept - 1];
            if locked_out_through(top, confirmation_count) >= slot {
                break;
            }
            kept -= 1;
        }
        kept
    }

    /// Whether a correct voter may vote for `slot`: it is newer than the last
    /// vote, known to `tree`, and every lockout kept at it and the root are
    /// its ancestors.
    pub fn can_vote(&self, tree: &ForkTree, slot: u64) -> bool {
        if self.last_slot().is_some_and(|last| slot <= last) || !tree.contains(slot) {
            return false;
        }
        let kept = &self.lockouts[..self.kept_at(slot)];
        kept.iter()
            .all(|&(locked, _)| tree.is_ancestor_or_self(locked, slot))
            && self
                .root
                .is_none_or(|root| tree.is_ancestor_or_self(root, slot))
    }

    /// Records a vote for `slot` (ignored unless newer than the last vote):
    /// pop expired lockouts, root the oldest when the tower is full, push,
    /// then raise the confirmation counts the new depth earns.
    pub fn record_vote(&mut self, slot: u64) {
        if self.last_slot().is_some_and(|last| slot <= last) {
            return;
        }
        self.lockouts.truncate(self.kept_at(slot));
        if self.lockouts.len() == MAX_LOCKOUT_HISTORY {
            self.root = Some(self.lockouts.remove(0).0);
        }
        self.lockouts.push((slot, 1));
        let depth = self.lockouts.len();
        for (index, (_, confirmation_count)) in self.lockouts.iter_mut().enumerate() {
            if depth > index + *confirmation_count as usize {
                *confirmation_count += 1;
            }
        }
    }
}

/// The hash the builder gives the bank of `slot`.
pub fn bank_hash(slot: u64) -> String {
    format!("bank{slot}")
}

/// Builds a trail event by event, keeping the fork tree it describes.
#[derive(Debug, Default, Clone)]
pub struct TrailBuilder {
    events: Vec<Event>,
    tree: ForkTree,
    hashes: HashMap<u64, String>,
    now_ms: u64,
    signatures: u64,
}

impl TrailBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn tick(&mut self) -> u64 {
        self.now_ms += 10;
        self.now_ms
    }

    /// A bank for `slot` on `parent`, with hash [`bank_hash`].
    pub fn bank(&mut self, slot: u64, parent: u64) -> &mut Self {
        self.bank_with_hash(slot, parent, &bank_hash(slot))
    }

    pub fn bank_with_hash(&mut self, slot: u64, parent: u64, hash: &str) -> &mut Self {
        self.tree.insert(slot, parent);
        self.hashes.entry(slot).or_insert_with(|| hash.to_owned());
        let ts_ms = self.tick();
        self.push(Event::Bank(BankEvent {
            slot,
            parent,
            hash: hash.to_owned(),
            leader: "leader".to_owned(),
            ts_ms,
        }))
    }

    /// Banks for `slots` in order, each the child of the one before, the
    /// first on `parent`.
    pub fn chain(&mut self, parent: u64, slots: impl IntoIterator<Item = u64>) -> &mut Self {
        let mut parent = parent;
        for slot in slots {
            self.bank(slot, parent);
            parent = slot;
        }
        self
    }

    /// A block produced by `instance`.
    pub fn block(&mut self, slot: u64, hash: &str, instance: &str, duplicate: bool) -> &mut Self {
        let ts_ms = self.tick();
        self.push(Event::Block(BlockEvent {
            slot,
            leader: "identity".to_owned(),
            hash: hash.to_owned(),
            instance: instance.to_owned(),
            ts_ms,
            duplicate,
        }))
    }

    /// An accepted vote carrying `tower`, sent by `instance` for `vote_account`.
    pub fn vote(&mut self, vote_account: &str, instance: &str, tower: &SimTower) -> &mut Self {
        self.vote_lockouts(vote_account, instance, &tower.lockouts, tower.root)
    }

    /// An accepted vote with these lockouts and root, claiming the bank's hash
    /// for its last slot.
    pub fn vote_lockouts(
        &mut self,
        vote_account: &str,
        instance: &str,
        lockouts: &[(u64, u32)],
        root: Option<u64>,
    ) -> &mut Self {
        let last = lockouts.last().map_or(0, |&(slot, _)| slot);
        let hash = self
            .hashes
            .get(&last)
            .cloned()
            .unwrap_or_else(|| bank_hash(last));
        self.vote_with(
            vote_account,
            instance,
            lockouts,
            root,
            &hash,
            VoteResult::Accepted,
        )
    }

    /// A vote with every field chosen by the caller.
    pub fn vote_with(
        &mut self,
        vote_account: &str,
        instance: &str,
        lockouts: &[(u64, u32)],
        root: Option<u64>,
        hash: &str,
        result: impl Into<VoteResult>,
    ) -> &mut Self {
        self.signatures += 1;
        let ts_ms = self.tick();
        let signature = format!("sig{}", self.signatures);
        self.push(Event::Vote(VoteEvent {
            ts_ms,
            vote_account: vote_account.to_owned(),
            voter: format!("{vote_account}-voter"),
            identity: format!("{instance}-identity"),
            instance: instance.to_owned(),
            signature,
            lockouts: lockouts.to_vec(),
            root,
            hash: hash.to_owned(),
            result: result.into(),
        }))
    }

    /// Appends any event as it is.
    pub fn push(&mut self, event: Event) -> &mut Self {
        self.events.push(event);
        self
    }

    /// The fork tree of the banks so far.
    pub fn tree(&self) -> &ForkTree {
        &self.tree
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn into_events(self) -> Vec<Event> {
        self.events
    }

    /// The trail as `audit.jsonl` text, one line per event.
    pub fn to_jsonl(&self) -> String {
        let mut text = String::new();
        for event in &self.events {
            text.push_str(&event.to_line());
            text.push('\n');
        }
        text
    }
}

/// A small deterministic random source (SplitMix64), so that generated runs
/// need no extra dependency and are the same on every machine.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound > 0`).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// The vote account of [`clean_run`].
pub const CLEAN_RUN_ACCOUNT: &str = "vote-account";

/// A long well-behaved run over `slots` slots: skipped slots, minor forks
/// (some of which win, abandoning the tip), offline stretches, retransmitted
/// votes the cluster rejects, and one vote account whose tower follows
/// TowerBFT, handed from instance `a` to instance `b` halfway through.
pub fn clean_run(slots: u64, seed: u64) -> TrailBuilder {
    let mut rng = SplitMix64::new(seed);
    let mut trail = TrailBuilder::new();
    let mut tower = SimTower::new();
    let mut main_tip = 0;
    let mut offline_until = 0;
    for slot in 1..=slots {
        let roll = rng.below(100);
        if roll < 5 {
            continue; // skipped slot
        }
        let fork_parent = trail.tree().parent(main_tip);
        match fork_parent {
            Some(parent) if roll < 12 => {
                trail.bank(slot, parent);
                if rng.below(3) == 0 {
                    main_tip = slot; // the minor fork wins
                }
            }
            _ => {
                trail.bank(slot, main_tip);
                main_tip = slot;
            }
        }

        if slot < offline_until {
            continue;
        }
        if rng.below(1000) < 3 {
            offline_until = slot + 1 + rng.below(40);
            continue;
        }
        let instance = if slot <= slots / 2 { "a" } else { "b" };
        if rng.below(100) < 90 && tower.can_vote(trail.tree(), slot) {
            tower.record_vote(slot);
            trail.vote(CLEAN_RUN_ACCOUNT, instance, &tower);
            if rng.below(100) < 3 {
                let hash = bank_hash(slot);
                trail.vote_with(
                    CLEAN_RUN_ACCOUNT,
                    instance,
                    &tower.lockouts,
                    tower.root,
                    &hash,
                    "VoteTooOld",
                );
            }
        }
    }
    trail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tower_follows_design_rules() {
        let mut tower = SimTower::new();
        for slot in 1..=3 {
            tower.record_vote(slot);
        }
        assert_eq!(tower.lockouts, vec![(1, 3), (2, 2), (3, 1)]);
        // Slot 3 (through 5) and 2 (through 6) expire at 7; slot 1 (through 9)
        // stays.
        tower.record_vote(7);
        assert_eq!(tower.lockouts, vec![(1, 3), (7, 1)]);
        tower.record_vote(7);
        assert_eq!(tower.lockouts, vec![(1, 3), (7, 1)]);
    }

    #[test]
    fn tower_roots_after_a_full_stack() {
        let mut tower = SimTower::new();
        for slot in 1..=32 {
            tower.record_vote(slot);
        }
        assert_eq!(tower.root, Some(1));
        assert_eq!(tower.lockouts.len(), MAX_LOCKOUT_HISTORY);
        assert_eq!(tower.lockouts[0], (2, 31));
    }

    #[test]
    fn can_vote_respects_forks() {
        let mut trail = TrailBuilder::new();
        trail.chain(0, [1, 2, 3]).bank(4, 1);
        let mut tower = SimTower::new();
        for slot in 1..=3 {
            tower.record_vote(slot);
        }
        assert!(!tower.can_vote(trail.tree(), 4));
        trail.bank(7, 4);
        // At 7, slots 3 and 2 have expired and slot 1 is an ancestor.
        assert!(tower.can_vote(trail.tree(), 7));
        assert!(!tower.can_vote(trail.tree(), 99));
    }
}
