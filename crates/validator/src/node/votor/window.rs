//! Leader windows and their timeouts (SIMD-0326): a leader has
//! [`LEADER_WINDOW`] consecutive slots; once a window starts, its slot `i`
//! (0-based) times out at the start + Δtimeout + (i + 1)·Δblock, and a slot
//! without a vote then is skipped together with the rest of its window.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use towerlock_tower::Slot;

/// Consecutive slots of one leader (agave's `NUM_CONSECUTIVE_LEADER_SLOTS`).
pub const LEADER_WINDOW: u64 = 4;

/// The first slot of `slot`'s leader window.
pub fn window_start(slot: Slot) -> Slot {
    slot - slot % LEADER_WINDOW
}

/// The slots of `slot`'s leader window.
pub fn window_slots(slot: Slot) -> RangeInclusive<Slot> {
    let start = window_start(slot);
    start..=start + LEADER_WINDOW - 1
}

/// Whether `slot` opens its leader window: its block needs a ready parent,
/// the others build on the block before them.
pub fn is_first_in_window(slot: Slot) -> bool {
    slot.is_multiple_of(LEADER_WINDOW)
}

/// The protocol's delays, configured by the caller (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Δtimeout: how long a window waits for its first block.
    pub timeout_ms: u64,
    /// Δblock: the time of one slot.
    pub block_ms: u64,
}

impl Timing {
    /// When `slot` times out, its window having started at `started_ms`.
    pub fn deadline(&self, started_ms: u64, slot: Slot) -> u64 {
        let index = slot - window_start(slot);
        started_ms + self.timeout_ms + (index + 1) * self.block_ms
    }
}

/// The windows whose timeouts run: window start → when it started.
#[derive(Debug, Default)]
pub(super) struct WindowClocks {
    started: BTreeMap<Slot, u64>,
}

impl WindowClocks {
    /// Starts the clock of `slot`'s window, unless it runs already.
    pub(super) fn start(&mut self, slot: Slot, now_ms: u64) {
        self.started.entry(window_start(slot)).or_insert(now_ms);
    }

    /// The slots whose timeout has passed, in every running window.
    pub(super) fn expired(&self, timing: &Timing, now_ms: u64) -> Vec<Slot> {
        self.started
            .iter()
            .flat_map(|(&start, &started)| {
                window_slots(start).filter(move |&slot| timing.deadline(started, slot) <= now_ms)
            })
            .collect()
    }

    /// Keeps the clocks of the windows `running` says still need timeouts.
    pub(super) fn retain(&mut self, mut running: impl FnMut(Slot) -> bool) {
        self.started.retain(|&start, _| running(start));
    }
}
