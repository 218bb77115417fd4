//! The decision, without IO: given where the cluster is in its epoch, the
//! identity's leader slots, the node's health and the delinquent stake, is
//! now a good moment to restart or fail over?
//!
//! The order follows agave's `wait-for-restart-window`:
//!
//! 1. an idle window longer than an epoch can never come: [`Decision::Impossible`];
//! 2. the node is unhealthy: wait (a node that is behind reports an old slot,
//!    so nothing below is judged from its view);
//! 3. fewer than `min_idle_slots` slots are left in the epoch: wait for the
//!    next epoch ("Current epoch is almost complete");
//! 4. the identity leads later in this epoch but no idle window of
//!    `min_idle_slots` fits before the epoch ends: [`Decision::Impossible`]
//!    ("Validator has no idle window …");
//! 5. the identity leads within `[current, current + min_idle_slots)`: wait
//!    for the next idle window ("Validator will be leader soon");
//! 6. delinquent stake ≥ the maximum: wait ("Delinquency too high");
//! 7. otherwise [`Decision::Ready`].
//!
//! Idle windows are recomputed from the current slot on every call, so a
//! window that has started or passed is never reported as upcoming (agave
//! dropped stale windows with `pop()`, which removed the *last* one).

use std::fmt;
use std::time::Duration;

/// Where the cluster is in its epoch (RPC `getEpochInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochPosition {
    pub epoch: u64,
    /// The current slot (`absoluteSlot`).
    pub absolute_slot: u64,
    /// `absolute_slot`'s index within the epoch.
    pub slot_index: u64,
    pub slots_in_epoch: u64,
}

impl EpochPosition {
    /// The epoch's first slot.
    pub fn first_slot(&self) -> u64 {
        self.absolute_slot.saturating_sub(self.slot_index)
    }

    /// One past the epoch's last slot.
    pub fn end_slot(&self) -> u64 {
        self.first_slot().saturating_add(self.slots_in_epoch)
    }

    /// Slots from the current one to the end of the epoch (the current one
    /// included).
    pub fn slots_left(&self) -> u64 {
        self.slots_in_epoch.saturating_sub(self.slot_index)
    }
}

pub use crate::health::Health;

/// The operator's limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// The idle window the restart needs: no leader slot of the identity in
    /// `[current, current + min_idle_slots)`.
    pub min_idle_slots: u64,
    /// Wait while at least this share of the stake is delinquent.
    pub max_delinquent_stake_percent: f64,
}

/// The identity's leader slots in one epoch: absolute, sorted, without
/// duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderSlots {
    epoch: u64,
    slots: Vec<u64>,
}

impl LeaderSlots {
    /// From absolute slots, in any order.
    pub fn new(epoch: u64, slots: impl IntoIterator<Item = u64>) -> Self {
        let mut slots: Vec<u64> = slots.into_iter().collect();
        slots.sort_unstable();
        slots.dedup();
        Self { epoch, slots }
    }

    /// From `getLeaderSchedule`'s indices, which count from the epoch's
    /// first slot.
    pub fn from_relative(
        epoch: u64,
        first_slot: u64,
        indices: impl IntoIterator<Item = u64>,
    ) -> Self {
        Self::new(
            epoch,
            indices.into_iter().map(|i| first_slot.saturating_add(i)),
        )
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn slots(&self) -> &[u64] {
        &self.slots
    }

    /// The leader slots in `[from, end)`.
    fn between(&self, from: u64, end: u64) -> &[u64] {
        let lo = self.slots.partition_point(|&s| s < from);
        let hi = self.slots.partition_point(|&s| s < end);
        &self.slots[lo..hi.max(lo)]
    }
}

/// One poll's view.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub position: EpochPosition,
    /// The identity's leader slots for `position.epoch`.
    pub leader_slots: &'a LeaderSlots,
    /// `None`: the health check is skipped.
    pub health: Option<Health>,
    /// Delinquent stake in percent of all stake; `None`: not checked.
    pub delinquent_stake_percent: Option<f64>,
}

