//! The vote program's TowerSync processing, as agave's `programs/vote` does it.
//!
//! Pure functions over [`VoteStateV4`]: the checks against SlotHashes
//! (`check_and_filter_proposed_vote_state`), against the account's current
//! state (`process_new_vote_state`), timely vote credits and timestamps. The
//! errors are the vote program's own [`VoteError`]s.

use std::cmp::Ordering;
use std::collections::VecDeque;

use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_vote_interface::error::VoteError;
use solana_vote_interface::state::{
    BlockTimestamp, LandedVote, Lockout, TowerSync, VoteStateV4, MAX_EPOCH_CREDITS_HISTORY,
    MAX_LOCKOUT_HISTORY, VOTE_CREDITS_GRACE_SLOTS, VOTE_CREDITS_MAXIMUM_PER_SLOT,
};

/// Why the vote instruction failed: an `InstructionError` of the runtime, or
/// one of the vote program's `VoteError`s (`InstructionError::Custom(code)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstructionFailure {
    /// The vote account is not owned by the vote program (not a vote account).
    #[error("invalid account owner")]
    InvalidAccountOwner,
    /// The instruction data did not decode, or is a deprecated vote instruction.
    #[error("invalid instruction data")]
    InvalidInstructionData,
    /// The instruction names fewer accounts than it needs.
    #[error("insufficient account keys for instruction")]
    NotEnoughAccountKeys,
    /// No authorized voter exists for the current epoch.
    #[error("invalid account data for instruction")]
    InvalidAccountData,
    /// The authorized voter did not sign.
    #[error("missing required signature for instruction")]
    MissingRequiredSignature,
    /// The vote account is not passed writable.
    #[error("instruction attempted to modify a read-only account")]
    ReadonlyDataModified,
    /// The vote program rejected the vote.
    #[error("custom program error: {:#x}", vote_error_code(.0))]
    Vote(VoteError),
}

impl InstructionFailure {
    /// The name an operator greps for: the `VoteError` or `InstructionError` variant.
    pub fn name(&self) -> String {
        match self {
            Self::Vote(error) => format!("{error:?}"),
            other => format!("{other:?}"),
        }
    }

    /// The `InstructionError` as Solana's RPC prints it in `err` JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Vote(error) => serde_json::json!({ "Custom": vote_error_code(error) }),
            other => serde_json::Value::String(format!("{other:?}")),
        }
    }
}

/// `VoteError` as its `InstructionError::Custom` code.
pub fn vote_error_code(error: &VoteError) -> u32 {
    use VoteError::*;
    match error {
        VoteTooOld => 0,
        SlotsMismatch => 1,
        SlotHashMismatch => 2,
        EmptySlots => 3,
        TimestampTooOld => 4,
        TooSoonToReauthorize => 5,
        LockoutConflict => 6,
        NewVoteStateLockoutMismatch => 7,
        SlotsNotOrdered => 8,
        ConfirmationsNotOrdered => 9,
        ZeroConfirmations => 10,
        ConfirmationTooLarge => 11,
        RootRollBack => 12,
        ConfirmationRollBack => 13,
        SlotSmallerThanRoot => 14,
        TooManyVotes => 15,
        VotesTooOldAllFiltered => 16,
        RootOnDifferentFork => 17,
        ActiveVoteAccountClose => 18,
        CommissionUpdateTooLate => 19,
        _ => 20,
    }
}

/// What the runtime hands the vote program besides the account and the
/// instruction: the SlotHashes sysvar of the bank that processes the vote
/// (ancestors, newest first) and the Clock.
#[derive(Debug, Clone, Copy)]
pub struct VoteContext<'a> {
    pub slot_hashes: &'a [(u64, Hash)],
    pub epoch: u64,
    pub slot: u64,
}

