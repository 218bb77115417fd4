//! Trails built in code, each with one known fault (or none), and what the
//! checker must say about them.

use towerlock_audit::synth::{bank_hash, clean_run, SimTower, TrailBuilder, CLEAN_RUN_ACCOUNT};
use towerlock_audit::{
    check_events, check_str, AuditError, Report, RootProblem, Violation, ViolationKind,
};

const ACCOUNT: &str = "vote-account";

fn check(trail: &TrailBuilder) -> Report {
    check_events(trail.events().to_vec()).expect("the trail has votes")
}

fn kinds(report: &Report) -> Vec<ViolationKind> {
    report.violations.iter().map(Violation::kind).collect()
}

/// Votes for each of `slots` in turn with `tower`, from `instance`.
fn vote_each(
    trail: &mut TrailBuilder,
    tower: &mut SimTower,
    instance: &str,
    slots: impl IntoIterator<Item = u64>,
) {
    for slot in slots {
        assert!(
            tower.can_vote(trail.tree(), slot),
            "a correct voter may vote {slot}"
        );
        tower.record_vote(slot);
        trail.vote(ACCOUNT, instance, tower);
    }
}

/// 0 ─ 1 ─ 2 ─ 3         (fork X)
///      └─ 4 ─ 5          (fork Y)
fn two_forks() -> TrailBuilder {
    let mut trail = TrailBuilder::new();
    trail.chain(0, [1, 2, 3]).chain(1, [4, 5]);
    trail
}

#[test]
fn lockout_violation_is_reported_with_both_votes() {
    let mut trail = two_forks();
    let mut tower = SimTower::new();
    vote_each(&mut trail, &mut tower, "a", [1, 2, 3]);
    // Slot 3 is locked out through 5, slot 2 through 6: slot 4 is inside both.
    trail.vote_lockouts(ACCOUNT, "a", &[(1, 3), (4, 1)], None);
    let report = check(&trail);
    assert_eq!(kinds(&report), [ViolationKind::Lockout], "{report}");
    let Violation::Lockout {
        vote,
        earlier,
        locked_slot,
        confirmation_count,
        locked_out_through,
        conflicts,
        ..
    } = &report.violations[0]
    else {
        unreachable!()
    };
    assert_eq!(vote.slot, 4);
    assert_eq!(vote.signature, "sig4");
    assert_eq!(vote.line, 9);
    let earlier = earlier.as_ref().expect("an earlier vote holds the lock");
    assert_eq!(earlier.slot, 3);
    assert_eq!(
        (*locked_slot, *confirmation_count, *locked_out_through),
        (3, 1, 5)
    );
    assert_eq!(*conflicts, 2);
    assert!(!report.is_clean());
    assert!(report.to_string().contains("lockout violation"));
}

#[test]
fn switching_after_lockouts_expire_is_clean() {
    let mut trail = two_forks();
    trail.bank(9, 5);
    let mut tower = SimTower::new();
    vote_each(&mut trail, &mut tower, "a", [1, 2, 3]);
    // At 9, slot 3 (through 5) and slot 2 (through 6) have expired.
    vote_each(&mut trail, &mut tower, "a", [9]);
    let report = check(&trail);
    assert!(report.is_clean(), "{report}");
}

#[test]
fn vote_whose_own_lockouts_leave_its_fork_is_a_lockout_violation() {
    let mut trail = two_forks();
    trail.vote_lockouts(ACCOUNT, "a", &[(2, 2), (5, 1)], None);
    let report = check(&trail);
    assert_eq!(kinds(&report), [ViolationKind::Lockout], "{report}");
    let Violation::Lockout {
        earlier,
        locked_slot,
        ..
    } = &report.violations[0]
    else {
        unreachable!()
    };
    assert_eq!((earlier, *locked_slot), (&None, 2));
}

#[test]
fn equivocation_is_reported() {
    let mut trail = two_forks();
    let mut tower = SimTower::new();
    vote_each(&mut trail, &mut tower, "a", [1, 2]);
    // The same tower again, claiming another hash for slot 2.
    trail.vote_with(ACCOUNT, "b", &tower.lockouts, None, "forged", "ok");
    let report = check(&trail);
    assert_eq!(kinds(&report), [ViolationKind::Equivocation], "{report}");
    let Violation::Equivocation {
        vote,
        earlier,
        slot,
        hash,
        earlier_hash,
        ..
    } = &report.violations[0]
    else {
        unreachable!()
    };
    assert_eq!(
        (*slot, hash.as_str(), earlier_hash.as_str()),
        (2, "forged", "bank2")
    );
    assert_eq!(
        (vote.instance.as_str(), earlier.instance.as_str()),
        ("b", "a")
    );
}

