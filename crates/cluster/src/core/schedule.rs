//! Epochs and the stake-weighted leader schedule.

use rand::{distributions::WeightedIndex, prelude::Distribution, rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};
use solana_pubkey::Pubkey;

use super::hashv;

/// A leader keeps the slot for this many consecutive slots (one rotation).
pub const NUM_CONSECUTIVE_LEADER_SLOTS: u64 = 4;

/// Epoch arithmetic. Every epoch has the same length (no warmup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochSchedule {
    pub slots_per_epoch: u64,
}

impl EpochSchedule {
    pub fn new(slots_per_epoch: u64) -> Self {
        assert!(slots_per_epoch > 0, "an epoch has at least one slot");
        Self { slots_per_epoch }
    }

    pub fn epoch(&self, slot: u64) -> u64 {
        slot / self.slots_per_epoch
    }

    pub fn slot_index(&self, slot: u64) -> u64 {
        slot % self.slots_per_epoch
    }

    pub fn first_slot(&self, epoch: u64) -> u64 {
        epoch * self.slots_per_epoch
    }
}

/// The leaders of one epoch, one entry per rotation of
/// [`NUM_CONSECUTIVE_LEADER_SLOTS`] slots.
///
/// The schedule is a pure function of the stakes, the epoch and a seed, so it
/// is stable within an epoch and identical after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderSchedule {
    pub epoch: u64,
    slots_per_epoch: u64,
    rotations: Vec<Pubkey>,
}

impl LeaderSchedule {
    /// Draws the rotations' leaders with probability proportional to stake.
    /// Zero-stake entries never lead. Panics when no entry has stake.
    pub fn new(stakes: &[(Pubkey, u64)], epoch: u64, slots_per_epoch: u64, seed: &[u8]) -> Self {
        // Sorted like agave (stake descending, then pubkey) so that the input
        // order does not matter.
        let mut sorted: Vec<(Pubkey, u64)> =
            stakes.iter().copied().filter(|(_, s)| *s > 0).collect();
        sorted.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
        let weights = WeightedIndex::new(sorted.iter().map(|(_, s)| *s))
            .expect("a leader schedule needs at least one staked node");
        let seed = hashv(&[b"leader-schedule", seed, &epoch.to_le_bytes()]).to_bytes();
        let mut rng = StdRng::from_seed(seed);
        let count = slots_per_epoch.div_ceil(NUM_CONSECUTIVE_LEADER_SLOTS);
        let rotations = (0..count)
            .map(|_| sorted[weights.sample(&mut rng)].0)
            .collect();
        Self {
            epoch,
            slots_per_epoch,
            rotations,
        }
    }

    /// The leader of the slot at `slot_index` within the epoch.
    pub fn leader_at(&self, slot_index: u64) -> Pubkey {
        self.rotations[(slot_index / NUM_CONSECUTIVE_LEADER_SLOTS) as usize]
    }

    /// Every slot index of the epoch, grouped by leader (the RPC shape).
    pub fn slots_by_leader(&self) -> std::collections::BTreeMap<Pubkey, Vec<u64>> {
        let mut map = std::collections::BTreeMap::<Pubkey, Vec<u64>>::new();
        for index in 0..self.slots_per_epoch {
            map.entry(self.leader_at(index)).or_default().push(index);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stakes(n: usize) -> Vec<(Pubkey, u64)> {
        (0..n)
            .map(|i| {
                (
                    Pubkey::new_from_array([i as u8 + 1; 32]),
                    (i as u64 + 1) * 100,
                )
            })
            .collect()
    }

    #[test]
    fn stable_within_an_epoch_and_independent_of_input_order() {
        let s = stakes(5);
        let a = LeaderSchedule::new(&s, 3, 64, b"seed");
        let mut reversed = s.clone();
        reversed.reverse();
        let b = LeaderSchedule::new(&reversed, 3, 64, b"seed");
        assert_eq!(a, b);
        for index in 0..64 {
            // Four consecutive slots per leader.
            assert_eq!(a.leader_at(index), a.leader_at(index - index % 4));
        }
        assert_ne!(a, LeaderSchedule::new(&s, 4, 64, b"seed"));
    }

    #[test]
    fn proportional_to_stake_over_many_epochs() {
        let s = stakes(4); // stakes 100, 200, 300, 400
        let total: u64 = s.iter().map(|(_, st)| st).sum();
        let mut counts = std::collections::BTreeMap::<Pubkey, u64>::new();
        let epochs = 200;
        for epoch in 0..epochs {
            let schedule = LeaderSchedule::new(&s, epoch, 256, b"x");
            for (leader, slots) in schedule.slots_by_leader() {
                *counts.entry(leader).or_default() += slots.len() as u64;
            }
        }
        let all = epochs * 256;
        for (pk, stake) in &s {
            let share = counts[pk] as f64 / all as f64;
            let expected = *stake as f64 / total as f64;
            assert!(
                (share - expected).abs() < 0.02,
                "{pk}: share {share:.3}, expected {expected:.3}"
            );
        }
    }

    #[test]
    fn zero_stake_never_leads() {
        let mut s = stakes(3);
        s.push((Pubkey::new_from_array([99; 32]), 0));
        let schedule = LeaderSchedule::new(&s, 0, 1024, b"x");
        assert!(!schedule
            .slots_by_leader()
            .contains_key(&Pubkey::new_from_array([99; 32])));
    }
}