/// A run of slots without a leader slot of the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleWindow {
    /// Its first slot.
    pub start: u64,
    /// Its length in slots (up to the next leader slot or the epoch's end).
    pub len: u64,
}

/// What to do now.
#[must_use]
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Not now; `eta` is the number of slots until the reason may clear,
    /// when that is known.
    Wait {
        reason: WaitReason,
        eta: Option<u64>,
    },
    /// A good moment: restart or fail over now.
    Ready,
    /// It cannot become a good moment in this epoch.
    Impossible(ImpossibleReason),
}

/// Why to wait.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitReason {
    /// The node is unhealthy (or behind).
    Unhealthy { health: Health },
    /// The epoch ends before an idle window of `min_idle_slots` could.
    EpochAlmostComplete {
        slots_left: u64,
        min_idle_slots: u64,
    },
    /// The identity leads within the idle window.
    LeaderSoon {
        next_leader_slot: u64,
        /// Slots from the current one to `next_leader_slot`.
        in_slots: u64,
        /// The first idle window of `min_idle_slots` still to come.
        next_window: IdleWindow,
        /// Slots from the current one to `next_window.start`.
        window_in_slots: u64,
        /// For the times shown.
        slot_time: Duration,
    },
    /// Too much stake is delinquent.
    DelinquencyTooHigh { percent: f64, max_percent: f64 },
    /// The leader schedule at hand is not for the current epoch.
    NoSchedule { epoch: u64 },
}

/// A [`WaitReason`]'s variant, without its figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitKind {
    Unhealthy,
    EpochAlmostComplete,
    LeaderSoon,
    DelinquencyTooHigh,
    NoSchedule,
}

impl WaitReason {
    pub fn kind(&self) -> WaitKind {
        match self {
            WaitReason::Unhealthy { .. } => WaitKind::Unhealthy,
            WaitReason::EpochAlmostComplete { .. } => WaitKind::EpochAlmostComplete,
            WaitReason::LeaderSoon { .. } => WaitKind::LeaderSoon,
            WaitReason::DelinquencyTooHigh { .. } => WaitKind::DelinquencyTooHigh,
            WaitReason::NoSchedule { .. } => WaitKind::NoSchedule,
        }
    }
}

/// Why it cannot become a good moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImpossibleReason {
    /// The identity leads later in the epoch and no idle window of
    /// `min_idle_slots` fits in what is left of it.
    NoIdleWindow {
        epoch: u64,
        min_idle_slots: u64,
        /// The longest idle run left in the epoch.
        largest: u64,
    },
    /// The window asked for is longer than an epoch.
    WindowLongerThanEpoch {
        min_idle_slots: u64,
        slots_in_epoch: u64,
    },
}

