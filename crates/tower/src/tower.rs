//! The lockout stack of one validator and the TowerBFT decisions made on it.

use std::collections::VecDeque;

use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_vote_interface::state::{
    BlockTimestamp, Lockout, TowerSync, VoteState1_14_11, MAX_EPOCH_CREDITS_HISTORY,
    MAX_LOCKOUT_HISTORY,
};

use crate::{
    layout::{Tower1_14_11, VoteTransaction},
    Slot, UnixTimestamp,
};

/// Depth in the lockout stack at which the stake threshold is checked.
pub const VOTE_THRESHOLD_DEPTH: usize = 8;
/// Fraction of stake that must have voted at [`VOTE_THRESHOLD_DEPTH`].
pub const VOTE_THRESHOLD_SIZE: f64 = 2f64 / 3f64;

/// A validator's vote record: the lockouts of its recent votes, its root and
/// the last vote it sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Tower {
    node_pubkey: Pubkey,
    threshold_depth: usize,
    threshold_size: f64,
    /// Lockouts and root live in `votes` and `root_slot`. The other fields
    /// (copied from a vote account when agave built the tower, and agave's
    /// credit count) are carried along so that a tower read from a file is
    /// written back byte for byte.
    vote_state: VoteState1_14_11,
    last_vote: VoteTransaction,
    last_timestamp: BlockTimestamp,
}

/// What [`Tower::record_vote`] did.
#[must_use = "a recorded vote must be persisted and then sent"]
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The vote was added; the tower changed and must be stored before the
    /// vote is sent.
    Vote(VoteRecorded),
    /// The slot is not newer than the last voted slot; nothing changed.
    Stale { slot: Slot, last_voted_slot: Slot },
}

/// A vote just added to the tower.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteRecorded {
    pub slot: Slot,
    /// The new root when this vote rooted the bottom of a full stack.
    pub new_root: Option<Slot>,
    /// The vote to send, describing the whole tower after this vote.
    pub tower_sync: TowerSync,
}

/// Outcome of the stake threshold check at [`VOTE_THRESHOLD_DEPTH`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdDecision {
    Passed,
    /// Too little stake has voted for `slot`, the vote at threshold depth.
    Failed {
        slot: Slot,
        observed_stake: u64,
        total_stake: u64,
    },
}

impl Tower {
    /// An empty tower for `node_pubkey`.
    pub fn new(node_pubkey: Pubkey) -> Self {
        Self {
            node_pubkey,
            threshold_depth: VOTE_THRESHOLD_DEPTH,
            threshold_size: VOTE_THRESHOLD_SIZE,
            vote_state: VoteState1_14_11::default(),
            last_vote: VoteTransaction::default(),
            last_timestamp: BlockTimestamp::default(),
        }
    }

    /// A tower rebuilt from lockouts that landed on chain (a vote account's
    /// state), for a node that has no saved tower.
    ///
    /// The lockouts must be ordered as the vote program keeps them (slots
    /// increasing, confirmations decreasing); the last vote is the implied
    /// `TowerSync`, with `hash` for its newest slot.
    pub fn from_landed(
        node_pubkey: Pubkey,
        lockouts: impl IntoIterator<Item = Lockout>,
        root: Option<Slot>,
        hash: Hash,
    ) -> Self {
        let mut tower = Self::new(node_pubkey);
        tower.vote_state.votes = lockouts.into_iter().collect();
        tower.vote_state.root_slot = root;
        if !tower.vote_state.votes.is_empty() {
            tower.last_vote = VoteTransaction::TowerSync(tower.implied_tower_sync(hash, None));
        }
        tower
    }

    /// The tower from its saved fields (agave's `Tower1_14_11`).
    pub(crate) fn from_layout(saved: Tower1_14_11) -> Self {
        Self {
            node_pubkey: saved.node_pubkey,
            threshold_depth: saved.threshold_depth,
            threshold_size: saved.threshold_size,
            vote_state: saved.vote_state,
            last_vote: saved.last_vote,
            last_timestamp: saved.last_timestamp,
        }
    }

    /// The fields agave saves.
    pub(crate) fn to_layout(&self) -> Tower1_14_11 {
        Tower1_14_11 {
            node_pubkey: self.node_pubkey,
            threshold_depth: self.threshold_depth,
            threshold_size: self.threshold_size,
            vote_state: self.vote_state.clone(),
            last_vote: self.last_vote.clone(),
            last_timestamp: self.last_timestamp.clone(),
        }
    }

    pub fn node_pubkey(&self) -> Pubkey {
        self.node_pubkey
    }

