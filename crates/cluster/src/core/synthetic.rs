//! Synthetic validators: stake holders that vote like TowerBFT validators on
//! the fork the cluster builds on. Their towers drive confirmation and roots.

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use solana_pubkey::Pubkey;
use solana_vote_interface::state::{Lockout, MAX_LOCKOUT_HISTORY};

/// One synthetic validator and its tower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticValidator {
    pub identity: Pubkey,
    pub vote_account: Pubkey,
    pub stake: u64,
    pub tower: VecDeque<Lockout>,
    pub root: Option<u64>,
    /// `(epoch, credits, prev_credits)`, as the vote program keeps it.
    pub epoch_credits: Vec<(u64, u64, u64)>,
    /// The last vote's slot and its bank's time (Unix seconds).
    pub last_timestamp: (u64, i64),
}

/// A synthetic validator's votes as one bank holds them: its vote account
/// in that bank.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticVotes {
    pub tower: VecDeque<Lockout>,
    pub root: Option<u64>,
    /// The newest entries only (as many as `getVoteAccounts` shows).
    pub epoch_credits: Vec<(u64, u64, u64)>,
    pub last_timestamp: (u64, i64),
}

/// Epoch credits entries a bank keeps per synthetic validator.
const CREDITS_KEPT: usize = 5;

impl SyntheticValidator {
    /// Its vote account's content now.
    pub fn votes(&self) -> SyntheticVotes {
        let credits = &self.epoch_credits;
        SyntheticVotes {
            tower: self.tower.clone(),
            root: self.root,
            epoch_credits: credits[credits.len().saturating_sub(CREDITS_KEPT)..].to_vec(),
            last_timestamp: self.last_timestamp,
        }
    }

    pub fn new(identity: Pubkey, vote_account: Pubkey, stake: u64) -> Self {
        Self {
            identity,
            vote_account,
            stake,
            tower: VecDeque::new(),
            root: None,
            epoch_credits: Vec::new(),
            last_timestamp: (0, 0),
        }
    }

    pub fn last_vote(&self) -> Option<u64> {
        self.tower.back().map(|l| l.slot())
    }

    /// Whether a vote on `slot` (whose ancestors are `ancestors`) respects
    /// every lockout of the tower.
    pub fn can_vote(&self, slot: u64, ancestors: &HashSet<u64>) -> bool {
        self.last_vote().is_none_or(|last| slot > last)
            && self
                .tower
                .iter()
                .all(|l| ancestors.contains(&l.slot()) || !l.is_locked_out_at_slot(slot))
    }

    /// Records a vote (TowerBFT): pop expired lockouts, push, double, root.
    /// Returns the newly rooted slot, if any.
    pub fn record_vote(&mut self, slot: u64, epoch: u64, time_s: i64) -> Option<u64> {
        self.last_timestamp = (slot, time_s);
        while let Some(top) = self.tower.back() {
            if top.is_locked_out_at_slot(slot) {
                break;
            }
            self.tower.pop_back();
        }
        let mut rooted = None;
        if self.tower.len() == MAX_LOCKOUT_HISTORY {
            let root = self.tower.pop_front().expect("tower is full").slot();
            self.root = Some(root);
            rooted = Some(root);
            // Votes land within the grace period: full timely credits.
            self.add_credits(epoch, 16);
        }
        self.tower.push_back(Lockout::new(slot));
        let depth = self.tower.len();
        for (i, lockout) in self.tower.iter_mut().enumerate() {
            if depth > i + lockout.confirmation_count() as usize {
                lockout.increase_confirmation_count(1);
            }
        }
        rooted
    }

    fn add_credits(&mut self, epoch: u64, credits: u64) {
        match self.epoch_credits.last().copied() {
            Some((e, c, _)) if e != epoch => self.epoch_credits.push((epoch, c, c)),
            None => self.epoch_credits.push((epoch, 0, 0)),
            _ => {}
        }
        if self.epoch_credits.len() > 64 {
            self.epoch_credits.remove(0);
        }
        if let Some(last) = self.epoch_credits.last_mut() {
            last.1 += credits;
        }
    }
}

/// The highest slot that validators holding at least `threshold` of
/// `total_stake` have reached, each validator contributing `value`.
pub fn stake_quantile(
    values: impl IntoIterator<Item = (u64, u64)>,
    total_stake: u64,
    threshold: f64,
) -> Option<u64> {
    let mut values: Vec<(u64, u64)> = values.into_iter().collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.0));
    let needed = (total_stake as f64 * threshold).ceil() as u64;
    let mut stake = 0;
    for (value, s) in values {
        stake += s;
        if stake >= needed {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_after_thirty_two_consecutive_votes() {
        let mut v = SyntheticValidator::new(Pubkey::new_unique(), Pubkey::new_unique(), 1);
        let mut rooted = None;
        for slot in 1..=32 {
            rooted = v.record_vote(slot, 0, 0).or(rooted);
        }
        assert_eq!(rooted, Some(1));
        assert_eq!(v.tower.len(), 31);
        assert_eq!(v.tower[0].confirmation_count(), 31);
    }

    #[test]
    fn locked_out_of_another_fork() {
        let mut v = SyntheticValidator::new(Pubkey::new_unique(), Pubkey::new_unique(), 1);
        v.record_vote(10, 0, 0);
        let other_fork: HashSet<u64> = [9].into();
        assert!(!v.can_vote(11, &other_fork));
        assert!(!v.can_vote(12, &other_fork));
        assert!(v.can_vote(13, &other_fork));
        let same_fork: HashSet<u64> = [10, 9].into();
        assert!(v.can_vote(11, &same_fork));
    }

    #[test]
    fn quantile() {
        assert_eq!(
            stake_quantile([(10, 1), (20, 1), (30, 1)], 3, 2.0 / 3.0),
            Some(20)
        );
        assert_eq!(stake_quantile([(10, 1)], 3, 2.0 / 3.0), None);
    }
}