/// Processes a TowerSync for `state`, signed by `signers`; returns the new state.
pub fn process_tower_sync(
    state: &VoteStateV4,
    tower_sync: &TowerSync,
    signers: &[Pubkey],
    ctx: VoteContext<'_>,
) -> Result<VoteStateV4, InstructionFailure> {
    let voter = state
        .authorized_voters
        .get_authorized_voter(ctx.epoch)
        .ok_or(InstructionFailure::InvalidAccountData)?;
    if !signers.contains(&voter) {
        return Err(InstructionFailure::MissingRequiredSignature);
    }
    let mut new_state = state.clone();
    let mut lockouts = tower_sync.lockouts.clone();
    let mut root = tower_sync.root;
    check_and_filter_proposed_vote_state(
        &new_state,
        &mut lockouts,
        &mut root,
        tower_sync.hash,
        ctx.slot_hashes,
    )
    .map_err(InstructionFailure::Vote)?;
    process_new_vote_state(
        &mut new_state,
        lockouts.into_iter().map(LandedVote::from).collect(),
        root,
        tower_sync.timestamp,
        ctx.epoch,
        ctx.slot,
    )
    .map_err(InstructionFailure::Vote)?;
    Ok(new_state)
}

fn contains_slot(state: &VoteStateV4, slot: u64) -> bool {
    state
        .votes
        .binary_search_by(|vote| vote.slot().cmp(&slot))
        .is_ok()
}

/// Reference B.3: the proposal against SlotHashes.
pub fn check_and_filter_proposed_vote_state(
    state: &VoteStateV4,
    proposed_lockouts: &mut VecDeque<Lockout>,
    proposed_root: &mut Option<u64>,
    proposed_hash: Hash,
    slot_hashes: &[(u64, Hash)],
) -> Result<(), VoteError> {
    let (last_proposed_slot, earliest_slot_hash_in_history) =
        check_proposal_is_recent(state, proposed_lockouts, slot_hashes)?;
    if let Some(root) = *proposed_root {
        if root < earliest_slot_hash_in_history {
            // The newest of our own votes at or below the proposed root.
            *proposed_root = state
                .votes
                .iter()
                .rev()
                .find(|vote| vote.slot() <= root)
                .map(|vote| vote.slot())
                .or(state.root_slot);
        }
    }
    let (slot_hashes_index, to_filter) = match_slot_hashes(
        state,
        proposed_lockouts,
        *proposed_root,
        slot_hashes,
        earliest_slot_hash_in_history,
    )?;
    let (matched_slot, matched_hash) = slot_hashes[slot_hashes_index];
    if matched_slot != last_proposed_slot {
        return Err(VoteError::AssertionFailed);
    }
    if matched_hash != proposed_hash {
        return Err(VoteError::SlotHashMismatch);
    }
    let mut index = 0;
    proposed_lockouts.retain(|_| {
        let keep = !to_filter.contains(&index);
        index += 1;
        keep
    });
    Ok(())
}

/// The proposal is not empty, newer than the account's last vote and not
/// older than SlotHashes. Returns its last slot and SlotHashes' earliest.
fn check_proposal_is_recent(
    state: &VoteStateV4,
    proposed_lockouts: &VecDeque<Lockout>,
    slot_hashes: &[(u64, Hash)],
) -> Result<(u64, u64), VoteError> {
    let Some(last_proposed_slot) = proposed_lockouts.back().map(|l| l.slot()) else {
        return Err(VoteError::EmptySlots);
    };
    if let Some(last_vote_slot) = state.votes.back().map(|v| v.slot()) {
        if last_proposed_slot <= last_vote_slot {
            return Err(VoteError::VoteTooOld);
        }
    }
    let Some(&(earliest_slot_hash_in_history, _)) = slot_hashes.last() else {
        return Err(VoteError::SlotsMismatch);
    };
    if last_proposed_slot < earliest_slot_hash_in_history {
        return Err(VoteError::VoteTooOld);
    }
    Ok((last_proposed_slot, earliest_slot_hash_in_history))
}