    /// The lockout stack, oldest (deepest) first.
    pub fn lockouts(&self) -> &VecDeque<Lockout> {
        &self.vote_state.votes
    }

    pub fn root(&self) -> Option<Slot> {
        self.vote_state.root_slot
    }

    pub fn last_vote(&self) -> &VoteTransaction {
        &self.last_vote
    }

    pub fn last_timestamp(&self) -> &BlockTimestamp {
        &self.last_timestamp
    }

    pub fn threshold_depth(&self) -> usize {
        self.threshold_depth
    }

    pub fn threshold_size(&self) -> f64 {
        self.threshold_size
    }

    /// The newest slot this tower voted for.
    pub fn last_voted_slot(&self) -> Option<Slot> {
        self.last_vote
            .last_voted_slot()
            .or_else(|| self.vote_state.votes.back().map(Lockout::slot))
    }

    /// Whether `slot` is newer than every vote so far (a vote for it would
    /// not be ignored).
    pub fn is_recent(&self, slot: Slot) -> bool {
        self.last_voted_slot().is_none_or(|last| slot > last)
    }

    /// Records a vote for `slot` (bank hash `hash`, block id `block_id`) at
    /// wall-clock time `now`, and returns the `TowerSync` to send.
    ///
    /// This applies the lockout rules unconditionally; callers decide first
    /// with [`Tower::is_locked_out`] and [`Tower::check_vote_stake_threshold`]
    /// whether the vote is allowed.
    pub fn record_vote(
        &mut self,
        slot: Slot,
        hash: Hash,
        block_id: Hash,
        now: UnixTimestamp,
    ) -> Recorded {
        if let Some(last_voted_slot) = self.last_voted_slot().filter(|last| slot <= *last) {
            return Recorded::Stale {
                slot,
                last_voted_slot,
            };
        }
        let state = &mut self.vote_state;
        let new_root = apply_vote(&mut state.votes, &mut state.root_slot, slot);
        if new_root.is_some() {
            // agave's tower credits each rooted vote in epoch 0.
            increment_credits(&mut state.epoch_credits, 0, 1);
        }
        let timestamp = self.maybe_timestamp(slot, now);
        let mut tower_sync = self.implied_tower_sync(hash, timestamp);
        tower_sync.block_id = block_id;
        self.last_vote = VoteTransaction::TowerSync(tower_sync.clone());
        Recorded::Vote(VoteRecorded {
            slot,
            new_root,
            tower_sync,
        })
    }

    /// The `TowerSync` describing the current lockouts and root.
    pub fn implied_tower_sync(&self, hash: Hash, timestamp: Option<UnixTimestamp>) -> TowerSync {
        let mut sync = TowerSync::new(
            self.vote_state.votes.clone(),
            self.vote_state.root_slot,
            hash,
            Hash::default(),
        );
        sync.timestamp = timestamp;
        sync
    }

    /// Whether voting for `slot` would violate a lockout.
    ///
    /// `is_ancestor(s)` tells whether `s` is an ancestor of `slot` on the
    /// candidate's fork. A slot is locked out when it is not newer than the last
    /// vote, or when, after expired lockouts are popped, a remaining vote (or the
    /// root) is on another fork.
    pub fn is_locked_out(&self, slot: Slot, is_ancestor: impl Fn(Slot) -> bool) -> bool {
        if !self.is_recent(slot) {
            return true;
        }
        let mut votes = self.vote_state.votes.clone();
        let mut root = self.vote_state.root_slot;
        apply_vote(&mut votes, &mut root, slot);
        if votes
            .iter()
            .any(|vote| vote.slot() != slot && !is_ancestor(vote.slot()))
        {
            return true;
        }
        // Bank forks purge non-descendants of the root, so this cannot happen
        // on a consistent fork view; refusing is the safe answer if it does.
        root.is_some_and(|root| root != slot && !is_ancestor(root))
    }

