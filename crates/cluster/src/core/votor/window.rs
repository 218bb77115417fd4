//! Leader windows: a leader produces [`WINDOW_SLOTS`] consecutive slots,
//! each block building on the one before. Only a window's first block needs
//! a parent made ready by certificates (ParentReady); the rest extend the
//! window's own chain.
//!
//! The cluster's [`LeaderSchedule`](crate::core::schedule::LeaderSchedule)
//! already draws one leader per rotation of
//! [`NUM_CONSECUTIVE_LEADER_SLOTS`] slots: in Alpenglow those rotations are
//! the windows, so the schedule by window is that schedule.

use std::ops::Range;

use crate::core::schedule::NUM_CONSECUTIVE_LEADER_SLOTS;

/// Slots per leader window (agave's `NUM_CONSECUTIVE_LEADER_SLOTS`).
pub const WINDOW_SLOTS: u64 = NUM_CONSECUTIVE_LEADER_SLOTS;

/// The first slot of `slot`'s window.
pub fn window_start(slot: u64) -> u64 {
    slot - slot % WINDOW_SLOTS
}

/// Whether `slot` opens its window (its block needs a ready parent).
pub fn is_window_start(slot: u64) -> bool {
    slot.is_multiple_of(WINDOW_SLOTS)
}

/// Every slot of `slot`'s window.
pub fn window_slots(slot: u64) -> Range<u64> {
    let start = window_start(slot);
    start..start + WINDOW_SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::schedule::LeaderSchedule;
    use solana_pubkey::Pubkey;

    #[test]
    fn windows_are_four_slots_with_one_leader() {
        assert_eq!(window_slots(0), 0..4);
        assert_eq!(window_slots(7), 4..8);
        assert!(is_window_start(8) && !is_window_start(9));
        let stakes: Vec<(Pubkey, u64)> = (1..=5u8)
            .map(|i| (Pubkey::new_from_array([i; 32]), u64::from(i)))
            .collect();
        let schedule = LeaderSchedule::new(&stakes, 0, 64, b"w");
        for slot in 0..64 {
            assert_eq!(
                schedule.leader_at(slot),
                schedule.leader_at(window_start(slot))
            );
        }
    }
}