/// Decides; see the module docs for the order of the checks.
pub fn decide(obs: &Observation<'_>, thresholds: &Thresholds, slot_time: Duration) -> Decision {
    let pos = obs.position;
    let min = thresholds.min_idle_slots;
    if min > pos.slots_in_epoch {
        return Decision::Impossible(ImpossibleReason::WindowLongerThanEpoch {
            min_idle_slots: min,
            slots_in_epoch: pos.slots_in_epoch,
        });
    }
    if let Some(health @ (Health::Behind { .. } | Health::Unknown)) = obs.health {
        return Decision::Wait {
            reason: WaitReason::Unhealthy { health },
            eta: None,
        };
    }
    if obs.leader_slots.epoch() != pos.epoch {
        return Decision::Wait {
            reason: WaitReason::NoSchedule { epoch: pos.epoch },
            eta: None,
        };
    }
    if pos.slot_index.saturating_add(min) > pos.slots_in_epoch {
        return Decision::Wait {
            reason: WaitReason::EpochAlmostComplete {
                slots_left: pos.slots_left(),
                min_idle_slots: min,
            },
            eta: Some(pos.slots_left()),
        };
    }
    let current = pos.absolute_slot;
    let upcoming = obs.leader_slots.between(current, pos.end_slot());
    if let Some(&next_leader_slot) = upcoming.first() {
        let windows = idle_windows(current, upcoming, pos.end_slot());
        let Some(next_window) = windows.iter().copied().find(|w| w.len >= min) else {
            let largest = windows.iter().map(|w| w.len).max().unwrap_or(0);
            return Decision::Impossible(ImpossibleReason::NoIdleWindow {
                epoch: pos.epoch,
                min_idle_slots: min,
                largest,
            });
        };
        let in_slots = next_leader_slot - current;
        if in_slots < min {
            let window_in_slots = next_window.start - current;
            return Decision::Wait {
                reason: WaitReason::LeaderSoon {
                    next_leader_slot,
                    in_slots,
                    next_window,
                    window_in_slots,
                    slot_time,
                },
                eta: Some(window_in_slots),
            };
        }
    }
    if let Some(percent) = obs.delinquent_stake_percent {
        if percent >= thresholds.max_delinquent_stake_percent {
            return Decision::Wait {
                reason: WaitReason::DelinquencyTooHigh {
                    percent,
                    max_percent: thresholds.max_delinquent_stake_percent,
                },
                eta: None,
            };
        }
    }
    Decision::Ready
}

/// The idle runs from `current` to `end`, given the leader slots in
/// `[current, end)` (sorted): the one starting at `current` (possibly
/// empty), then one after each leader slot (possibly empty).
fn idle_windows(current: u64, upcoming: &[u64], end: u64) -> Vec<IdleWindow> {
    let mut windows = Vec::with_capacity(upcoming.len() + 1);
    let mut start = current;
    for &leader in upcoming {
        windows.push(IdleWindow {
            start,
            len: leader - start,
        });
        start = leader + 1;
    }
    windows.push(IdleWindow {
        start,
        len: end.saturating_sub(start),
    });
    windows
}

/// `7.2`, `5`, `33.33`: at most two decimals, no trailing zeros.
pub(crate) fn fmt_percent(p: f64) -> String {
    let s = format!("{p:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// `n` slots as seconds, one decimal.
pub(crate) fn fmt_slots_as_secs(n: u64, slot_time: Duration) -> String {
    format!("{:.1} s", slot_time.as_secs_f64() * n as f64)
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::Unhealthy { health } => write!(f, "Node is unhealthy: {health}"),
            WaitReason::EpochAlmostComplete {
                slots_left,
                min_idle_slots,
            } => write!(
                f,
                "Current epoch is almost complete: {slots_left} slots left, \
                 the idle window needs {min_idle_slots}"
            ),
            WaitReason::LeaderSoon {
                in_slots,
                next_window,
                window_in_slots,
                slot_time,
                ..
            } => write!(
                f,
                "Validator will be leader soon: leader in {in_slots} slots ({}); \
                 next idle window in {window_in_slots} slots ({}), for {} slots",
                fmt_slots_as_secs(*in_slots, *slot_time),
                fmt_slots_as_secs(*window_in_slots, *slot_time),
                next_window.len,
            ),
            WaitReason::DelinquencyTooHigh {
                percent,
                max_percent,
            } => write!(
                f,
                "Delinquency too high: delinquent stake {} % ≥ {} %",
                fmt_percent(*percent),
                fmt_percent(*max_percent)
            ),
            WaitReason::NoSchedule { epoch } => {
                write!(f, "Fetching leader schedule for epoch {epoch}...")
            }
        }
    }
}