    /// Whether enough stake backs the vote that would sit at threshold depth
    /// after voting for `slot`.
    ///
    /// `voted_stake(s)` is the stake that has voted for `s` or a descendant on
    /// this fork.
    pub fn check_vote_stake_threshold(
        &self,
        slot: Slot,
        voted_stake: impl Fn(Slot) -> u64,
        total_stake: u64,
    ) -> ThresholdDecision {
        let mut votes = self.vote_state.votes.clone();
        let mut root = self.vote_state.root_slot;
        apply_vote(&mut votes, &mut root, slot);
        let Some(threshold_vote) = nth_recent(&votes, self.threshold_depth) else {
            return ThresholdDecision::Passed;
        };
        // Already at this depth with this confirmation count before this vote:
        // the threshold was checked when it got there.
        let already_passed = self.vote_state.votes.iter().any(|old| {
            old.slot() == threshold_vote.slot()
                && old.confirmation_count() == threshold_vote.confirmation_count()
        });
        let observed_stake = voted_stake(threshold_vote.slot());
        if already_passed
            || (total_stake > 0 && observed_stake as f64 / total_stake as f64 > self.threshold_size)
        {
            ThresholdDecision::Passed
        } else {
            ThresholdDecision::Failed {
                slot: threshold_vote.slot(),
                observed_stake,
                total_stake,
            }
        }
    }

    /// agave's rule: a timestamp goes with a vote for a newer slot, and only if
    /// the clock did not step back.
    fn maybe_timestamp(&mut self, slot: Slot, now: UnixTimestamp) -> Option<UnixTimestamp> {
        let newer_slot = slot > self.last_timestamp.slot
            || (self.last_timestamp.slot == 0 && slot == self.last_timestamp.slot);
        if newer_slot && now >= self.last_timestamp.timestamp {
            self.last_timestamp = BlockTimestamp {
                slot,
                timestamp: now,
            };
            Some(now)
        } else {
            None
        }
    }
}

/// The vote program's rule for adding a vote to a lockout stack (agave's
/// `process_next_vote_slot`), without the staleness check. Returns the new
/// root if the stack was full.
fn apply_vote(votes: &mut VecDeque<Lockout>, root: &mut Option<Slot>, slot: Slot) -> Option<Slot> {
    // Pop votes whose lockout expired before `slot`.
    while votes
        .back()
        .is_some_and(|top| !top.is_locked_out_at_slot(slot))
    {
        votes.pop_back();
    }
    let mut new_root = None;
    if votes.len() == MAX_LOCKOUT_HISTORY {
        let bottom = votes.pop_front().expect("stack is full");
        *root = Some(bottom.slot());
        new_root = *root;
    }
    votes.push_back(Lockout::new(slot));
    // A vote gains a confirmation each time the stack above it grows past the
    // confirmations it already has.
    let depth = votes.len();
    for (i, vote) in votes.iter_mut().enumerate() {
        if depth > i + vote.confirmation_count() as usize {
            vote.increase_confirmation_count(1);
        }
    }
    new_root
}

/// The vote program's credit bookkeeping (`increment_credits`).
fn increment_credits(epoch_credits: &mut Vec<(u64, u64, u64)>, epoch: u64, credits: u64) {
    match epoch_credits.last().copied() {
        None => epoch_credits.push((epoch, 0, 0)),
        Some((last_epoch, total, previous)) if last_epoch != epoch => {
            if total != previous {
                epoch_credits.push((epoch, total, total));
                if epoch_credits.len() > MAX_EPOCH_CREDITS_HISTORY {
                    epoch_credits.remove(0);
                }
            } else if let Some(last) = epoch_credits.last_mut() {
                last.0 = epoch;
            }
        }
        Some(_) => {}
    }
    if let Some(last) = epoch_credits.last_mut() {
        last.1 = last.1.saturating_add(credits);
    }
}