/// Walks the root and the proposed slots (oldest first) against SlotHashes
/// (newest first, so from its end): every slot must be in it, except slots
/// older than the whole history, which are filtered out unless the account
/// voted for them. Returns the index in `slot_hashes` of the last proposed
/// slot and the indices of the proposed lockouts to filter out.
fn match_slot_hashes(
    state: &VoteStateV4,
    proposed_lockouts: &VecDeque<Lockout>,
    proposed_root: Option<u64>,
    slot_hashes: &[(u64, Hash)],
    earliest_slot_hash_in_history: u64,
) -> Result<(usize, Vec<usize>), VoteError> {
    let mut root_to_check = proposed_root;
    let mut proposed_index = 0;
    let mut slot_hashes_index = slot_hashes.len();
    let mut to_filter = vec![];
    while proposed_index < proposed_lockouts.len() && slot_hashes_index > 0 {
        let proposed_vote_slot = match root_to_check {
            Some(root) => root,
            None => proposed_lockouts[proposed_index].slot(),
        };
        if root_to_check.is_none()
            && proposed_index > 0
            && proposed_vote_slot <= proposed_lockouts[proposed_index - 1].slot()
        {
            return Err(VoteError::SlotsNotOrdered);
        }
        let ancestor_slot = slot_hashes[slot_hashes_index - 1].0;
        match proposed_vote_slot.cmp(&ancestor_slot) {
            Ordering::Less => {
                if slot_hashes_index == slot_hashes.len() {
                    // Older than the whole history.
                    if proposed_vote_slot >= earliest_slot_hash_in_history {
                        return Err(VoteError::AssertionFailed);
                    }
                    if !contains_slot(state, proposed_vote_slot) && root_to_check.is_none() {
                        to_filter.push(proposed_index);
                    }
                    if root_to_check.is_some() {
                        root_to_check = None;
                    } else {
                        proposed_index += 1;
                    }
                    continue;
                } else if root_to_check.is_some() {
                    return Err(VoteError::RootOnDifferentFork);
                } else {
                    return Err(VoteError::SlotsMismatch);
                }
            }
            Ordering::Greater => {
                slot_hashes_index -= 1;
                continue;
            }
            Ordering::Equal => {
                if root_to_check.is_some() {
                    root_to_check = None;
                } else {
                    proposed_index += 1;
                    slot_hashes_index -= 1;
                }
            }
        }
    }
    if proposed_index != proposed_lockouts.len() {
        return Err(VoteError::SlotsMismatch);
    }
    Ok((slot_hashes_index, to_filter))
}

/// Credits for the vote at `index` once it is rooted (timely vote credits).
pub fn credits_for_vote_at_index(state: &VoteStateV4, index: usize) -> u64 {
    let latency = state.votes.get(index).map_or(0, |v| v.latency);
    credits_for_latency(latency)
}

/// Reference B.7: latency 0 (legacy) → 1; 1–2 → 16; then one less per slot; ≥ 17 → 1.
pub fn credits_for_latency(latency: u8) -> u64 {
    if latency == 0 {
        return 1;
    }
    match latency.checked_sub(VOTE_CREDITS_GRACE_SLOTS) {
        None | Some(0) => VOTE_CREDITS_MAXIMUM_PER_SLOT as u64,
        Some(diff) => match VOTE_CREDITS_MAXIMUM_PER_SLOT.checked_sub(diff) {
            None | Some(0) => 1,
            Some(credits) => credits as u64,
        },
    }
}

/// Vote latency as the vote program records it.
pub fn compute_vote_latency(voted_for_slot: u64, current_slot: u64) -> u8 {
    std::cmp::min(current_slot.saturating_sub(voted_for_slot), u8::MAX as u64) as u8
}

/// Adds `credits` to the epoch's entry of the credit history.
pub fn increment_credits(state: &mut VoteStateV4, epoch: u64, credits: u64) {
    match state.epoch_credits.last().copied() {
        None => state.epoch_credits.push((epoch, 0, 0)),
        Some((last_epoch, credits_so_far, prev_credits)) if last_epoch != epoch => {
            if credits_so_far != prev_credits {
                state
                    .epoch_credits
                    .push((epoch, credits_so_far, credits_so_far));
            } else if let Some(last) = state.epoch_credits.last_mut() {
                last.0 = epoch;
            }
            if state.epoch_credits.len() > MAX_EPOCH_CREDITS_HISTORY {
                state.epoch_credits.remove(0);
            }
        }
        Some(_) => {}
    }
    if let Some(last) = state.epoch_credits.last_mut() {
        last.1 = last.1.saturating_add(credits);
    }
}