impl fmt::Display for ImpossibleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImpossibleReason::NoIdleWindow {
                epoch,
                min_idle_slots,
                largest,
            } => write!(
                f,
                "Validator has no idle window of at least {min_idle_slots} slots left in \
                 epoch {epoch}. Largest idle window left is {largest} slots"
            ),
            ImpossibleReason::WindowLongerThanEpoch {
                min_idle_slots,
                slots_in_epoch,
            } => write!(
                f,
                "Validator has no idle window of at least {min_idle_slots} slots: \
                 an epoch has only {slots_in_epoch} slots"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SLOT: Duration = Duration::from_millis(400);

    /// Epoch 3 of 100-slot epochs: slots 300..400.
    fn at(slot: u64) -> EpochPosition {
        EpochPosition {
            epoch: 3,
            absolute_slot: slot,
            slot_index: slot - 300,
            slots_in_epoch: 100,
        }
    }

    fn leaders(slots: &[u64]) -> LeaderSlots {
        LeaderSlots::new(3, slots.iter().copied())
    }

    fn limits(min_idle_slots: u64) -> Thresholds {
        Thresholds {
            min_idle_slots,
            max_delinquent_stake_percent: 5.0,
        }
    }

    fn decide_at(slot: u64, leader_slots: &[u64], min_idle_slots: u64) -> Decision {
        let schedule = leaders(leader_slots);
        let obs = Observation {
            position: at(slot),
            leader_slots: &schedule,
            health: Some(Health::Ok),
            delinquent_stake_percent: Some(1.0),
        };
        decide(&obs, &limits(min_idle_slots), SLOT)
    }

    fn leader_soon(decision: &Decision) -> (u64, IdleWindow, Option<u64>) {
        match decision {
            Decision::Wait {
                reason:
                    WaitReason::LeaderSoon {
                        next_leader_slot,
                        next_window,
                        ..
                    },
                eta,
            } => (*next_leader_slot, *next_window, *eta),
            other => panic!("expected LeaderSoon, got {other:?}"),
        }
    }

    #[test]
    fn no_leader_slots_is_ready() {
        assert_eq!(decide_at(310, &[], 20), Decision::Ready);
    }

    #[test]
    fn leader_slot_inside_the_window_waits_for_the_next_window() {
        // Leader at 320..=323; the window [310, 330) contains them.
        let d = decide_at(310, &[320, 321, 322, 323], 20);
        let (next, window, eta) = leader_soon(&d);
        assert_eq!(next, 320);
        assert_eq!(
            window,
            IdleWindow {
                start: 324,
                len: 76
            }
        );
        assert_eq!(eta, Some(14));
    }

    #[test]
    fn leader_slot_just_outside_the_window_is_ready() {
        // The window is [310, 330); 330 is the first slot after it.
        assert_eq!(decide_at(310, &[330, 331], 20), Decision::Ready);
        // One slot earlier it is inside.
        let (next, _, _) = leader_soon(&decide_at(311, &[330, 331], 20));
        assert_eq!(next, 330);
    }

    #[test]
    fn leading_now_waits() {
        let (next, window, eta) = leader_soon(&decide_at(320, &[320, 321, 322, 323], 20));
        assert_eq!(next, 320);
        assert_eq!(window.start, 324);
        assert_eq!(eta, Some(4));
    }

    #[test]
    fn passed_leader_slots_do_not_count() {
        // The leader slots are behind us; the rest of the epoch is idle.
        assert_eq!(decide_at(325, &[320, 321, 322, 323], 20), Decision::Ready);
    }

    #[test]
    fn window_may_reach_the_last_slot_of_the_epoch() {
        // [380, 400) is the epoch's last 20 slots: it fits exactly.
        assert_eq!(decide_at(380, &[379], 20), Decision::Ready);
    }

    #[test]
    fn window_crossing_the_epoch_end_waits_for_the_next_epoch() {
        // 19 slots left, 20 needed: the next epoch's schedule is unknown.
        match decide_at(381, &[], 20) {
            Decision::Wait {
                reason:
                    WaitReason::EpochAlmostComplete {
                        slots_left,
                        min_idle_slots,
                    },
                eta,
            } => {
                assert_eq!((slots_left, min_idle_slots), (19, 20));
                assert_eq!(eta, Some(19));
            }
            other => panic!("{other:?}"),
        }
        // Also with leader slots left: wait into the next epoch rather
        // than give up.
        assert!(matches!(
            decide_at(385, &[390], 20),
            Decision::Wait {
                reason: WaitReason::EpochAlmostComplete { .. },
                ..
            }
        ));
    }

    #[test]
    fn the_next_window_may_be_the_tail_of_the_epoch() {
        // Leader at 350; the only window of 30 is [351, 400).
        let (_, window, eta) = leader_soon(&decide_at(330, &[350], 30));
        assert_eq!(
            window,
            IdleWindow {
                start: 351,
                len: 49
            }
        );
        assert_eq!(eta, Some(21));
    }

    #[test]
    fn no_idle_window_left_in_the_epoch_is_impossible() {
        // Leader every 10 slots; 20 idle slots never fit.
        let slots: Vec<u64> = (300..400).step_by(10).collect();
        match decide_at(305, &slots, 20) {
            Decision::Impossible(ImpossibleReason::NoIdleWindow {
                epoch,
                min_idle_slots,
                largest,
            }) => {
                assert_eq!((epoch, min_idle_slots, largest), (3, 20, 9));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn impossible_message_reads_like_agave() {
        let reason = ImpossibleReason::NoIdleWindow {
            epoch: 3,
            min_idle_slots: 20,
            largest: 9,
        };
        assert_eq!(
            reason.to_string(),
            "Validator has no idle window of at least 20 slots left in epoch 3. \
             Largest idle window left is 9 slots"
        );
    }

    #[test]
    fn window_longer_than_an_epoch_is_impossible_even_without_leader_slots() {
        assert_eq!(
            decide_at(300, &[], 101),
            Decision::Impossible(ImpossibleReason::WindowLongerThanEpoch {
                min_idle_slots: 101,
                slots_in_epoch: 100
            })
        );
        // A window of exactly one epoch fits at its first slot.
        assert_eq!(decide_at(300, &[], 100), Decision::Ready);
    }

    #[test]
    fn stale_windows_are_dropped_from_the_front() {
        // Windows from 305: [305, 310), [311, 340), [341, 345), [346, 400).
        let schedule = [310, 340, 345];
        // At 305 the next window of 20 is [311, 340).
        let (_, window, _) = leader_soon(&decide_at(305, &schedule, 20));
        assert_eq!(
            window,
            IdleWindow {
                start: 311,
                len: 29
            }
        );
        // Inside [311, 340) with 20 slots to go: ready.
        assert_eq!(decide_at(320, &schedule, 20), Decision::Ready);
        // Later in it, fewer than 20 idle slots are left: the window that
        // started at 311 is stale and the next one is [346, 400), not the
        // stale one (agave's `pop()` dropped the last window instead).
        let (next, window, eta) = leader_soon(&decide_at(325, &schedule, 20));
        assert_eq!(next, 340);
        assert_eq!(
            window,
            IdleWindow {
                start: 346,
                len: 54
            }
        );
        assert_eq!(eta, Some(21));
    }

    #[test]
    fn delinquency_at_or_above_the_maximum_waits() {
        let schedule = leaders(&[]);
        let obs = |percent| Observation {
            position: at(310),
            leader_slots: &schedule,
            health: Some(Health::Ok),
            delinquent_stake_percent: Some(percent),
        };
        assert_eq!(decide(&obs(4.99), &limits(20), SLOT), Decision::Ready);
        let d = decide(&obs(5.0), &limits(20), SLOT);
        assert!(matches!(
            d,
            Decision::Wait {
                reason: WaitReason::DelinquencyTooHigh { .. },
                eta: None
            }
        ));
        match decide(&obs(7.2), &limits(20), SLOT) {
            Decision::Wait { reason, .. } => assert_eq!(
                reason.to_string(),
                "Delinquency too high: delinquent stake 7.2 % ≥ 5 %"
            ),
            other => panic!("{other:?}"),
        }
        // Not checked: ready.
        let skipped = Observation {
            delinquent_stake_percent: None,
            ..obs(90.0)
        };
        assert_eq!(decide(&skipped, &limits(20), SLOT), Decision::Ready);
    }

    #[test]
    fn the_leader_comes_before_delinquency() {
        let schedule = leaders(&[315]);
        let obs = Observation {
            position: at(310),
            leader_slots: &schedule,
            health: Some(Health::Ok),
            delinquent_stake_percent: Some(50.0),
        };
        leader_soon(&decide(&obs, &limits(20), SLOT));
    }

    #[test]
    fn unhealthy_node_waits_first() {
        // Even with a leader slot near, a high delinquency and the epoch
        // about to end, health is reported first.
        let schedule = leaders(&[395]);
        for health in [Health::Behind { slots: 40 }, Health::Unknown] {
            let obs = Observation {
                position: at(390),
                leader_slots: &schedule,
                health: Some(health),
                delinquent_stake_percent: Some(50.0),
            };
            assert_eq!(
                decide(&obs, &limits(20), SLOT),
                Decision::Wait {
                    reason: WaitReason::Unhealthy { health },
                    eta: None
                }
            );
        }
        let behind = WaitReason::Unhealthy {
            health: Health::Behind { slots: 40 },
        };
        assert_eq!(
            behind.to_string(),
            "Node is unhealthy: node behind by 40 slots"
        );
        // Skipped health check: on to the other checks.
        let obs = Observation {
            position: at(310),
            leader_slots: &leaders(&[]),
            health: None,
            delinquent_stake_percent: Some(0.0),
        };
        assert_eq!(decide(&obs, &limits(20), SLOT), Decision::Ready);
    }

    #[test]
    fn schedule_of_another_epoch_waits() {
        let old = LeaderSlots::new(2, [250]);
        let obs = Observation {
            position: at(310),
            leader_slots: &old,
            health: Some(Health::Ok),
            delinquent_stake_percent: Some(0.0),
        };
        assert_eq!(
            decide(&obs, &limits(20), SLOT),
            Decision::Wait {
                reason: WaitReason::NoSchedule { epoch: 3 },
                eta: None
            }
        );
    }

    #[test]
    fn leader_soon_message_shows_slots_and_seconds() {
        let d = decide_at(308, &[320, 321, 322, 323], 20);
        let Decision::Wait { reason, .. } = d else {
            panic!("{d:?}")
        };
        assert_eq!(
            reason.to_string(),
            "Validator will be leader soon: leader in 12 slots (4.8 s); \
             next idle window in 16 slots (6.4 s), for 76 slots"
        );
        assert_eq!(reason.kind(), WaitKind::LeaderSoon);
    }

    #[test]
    fn relative_indices_become_absolute_slots() {
        let s = LeaderSlots::from_relative(3, 300, [7, 0, 7, 3]);
        assert_eq!(s.slots(), &[300, 303, 307]);
        assert_eq!(s.epoch(), 3);
    }

    #[test]
    fn percent_formatting() {
        assert_eq!(fmt_percent(5.0), "5");
        assert_eq!(fmt_percent(7.2), "7.2");
        assert_eq!(fmt_percent(33.333), "33.33");
        assert_eq!(fmt_percent(0.0), "0");
    }

    /// Brute force: the first start `s ≥ from` whose `[s, s + min)` lies in
    /// the epoch and holds no leader slot.
    fn first_free_start(from: u64, end: u64, min: u64, leaders: &[u64]) -> Option<u64> {
        (from..=end.saturating_sub(min))
            .find(|&s| s + min <= end && !leaders.iter().any(|&l| l >= s && l < s + min))
    }

    fn arb_case() -> impl Strategy<Value = (u64, u64, Vec<u64>, u64, u64, f64)> {
        // (first slot, slots in epoch, leader indices, slot index, min idle, delinquent %)
        (1u64..200).prop_flat_map(|n| {
            (
                0u64..5,
                Just(n),
                proptest::collection::vec(0..n, 0..24),
                0..n,
                0..n + 5,
                0.0f64..10.0,
            )
                .prop_map(|(e, n, l, i, m, d)| (e * n, n, l, i, m, d))
        })
    }

    proptest! {
        #[test]
        fn ready_means_no_leader_slot_in_the_window(
            (first, n, indices, index, min, delinquent) in arb_case()
        ) {
            let epoch = first / n;
            let schedule = LeaderSlots::from_relative(epoch, first, indices);
            let position = EpochPosition {
                epoch,
                absolute_slot: first + index,
                slot_index: index,
                slots_in_epoch: n,
            };
            let obs = Observation {
                position,
                leader_slots: &schedule,
                health: Some(Health::Ok),
                delinquent_stake_percent: Some(delinquent),
            };
            let thresholds = limits(min);
            let current = position.absolute_slot;
            let end = position.end_slot();
            let leaders = schedule.slots();
            match decide(&obs, &thresholds, SLOT) {
                Decision::Ready => {
                    prop_assert!(!leaders.iter().any(|&l| l >= current && l < current + min));
                    prop_assert!(current + min <= end);
                    prop_assert!(delinquent < 5.0);
                }
                Decision::Wait { reason: WaitReason::LeaderSoon { next_leader_slot, next_window, window_in_slots, .. }, eta } => {
                    prop_assert!(next_leader_slot >= current && next_leader_slot < current + min);
                    prop_assert!(leaders.contains(&next_leader_slot));
                    prop_assert!(!leaders.iter().any(|&l| l >= current && l < next_leader_slot));
                    // The reported window is the first one that fits.
                    prop_assert_eq!(Some(next_window.start), first_free_start(current, end, min, leaders));
                    prop_assert!(next_window.len >= min);
                    prop_assert_eq!(eta, Some(window_in_slots));
                    prop_assert_eq!(window_in_slots, next_window.start - current);
                }
                Decision::Wait { reason: WaitReason::EpochAlmostComplete { .. }, .. } => {
                    prop_assert!(current + min > end);
                }
                Decision::Wait { reason: WaitReason::DelinquencyTooHigh { .. }, .. } => {
                    prop_assert!(delinquent >= 5.0);
                    prop_assert_eq!(first_free_start(current, end, min, leaders), Some(current));
                }
                Decision::Impossible(ImpossibleReason::NoIdleWindow { .. }) => {
                    prop_assert!(current + min <= end);
                    prop_assert!(leaders.iter().any(|&l| l >= current && l < end));
                    prop_assert_eq!(first_free_start(current, end, min, leaders), None);
                }
                Decision::Impossible(ImpossibleReason::WindowLongerThanEpoch { .. }) => {
                    prop_assert!(min > n);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }

        #[test]
        fn a_free_window_at_the_current_slot_is_ready_unless_delinquent(
            (first, n, indices, index, min, delinquent) in arb_case()
        ) {
            let epoch = first / n;
            let schedule = LeaderSlots::from_relative(epoch, first, indices);
            let position = EpochPosition { epoch, absolute_slot: first + index, slot_index: index, slots_in_epoch: n };
            let obs = Observation {
                position,
                leader_slots: &schedule,
                health: Some(Health::Ok),
                delinquent_stake_percent: Some(delinquent),
            };
            let free_now = first_free_start(position.absolute_slot, position.end_slot(), min, schedule.slots())
                == Some(position.absolute_slot);
            let ready = decide(&obs, &limits(min), SLOT) == Decision::Ready;
            prop_assert_eq!(ready, free_now && delinquent < 5.0);
        }
    }
}