#[test]
fn same_slot_on_different_forks_is_an_equivocation() {
    let mut trail = two_forks();
    trail.vote_lockouts(ACCOUNT, "a", &[(2, 2), (3, 1)], None);
    // Same last slot and hash, but lockouts from the other fork.
    trail.vote_lockouts(ACCOUNT, "b", &[(4, 2), (3, 1)], None);
    let report = check(&trail);
    assert!(
        kinds(&report).contains(&ViolationKind::Equivocation),
        "{report}"
    );
}

#[test]
fn replayed_identical_vote_is_clean() {
    // A paused primary wakes and sends a vote the new holder had loaded.
    let mut trail = two_forks();
    trail.chain(3, [6, 7]);
    let mut tower = SimTower::new();
    vote_each(&mut trail, &mut tower, "a", [1, 2, 3]);
    let a_tower = tower.clone();
    vote_each(&mut trail, &mut tower, "b", [6, 7]);
    trail.vote(ACCOUNT, "a", &a_tower);
    let report = check(&trail);
    assert!(report.is_clean(), "{report}");
}

fn rooted_chain(slots: u64) -> (TrailBuilder, SimTower) {
    let mut trail = TrailBuilder::new();
    trail.chain(0, 1..=slots);
    let mut tower = SimTower::new();
    vote_each(&mut trail, &mut tower, "a", 1..=slots - 5);
    assert!(tower.root.is_some());
    (trail, tower)
}

#[test]
fn root_rollback_is_reported() {
    let (mut trail, mut tower) = rooted_chain(45);
    let root = tower.root.unwrap();
    tower.record_vote(41);
    trail.vote_lockouts(ACCOUNT, "b", &tower.lockouts, Some(root - 1));
    let report = check(&trail);
    assert_eq!(kinds(&report), [ViolationKind::Root], "{report}");
    let Violation::Root {
        problem,
        earlier_root,
        root: new_root,
        ..
    } = &report.violations[0]
    else {
        unreachable!()
    };
    assert_eq!(*problem, RootProblem::MovedBackward);
    assert_eq!((*earlier_root, *new_root), (Some(root), Some(root - 1)));
}

#[test]
fn dropping_the_root_is_a_rollback() {
    let (mut trail, mut tower) = rooted_chain(45);
    tower.record_vote(41);
    trail.vote_lockouts(ACCOUNT, "b", &tower.lockouts, None);
    let report = check(&trail);
    assert_eq!(kinds(&report), [ViolationKind::Root], "{report}");
}

#[test]
fn vote_off_the_root_is_reported() {
    let (mut trail, tower) = rooted_chain(45);
    let root = tower.root.unwrap();
    // A fork from below the root, far above every lockout's reach... except
    // the root's, which never expires.
    trail.bank(1_000_000, root - 1);
    trail.vote_lockouts(ACCOUNT, "b", &[(1_000_000, 1)], Some(root));
    let report = check(&trail);
    assert!(kinds(&report).contains(&ViolationKind::Root), "{report}");
    assert!(report.violations.iter().any(|violation| matches!(
        violation,
        Violation::Root {
            problem: RootProblem::NotDescendant,
            ..
        }
    )));
}

#[test]
fn duplicate_block_is_reported() {
    let mut trail = two_forks();
    let mut tower = SimTower::new();
    vote_each(&mut trail, &mut tower, "a", [1, 2]);
    trail.block(3, "first", "a", false);
    trail.block(3, "second", "b", false);
    let report = check(&trail);
    assert_eq!(kinds(&report), [ViolationKind::DuplicateBlock], "{report}");
    let Violation::DuplicateBlock {
        slot,
        hashes,
        producers,
        flagged,
        ..
    } = &report.violations[0]
    else {
        unreachable!()
    };
    assert_eq!((*slot, *flagged), (3, false));
    assert_eq!(hashes, &["first", "second"]);
    assert_eq!(producers, &["a", "b"]);
}

#[test]
fn flagged_block_is_a_duplicate() {
    let mut trail = two_forks();
    trail.vote_lockouts(ACCOUNT, "a", &[(1, 1)], None);
    trail.block(2, "only", "a", true);
    trail.block(4, "fine", "a", false);
    trail.block(4, "fine", "a", false);
    let report = check(&trail);
    assert_eq!(kinds(&report), [ViolationKind::DuplicateBlock], "{report}");
}

