//! Property tests: what a correct TowerBFT voter sends on any fork tree is
//! clean, and leaving its fork right after a vote is always caught.

use proptest::prelude::*;
use towerlock_audit::synth::{SimTower, TrailBuilder};
use towerlock_audit::{check_events, AuditError, ViolationKind};

const ACCOUNTS: [&str; 2] = ["vote-one", "vote-two"];

/// One slot of a random run.
#[derive(Debug, Clone)]
struct Step {
    /// Slots skipped before this one.
    skip: u64,
    /// The parent: how many banks back from the newest.
    parent_back: usize,
    /// For each account: vote for the bank this many back from the newest.
    picks: [Option<usize>; 2],
    /// Hand the first account's tower to the other instance after this slot.
    fail_over: bool,
    /// Add a vote the cluster rejected, with nonsense lockouts.
    rejected_noise: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![4 => Just(0u64), 1 => 1u64..4],
        prop_oneof![6 => Just(0usize), 3 => 1usize..6],
        [
            proptest::option::weighted(0.8, 0usize..4),
            proptest::option::weighted(0.5, 0usize..3),
        ],
        proptest::bool::weighted(0.03),
        proptest::bool::weighted(0.05),
    )
        .prop_map(
            |(skip, parent_back, picks, fail_over, rejected_noise)| Step {
                skip,
                parent_back,
                picks,
                fail_over,
                rejected_noise,
            },
        )
}

/// Builds the trail the steps describe; returns it with the first account's
/// final tower.
fn run(steps: &[Step]) -> (TrailBuilder, SimTower) {
    let mut trail = TrailBuilder::new();
    let mut towers = [SimTower::new(), SimTower::new()];
    let mut banks: Vec<u64> = Vec::new();
    let mut slot = 0;
    let mut instance = "a";
    for step in steps {
        // Even slots only, so that tests can add a bank at any odd slot.
        slot += 2 * (1 + step.skip);
        let parent = banks
            .len()
            .checked_sub(1 + step.parent_back)
            .map_or_else(|| banks.first().copied().unwrap_or(0), |index| banks[index]);
        trail.bank(slot, parent);
        banks.push(slot);
        for (account, pick) in step.picks.iter().enumerate() {
            let Some(back) = pick else { continue };
            let target = banks[banks.len().saturating_sub(1 + back)];
            let tower = &mut towers[account];
            if tower.can_vote(trail.tree(), target) {
                tower.record_vote(target);
                let sender = if account == 0 { instance } else { "other" };
                trail.vote(ACCOUNTS[account], sender, tower);
            }
        }
        if step.rejected_noise {
            trail.vote_with(
                ACCOUNTS[0],
                "rogue",
                &[(slot, 3), (parent, 1)],
                Some(slot + 7),
                "forged",
                // Forged: not signed by the voter, so it binds nobody.
                "SignatureFailure",
            );
        }
        if step.fail_over {
            instance = if instance == "a" { "b" } else { "a" };
        }
    }
    let [first, _] = towers;
    (trail, first)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn correct_voters_are_clean(steps in proptest::collection::vec(step(), 1..300)) {
        let (trail, _) = run(&steps);
        match check_events(trail.into_events()) {
            Ok(report) => prop_assert!(report.is_clean(), "{}", report),
            Err(AuditError::NoVotes { .. }) => {}
            Err(err) => return Err(TestCaseError::fail(err.to_string())),
        }
    }

    #[test]
    fn leaving_the_fork_right_after_a_vote_is_caught(
        steps in proptest::collection::vec(step(), 1..300),
    ) {
        let (mut trail, tower) = run(&steps);
        let Some(last) = tower.last_slot() else {
            return Ok(());
        };
        // A sibling of the last voted slot, one slot later: still inside its
        // lockout (through last + 2 at least), but on another fork.
        let parent = trail.tree().parent(last).unwrap();
        let sibling = last + 1;
        trail.bank(sibling, parent);
        trail.vote_lockouts(ACCOUNTS[0], "rogue", &[(sibling, 1)], None);
        let report = check_events(trail.into_events()).unwrap();
        prop_assert!(
            report.violations.iter().any(|violation| violation.kind() == ViolationKind::Lockout),
            "{}", report
        );
    }
}