fn process_timestamp(state: &mut VoteStateV4, slot: u64, timestamp: i64) -> Result<(), VoteError> {
    let last = &state.last_timestamp;
    if (slot < last.slot || timestamp < last.timestamp)
        || (slot == last.slot && (BlockTimestamp { slot, timestamp }) != *last && last.slot != 0)
    {
        return Err(VoteError::TimestampTooOld);
    }
    state.last_timestamp = BlockTimestamp { slot, timestamp };
    Ok(())
}

/// Reference B.4: the proposal against the account's current state.
pub fn process_new_vote_state(
    state: &mut VoteStateV4,
    mut new_state: VecDeque<LandedVote>,
    new_root: Option<u64>,
    timestamp: Option<i64>,
    epoch: u64,
    current_slot: u64,
) -> Result<(), VoteError> {
    check_new_vote_state(state, &new_state, new_root)?;

    // Credits for the account's votes the new root covers.
    let rooted = new_root.map_or(0, |new_root| {
        state
            .votes
            .iter()
            .take_while(|vote| vote.slot() <= new_root)
            .count()
    });
    let earned_credits: u64 = (0..rooted)
        .map(|index| credits_for_vote_at_index(state, index))
        .sum();
    carry_over_latencies(state, &mut new_state, rooted)?;
    for new_vote in new_state.iter_mut() {
        if new_vote.latency == 0 {
            new_vote.latency = compute_vote_latency(new_vote.slot(), current_slot);
        }
    }
    if state.root_slot != new_root {
        increment_credits(state, epoch, earned_credits);
    }
    if let Some(timestamp) = timestamp {
        let last_slot = new_state.back().map(|v| v.slot()).unwrap_or_default();
        process_timestamp(state, last_slot, timestamp)?;
    }
    state.root_slot = new_root;
    state.votes = new_state;
    Ok(())
}

/// The new state on its own and against the current root: not empty, not
/// too long, no root rollback, confirmations and slots ordered and
/// consistent with their lockouts.
fn check_new_vote_state(
    state: &VoteStateV4,
    new_state: &VecDeque<LandedVote>,
    new_root: Option<u64>,
) -> Result<(), VoteError> {
    if new_state.is_empty() {
        // All proposed slots were older than SlotHashes and unknown.
        return Err(VoteError::VotesTooOldAllFiltered);
    }
    if new_state.len() > MAX_LOCKOUT_HISTORY {
        return Err(VoteError::TooManyVotes);
    }
    match (new_root, state.root_slot) {
        (Some(new_root), Some(current_root)) if new_root < current_root => {
            return Err(VoteError::RootRollBack)
        }
        (None, Some(_)) => return Err(VoteError::RootRollBack),
        _ => {}
    }
    let mut previous: Option<&LandedVote> = None;
    for vote in new_state {
        if vote.confirmation_count() == 0 {
            return Err(VoteError::ZeroConfirmations);
        } else if vote.confirmation_count() > MAX_LOCKOUT_HISTORY as u32 {
            return Err(VoteError::ConfirmationTooLarge);
        } else if let Some(new_root) = new_root {
            if vote.slot() <= new_root && new_root != 0 {
                return Err(VoteError::SlotSmallerThanRoot);
            }
        }
        if let Some(previous) = previous {
            if previous.slot() >= vote.slot() {
                return Err(VoteError::SlotsNotOrdered);
            } else if previous.confirmation_count() <= vote.confirmation_count() {
                return Err(VoteError::ConfirmationsNotOrdered);
            } else if vote.slot() > previous.lockout.last_locked_out_slot() {
                return Err(VoteError::NewVoteStateLockoutMismatch);
            }
        }
        previous = Some(vote);
    }
    Ok(())
}