#[test]
fn two_banks_for_one_slot_are_a_duplicate() {
    let mut trail = two_forks();
    trail.vote_lockouts(ACCOUNT, "a", &[(1, 1)], None);
    trail.bank_with_hash(3, 2, "other");
    let report = check(&trail);
    assert_eq!(kinds(&report), [ViolationKind::DuplicateBlock], "{report}");
}

#[test]
fn unknown_slot_is_reported_not_fatal() {
    let mut trail = two_forks();
    let mut tower = SimTower::new();
    vote_each(&mut trail, &mut tower, "a", [1, 2]);
    trail.vote_lockouts(ACCOUNT, "a", &[(1, 3), (2, 2), (99, 1)], None);
    // A later vote on a known slot is still checked.
    trail.vote_lockouts(ACCOUNT, "a", &[(1, 4), (2, 3), (3, 1)], None);
    let report = check(&trail);
    assert_eq!(kinds(&report), [ViolationKind::UnknownSlot], "{report}");
    let Violation::UnknownSlot { slot, .. } = &report.violations[0] else {
        unreachable!()
    };
    assert_eq!(*slot, 99);
}

#[test]
fn refused_votes_are_judged_too() {
    let mut trail = two_forks();
    let mut tower = SimTower::new();
    vote_each(&mut trail, &mut tower, "a", [1, 2, 3]);
    // A second instance breaks the lockout; the cluster refuses it, but the
    // vote left that instance all the same: the audit must see it.
    trail.vote_with(
        ACCOUNT,
        "b",
        &[(4, 1)],
        None,
        &bank_hash(4),
        "LockoutConflict",
    );
    trail.vote_with(ACCOUNT, "b", &[(3, 1)], None, "forged", "SlotHashMismatch");
    let report = check(&trail);
    let kinds: Vec<_> = report.violations.iter().map(Violation::kind).collect();
    assert!(kinds.contains(&ViolationKind::Lockout), "{report}");
    assert!(kinds.contains(&ViolationKind::Equivocation), "{report}");
    let account = report.account(ACCOUNT).unwrap();
    assert_eq!((account.votes_accepted, account.votes_rejected), (3, 2));
    assert_eq!(account.rejected_by_result["LockoutConflict"], 1);
    assert_eq!(account.instances["b"].rejected, 2);
    // Refused votes do not count as liveness.
    assert_eq!(account.slots_voted, 3);
}

#[test]
fn votes_the_voter_may_not_have_signed_prove_nothing() {
    let mut trail = two_forks();
    let mut tower = SimTower::new();
    vote_each(&mut trail, &mut tower, "a", [1, 2, 3]);
    for result in ["SignatureFailure", "MissingRequiredSignature"] {
        trail.vote_with(ACCOUNT, "x", &[(4, 1)], None, &bank_hash(4), result);
    }
    let report = check(&trail);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.account(ACCOUNT).unwrap().votes_rejected, 2);
}

#[test]
fn accounts_are_judged_separately() {
    let mut trail = two_forks();
    trail.vote_lockouts("one", "a", &[(2, 2), (3, 1)], None);
    trail.vote_lockouts("two", "b", &[(4, 1)], None);
    let report = check(&trail);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.accounts.len(), 2);
}

#[test]
fn long_clean_run_is_clean_with_plausible_liveness() {
    let trail = clean_run(2000, 7);
    let report = check(&trail);
    assert!(report.is_clean(), "{report}");
    assert!(report.banks > 1800, "{report}");
    let account = report.account(CLEAN_RUN_ACCOUNT).unwrap();
    assert!(account.votes_accepted > 1000, "{report}");
    assert_eq!(account.slots_voted, account.votes_accepted);
    assert!(account.votes_rejected > 0, "{report}");
    assert!(
        account.longest_gap >= 2 && account.longest_gap < 200,
        "{report}"
    );
    assert!(account.root.is_some_and(|root| root > 1500), "{report}");
    // Mostly prompt votes: close to 16 credits each.
    assert!(account.credits > 14 * account.votes_accepted, "{report}");
    assert!(
        account.credits <= 16 * account.votes_accepted + 16 * 31,
        "{report}"
    );
    assert_eq!(account.instances.len(), 2);
    assert!(account.instances["a"].accepted > 400 && account.instances["b"].accepted > 400);
}

/// Forks at slot 5: A votes on fork X (6..=15); then fork Y (16..) branches
/// from 5.
fn failover_tree() -> TrailBuilder {
    let mut trail = TrailBuilder::new();
    trail.chain(0, 1..=15);
    trail.chain(5, 16..=30);
    trail.chain(15, 31..=40);
    trail
}