fn nth_recent(votes: &VecDeque<Lockout>, position: usize) -> Option<&Lockout> {
    let index = votes.len().checked_sub(position + 1)?;
    votes.get(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(tower: &mut Tower, slot: Slot) -> VoteRecorded {
        match tower.record_vote(
            slot,
            Hash::new_from_array([slot as u8; 32]),
            Hash::default(),
            0,
        ) {
            Recorded::Vote(recorded) => recorded,
            stale => panic!("vote for {slot} was {stale:?}"),
        }
    }

    fn stack(tower: &Tower) -> Vec<(Slot, u32)> {
        tower
            .lockouts()
            .iter()
            .map(|l| (l.slot(), l.confirmation_count()))
            .collect()
    }

    #[test]
    fn consecutive_votes_double_lockouts() {
        let mut tower = Tower::new(Pubkey::new_unique());
        for slot in 0..4 {
            let _ = vote(&mut tower, slot);
        }
        assert_eq!(stack(&tower), vec![(0, 4), (1, 3), (2, 2), (3, 1)]);
        assert_eq!(tower.last_voted_slot(), Some(3));
    }

    #[test]
    fn expired_lockouts_pop_before_push() {
        let mut tower = Tower::new(Pubkey::new_unique());
        let _ = vote(&mut tower, 0);
        let _ = vote(&mut tower, 1);
        // (0,2) locked through 4, (1,1) through 3: a vote at 4 pops slot 1.
        let _ = vote(&mut tower, 4);
        assert_eq!(stack(&tower), vec![(0, 2), (4, 1)]);
    }

    #[test]
    fn thirty_second_vote_roots_the_bottom() {
        let mut tower = Tower::new(Pubkey::new_unique());
        for slot in 0..31 {
            assert_eq!(vote(&mut tower, slot).new_root, None);
        }
        assert_eq!(tower.lockouts().len(), 31);
        let recorded = vote(&mut tower, 31);
        assert_eq!(recorded.new_root, Some(0));
        assert_eq!(tower.root(), Some(0));
        assert_eq!(recorded.tower_sync.root, Some(0));
        assert_eq!(recorded.tower_sync.lockouts.len(), 31);
        assert_eq!(tower.lockouts().front().unwrap().slot(), 1);
    }

    #[test]
    fn stale_vote_changes_nothing() {
        let mut tower = Tower::new(Pubkey::new_unique());
        let _ = vote(&mut tower, 5);
        let before = tower.clone();
        let outcome = tower.record_vote(5, Hash::default(), Hash::default(), 0);
        assert_eq!(
            outcome,
            Recorded::Stale {
                slot: 5,
                last_voted_slot: 5
            }
        );
        assert_eq!(tower, before);
    }

    #[test]
    fn other_fork_is_locked_out_until_lockout_expires() {
        let mut tower = Tower::new(Pubkey::new_unique());
        // Fork A: 1 -> 2 -> 3. Fork B: 1 -> 4 -> 10 (does not contain 2, 3).
        for slot in [1, 2, 3] {
            let _ = vote(&mut tower, slot);
        }
        // Stack: (1,3) through 9, (2,2) through 6, (3,1) through 5.
        let fork_b = |s: Slot| s == 1 || s == 4;
        assert!(tower.is_locked_out(4, fork_b));
        assert!(tower.is_locked_out(6, |s| s == 1 || s == 4));
        // At 7, (2,2) and (3,1) have expired; (1,3) is an ancestor.
        assert!(!tower.is_locked_out(7, |s| s == 1 || s == 4));
        // Fork A descendants are fine at once.
        assert!(!tower.is_locked_out(4, |s| s <= 3));
        // Not newer than the last vote: always locked out.
        assert!(tower.is_locked_out(3, |_| true));
    }

    #[test]
    fn timestamps_only_move_forward() {
        let mut tower = Tower::new(Pubkey::new_unique());
        let Recorded::Vote(first) = tower.record_vote(1, Hash::default(), Hash::default(), 100)
        else {
            panic!()
        };
        assert_eq!(first.tower_sync.timestamp, Some(100));
        let Recorded::Vote(second) = tower.record_vote(2, Hash::default(), Hash::default(), 99)
        else {
            panic!()
        };
        assert_eq!(second.tower_sync.timestamp, None, "clock stepped back");
        assert_eq!(tower.last_timestamp().timestamp, 100);
    }

    #[test]
    fn threshold_needs_two_thirds_at_depth_eight() {
        let mut tower = Tower::new(Pubkey::new_unique());
        for slot in 0..8 {
            let _ = vote(&mut tower, slot);
        }
        // Voting 8 puts slot 0 at depth 8.
        let low = tower.check_vote_stake_threshold(8, |_| 66, 100);
        assert_eq!(
            low,
            ThresholdDecision::Failed {
                slot: 0,
                observed_stake: 66,
                total_stake: 100
            }
        );
        assert_eq!(
            tower.check_vote_stake_threshold(8, |_| 67, 100),
            ThresholdDecision::Passed
        );
        // Shallower than the threshold depth: nothing to check.
        let fresh = Tower::new(Pubkey::new_unique());
        assert_eq!(
            fresh.check_vote_stake_threshold(1, |_| 0, 100),
            ThresholdDecision::Passed
        );
    }

    #[test]
    fn from_landed_implies_last_vote() {
        let lockouts = [
            Lockout::new_with_confirmation_count(10, 2),
            Lockout::new(11),
        ];
        let hash = Hash::new_from_array([7; 32]);
        let tower = Tower::from_landed(Pubkey::new_unique(), lockouts, Some(3), hash);
        assert_eq!(tower.last_voted_slot(), Some(11));
        assert_eq!(tower.last_vote().hash(), hash);
        assert_eq!(tower.root(), Some(3));
        assert!(!tower.is_recent(11));
        assert!(tower.is_recent(12));
    }
}