/// Walks the account's unrooted votes (from `current_index`) and the new
/// state together: a dropped vote must no longer lock out the new one, a
/// kept vote may not lose confirmations and keeps its latency.
fn carry_over_latencies(
    state: &VoteStateV4,
    new_state: &mut VecDeque<LandedVote>,
    mut current_index: usize,
) -> Result<(), VoteError> {
    let mut new_index = 0;
    while current_index < state.votes.len() && new_index < new_state.len() {
        let current_vote = &state.votes[current_index];
        let new_vote = &mut new_state[new_index];
        match current_vote.slot().cmp(&new_vote.slot()) {
            Ordering::Less => {
                if current_vote.lockout.last_locked_out_slot() >= new_vote.slot() {
                    return Err(VoteError::LockoutConflict);
                }
                current_index += 1;
            }
            Ordering::Equal => {
                if new_vote.confirmation_count() < current_vote.confirmation_count() {
                    return Err(VoteError::ConfirmationRollBack);
                }
                new_vote.latency = current_vote.latency;
                current_index += 1;
                new_index += 1;
            }
            Ordering::Greater => new_index += 1,
        }
    }
    Ok(())
}

/// A fresh vote account state (what `InitializeAccount` writes).
pub fn new_vote_state(
    vote_pubkey: &Pubkey,
    node: Pubkey,
    voter: Pubkey,
    withdrawer: Pubkey,
    commission_percent: u8,
) -> VoteStateV4 {
    VoteStateV4 {
        node_pubkey: node,
        authorized_withdrawer: withdrawer,
        inflation_rewards_collector: *vote_pubkey,
        block_revenue_collector: node,
        inflation_rewards_commission_bps: u16::from(commission_percent) * 100,
        block_revenue_commission_bps: 10_000,
        authorized_voters: solana_vote_interface::authorized_voters::AuthorizedVoters::new(
            0, voter,
        ),
        ..VoteStateV4::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(slot: u64) -> Hash {
        Hash::new_from_array([slot as u8 + 1; 32])
    }

    /// SlotHashes of a chain 0..=tip (newest first).
    fn chain(tip: u64) -> Vec<(u64, Hash)> {
        (0..=tip).rev().map(|s| (s, h(s))).collect()
    }

    fn sync(lockouts: &[(u64, u32)], root: Option<u64>) -> TowerSync {
        let mut t = TowerSync::from(lockouts.to_vec());
        t.root = root;
        t.hash = h(lockouts.last().unwrap().0);
        t
    }

    fn state() -> (VoteStateV4, Pubkey) {
        let voter = Pubkey::new_from_array([7; 32]);
        let vote = Pubkey::new_from_array([8; 32]);
        (new_vote_state(&vote, voter, voter, voter, 0), voter)
    }

    fn ctx(slot_hashes: &[(u64, Hash)], slot: u64) -> VoteContext<'_> {
        VoteContext {
            slot_hashes,
            epoch: 0,
            slot,
        }
    }

    #[test]
    fn accepts_a_growing_tower_and_pays_timely_credits_at_root() {
        let (mut s, voter) = state();
        let hashes = chain(100);
        let mut tower: Vec<(u64, u32)> = vec![];
        let mut root = None;
        for slot in 1..=40u64 {
            // Simple tower: everything doubles; root pops off at 31.
            tower.push((slot, 0));
            let len = tower.len();
            for (i, entry) in tower.iter_mut().enumerate() {
                entry.1 = (len - i) as u32;
            }
            if tower.len() > 31 {
                root = Some(tower.remove(0).0);
            }
            s = process_tower_sync(&s, &sync(&tower, root), &[voter], ctx(&hashes, slot + 1))
                .unwrap();
        }
        assert_eq!(s.root_slot, Some(9));
        // Nine rooted votes, each landed one slot late: 16 credits each.
        assert_eq!(s.epoch_credits, vec![(0, 9 * 16, 0)]);
    }

    #[test]
    fn rejects_unauthorized_voter() {
        let (s, _) = state();
        let err = process_tower_sync(
            &s,
            &sync(&[(3, 1)], None),
            &[Pubkey::new_from_array([9; 32])],
            ctx(&chain(5), 6),
        )
        .unwrap_err();
        assert_eq!(err, InstructionFailure::MissingRequiredSignature);
    }

    #[test]
    fn rejects_unknown_slot_and_wrong_hash() {
        let (s, voter) = state();
        // Slot 7 is not an ancestor (chain ends at 5, history has gaps at 3).
        let hashes: Vec<_> = chain(5).into_iter().filter(|(s, _)| *s != 3).collect();
        let err = process_tower_sync(&s, &sync(&[(3, 1)], None), &[voter], ctx(&hashes, 6));
        assert_eq!(err, Err(InstructionFailure::Vote(VoteError::SlotsMismatch)));
        let mut wrong = sync(&[(4, 1)], None);
        wrong.hash = Hash::new_from_array([0xee; 32]);
        let err = process_tower_sync(&s, &wrong, &[voter], ctx(&hashes, 6));
        assert_eq!(
            err,
            Err(InstructionFailure::Vote(VoteError::SlotHashMismatch))
        );
    }

    #[test]
    fn rejects_lockout_conflict_and_root_rollback() {
        let (s, voter) = state();
        let hashes = chain(20);
        let s = process_tower_sync(
            &s,
            &sync(&[(2, 3), (3, 2), (4, 1)], Some(1)),
            &[voter],
            ctx(&hashes, 5),
        )
        .unwrap();
        // Dropping slot 3 (locked out until 3 + 4 = 7) for a vote on 6.
        let err = process_tower_sync(
            &s,
            &sync(&[(2, 3), (6, 1)], Some(1)),
            &[voter],
            ctx(&hashes, 7),
        );
        assert_eq!(
            err,
            Err(InstructionFailure::Vote(VoteError::LockoutConflict))
        );
        let err = process_tower_sync(
            &s,
            &sync(&[(2, 4), (3, 3), (4, 2), (5, 1)], None),
            &[voter],
            ctx(&hashes, 7),
        );
        assert_eq!(err, Err(InstructionFailure::Vote(VoteError::RootRollBack)));
    }

    #[test]
    fn rejects_vote_too_old_for_a_replayed_vote() {
        let (s, voter) = state();
        let hashes = chain(10);
        let s = process_tower_sync(&s, &sync(&[(5, 1)], None), &[voter], ctx(&hashes, 6)).unwrap();
        let err = process_tower_sync(&s, &sync(&[(5, 1)], None), &[voter], ctx(&hashes, 7));
        assert_eq!(err, Err(InstructionFailure::Vote(VoteError::VoteTooOld)));
    }

    #[test]
    fn credit_table() {
        assert_eq!(credits_for_latency(0), 1);
        assert_eq!(credits_for_latency(1), 16);
        assert_eq!(credits_for_latency(2), 16);
        assert_eq!(credits_for_latency(3), 15);
        assert_eq!(credits_for_latency(16), 2);
        assert_eq!(credits_for_latency(17), 1);
        assert_eq!(credits_for_latency(255), 1);
    }

    proptest::proptest! {
        /// A TowerBFT tower voting along one chain (with gaps) is always
        /// accepted, and the account ends up holding exactly that tower.
        #[test]
        fn towers_on_one_chain_are_accepted(gaps in proptest::collection::vec(1u64..5, 1..80)) {
            let (mut s, voter) = state();
            let mut tower = crate::core::synthetic::SyntheticValidator::new(voter, voter, 1);
            let mut slot = 0;
            let mut chain = vec![(0, h(0))];
            for gap in gaps {
                slot += gap;
                chain.insert(0, (slot, h(slot)));
                tower.record_vote(slot, 0, 0);
                let lockouts: Vec<(u64, u32)> = tower
                    .tower
                    .iter()
                    .map(|l| (l.slot(), l.confirmation_count()))
                    .collect();
                let mut t = sync(&lockouts, tower.root);
                t.hash = h(slot);
                s = process_tower_sync(&s, &t, &[voter], ctx(&chain, slot + 1)).unwrap();
                let held: Vec<(u64, u32)> = s.votes.iter().map(|v| (v.slot(), v.confirmation_count())).collect();
                proptest::prop_assert_eq!(held, lockouts);
                proptest::prop_assert_eq!(s.root_slot, tower.root);
            }
        }
    }
}