#[test]
fn failover_continuing_from_the_tower_is_clean() {
    let mut trail = failover_tree();
    let mut tower = SimTower::new();
    vote_each(&mut trail, &mut tower, "a", 1..=15);
    // B loads A's tower and carries on along the same fork.
    vote_each(&mut trail, &mut tower, "b", 31..=40);
    let report = check(&trail);
    assert!(report.is_clean(), "{report}");
    let account = report.account(ACCOUNT).unwrap();
    assert_eq!(account.instances["a"].accepted, 15);
    assert_eq!(account.instances["b"].accepted, 10);
    assert_eq!(account.slots_voted, 25);
    assert_eq!(account.longest_gap, 16);
    assert_eq!(account.longest_gap_after, Some(15));
}

#[test]
fn failover_from_an_empty_tower_onto_another_fork_is_caught() {
    let mut trail = failover_tree();
    let mut tower = SimTower::new();
    vote_each(&mut trail, &mut tower, "a", 1..=15);
    // B starts with no tower and votes on fork Y inside A's lockouts.
    let mut empty = SimTower::new();
    vote_each(&mut trail, &mut empty, "b", 16..=20);
    let report = check(&trail);
    let lockouts: Vec<&Violation> = report
        .violations
        .iter()
        .filter(|violation| violation.kind() == ViolationKind::Lockout)
        .collect();
    assert_eq!(lockouts.len(), 5, "{report}");
    assert_eq!(kinds(&report), [ViolationKind::Lockout; 5], "{report}");
    let Violation::Lockout { vote, earlier, .. } = lockouts[0] else {
        unreachable!()
    };
    assert_eq!((vote.instance.as_str(), vote.slot), ("b", 16));
    assert_eq!(earlier.as_ref().unwrap().instance, "a");
}

#[test]
fn trail_without_votes_is_an_error() {
    let mut trail = two_forks();
    trail.block(1, "x", "a", false);
    let err = check_events(trail.into_events()).unwrap_err();
    assert!(matches!(err, AuditError::NoVotes { lines: 6 }), "{err}");
}

#[test]
fn malformed_line_is_named() {
    let mut text = two_forks().to_jsonl();
    text.push_str("\n{\"kind\":\"vote\",\"ts_ms\":1}\n");
    let err = check_str(&text).unwrap_err();
    assert!(
        matches!(err, AuditError::Malformed { line: 7, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("line 7"));
}

/// 0 ─ … ─ 10 ─ 11 ─ 12        (fork X)
///           └─ 20             (fork Y)
fn late_vote_tree() -> TrailBuilder {
    let mut trail = TrailBuilder::new();
    trail.chain(0, 1..=12).chain(10, [20]);
    trail
}

/// A node frozen after storing its vote for 12 (before sending it) is
/// taken over; the new holder, with that tower, switches to fork Y at 20
/// once 11 and 12 expired; the thawed node then sends its vote for 12. That
/// vote is an earlier state of the same tower, not a double vote: judged in
/// slot order it passes (in arrival order it looked like "vote for 12 while
/// 20 locked out").
#[test]
fn a_late_vote_of_an_earlier_state_of_the_same_tower_is_clean() {
    let mut trail = late_vote_tree();
    let mut tower = SimTower::new();
    vote_each(&mut trail, &mut tower, "a", 1..=11);
    tower.record_vote(12);
    let stored_not_sent = tower.clone();
    assert!(tower.can_vote(trail.tree(), 20), "12 and 11 expired by 20");
    tower.record_vote(20);
    trail.vote(ACCOUNT, "b", &tower);
    trail.vote(ACCOUNT, "a", &stored_not_sent);
    let report = check(&trail);
    assert!(report.is_clean(), "{report}");
}

/// Two towers voting on different forks within a lockout fail, whichever
/// vote arrives first.
#[test]
fn a_double_vote_fails_in_either_arrival_order() {
    let build = |fenced_first: bool| {
        let mut trail = late_vote_tree();
        trail.chain(12, [13, 14, 15]);
        let mut a = SimTower::new();
        let mut b = SimTower::new();
        b.record_vote(20);
        if !fenced_first {
            trail.vote(ACCOUNT, "b", &b);
        }
        vote_each(&mut trail, &mut a, "a", (1..=15).filter(|s| *s != 20));
        if fenced_first {
            trail.vote(ACCOUNT, "b", &b);
        }
        check(&trail)
    };
    for fenced_first in [true, false] {
        let report = build(fenced_first);
        assert!(
            kinds(&report).contains(&ViolationKind::Lockout),
            "arrival order {fenced_first}: {report}"
        );
    }
}
