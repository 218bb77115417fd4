//! Votor's offences on constructed trails: each offence is found, the
//! fallback pairs Votor allows are not, an honest run is clean, and the
//! vote-history hook reports exactly the landed votes a history lacks.

use towerlock_audit::{
    check_events, check_str, votes_missing_from_history, Event, FinalizedEvent, HistoryVote,
    StoredVoteHistory, Violation, ViolationKind, VoteResult, VotorOffence, VotorVoteEvent,
};

const ALICE: &str = "A1ice";
const BOB: &str = "B0b";

fn vote(identity: &str, kind: &str, slot: u64, block: Option<&str>, result: &str) -> Event {
    Event::VotorVote(VotorVoteEvent {
        ts_ms: slot * 400,
        identity: identity.into(),
        vote_account: format!("{identity}-vote"),
        instance: "primary".into(),
        vote: kind.into(),
        slot,
        block_id: block.map(str::to_string),
        signature: format!("sig-{identity}-{kind}-{slot}"),
        result: VoteResult::from(result),
    })
}

fn ok(identity: &str, kind: &str, slot: u64, block: Option<&str>) -> Event {
    vote(identity, kind, slot, block, "ok")
}

fn kinds(events: Vec<Event>) -> Vec<ViolationKind> {
    check_events(events)
        .unwrap()
        .violations
        .iter()
        .map(Violation::kind)
        .collect()
}

/// An honest voter's slots: notarize + finalize, a skip, and the fallbacks
/// Votor allows (skip + notarize-fallback, notarize + skip-fallback).
fn honest() -> Vec<Event> {
    vec![
        ok(ALICE, "notarize", 1, Some("b1")),
        ok(BOB, "notarize", 1, Some("b1")),
        ok(ALICE, "finalize", 1, None),
        ok(BOB, "finalize", 1, None),
        Event::Finalized(FinalizedEvent {
            ts_ms: 400,
            slot: 1,
            block_id: "b1".into(),
            fast: false,
        }),
        ok(ALICE, "skip", 2, None),
        ok(ALICE, "notarize-fallback", 2, Some("b2")),
        ok(BOB, "notarize", 2, Some("b2")),
        ok(BOB, "skip-fallback", 2, None),
        // Repeats are no offence.
        ok(BOB, "notarize", 2, Some("b2")),
        ok(ALICE, "skip", 3, None),
        ok(BOB, "skip", 3, None),
    ]
}

#[test]
fn an_honest_run_is_clean() {
    let report = check_events(honest()).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.votor_votes, 11);
    assert_eq!(report.finalized_slot, Some(1));
    // And the same through the line format.
    let trail: String = honest().iter().map(|e| e.to_line() + "\n").collect();
    assert_eq!(check_str(&trail).unwrap(), report);
}

#[test]
fn notarize_and_skip_in_one_slot_is_an_offence_in_either_order() {
    let mut events = honest();
    events.push(ok(ALICE, "notarize", 3, Some("b3")));
    assert_eq!(kinds(events), [ViolationKind::NotarizeAndSkip]);
    let mut events = honest();
    events.push(ok(ALICE, "skip", 1, None));
    let report = check_events(events).unwrap();
    // Skipping a finalized slot is both offences.
    let mut found: Vec<ViolationKind> = report.violations.iter().map(Violation::kind).collect();
    found.sort();
    assert_eq!(
        found,
        [
            ViolationKind::NotarizeAndSkip,
            ViolationKind::FinalizeSkipped
        ]
    );
}

#[test]
fn notarizing_two_blocks_in_one_slot_is_an_offence() {
    let mut events = honest();
    events.push(ok(BOB, "notarize", 1, Some("b1-other")));
    assert_eq!(kinds(events), [ViolationKind::DoubleNotarize]);
}

#[test]
fn finalizing_a_skipped_slot_is_an_offence() {
    let mut events = honest();
    events.push(ok(BOB, "finalize", 2, None));
    assert_eq!(kinds(events), [ViolationKind::FinalizeSkipped]);
    let mut events = honest();
    events.push(ok(BOB, "finalize", 3, None));
    let report = check_events(events).unwrap();
    let Violation::Votor {
        identity,
        offence,
        slot,
        vote,
        earlier,
    } = &report.violations[0]
    else {
        panic!("{report}")
    };
    assert_eq!(
        (identity.as_str(), *offence, *slot),
        (BOB, VotorOffence::FinalizeSkipped, 3)
    );
    assert_eq!(
        (vote.vote.as_str(), earlier.vote.as_str()),
        ("finalize", "skip")
    );
    assert!(report.to_string().contains("finalize in a skipped slot"));
}

#[test]
fn a_refused_conflicting_vote_still_counts_but_an_unsigned_one_does_not() {
    let mut events = honest();
    events.push(vote(ALICE, "notarize", 3, Some("b3"), "ConflictingVote"));
    assert_eq!(kinds(events), [ViolationKind::NotarizeAndSkip]);
    let mut events = honest();
    events.push(vote(ALICE, "notarize", 3, Some("b3"), "BadSignature"));
    events.push(vote(ALICE, "notarize", 3, Some("b3"), "UnknownIdentity"));
    assert_eq!(kinds(events), []);
}

#[test]
fn a_trail_with_only_votor_votes_is_judged() {
    let report = check_events(vec![ok(ALICE, "skip", 1, None)]).unwrap();
    assert!(report.is_clean());
    assert!(check_events(vec![]).is_err());
}

fn stored(identity: &str, root: u64, votes: &[(&str, u64, Option<&str>)]) -> StoredVoteHistory {
    StoredVoteHistory {
        identity: identity.into(),
        root,
        votes: votes
            .iter()
            .map(|(kind, slot, block)| HistoryVote {
                kind: (*kind).into(),
                slot: *slot,
                block_id: block.map(str::to_string),
            })
            .collect(),
    }
}

#[test]
fn a_history_holding_every_landed_vote_reports_nothing() {
    let trail = honest();
    let history = stored(
        ALICE,
        1,
        &[
            ("notarize", 1, Some("b1")),
            ("finalize", 1, None),
            ("skip", 2, None),
            ("notarize-fallback", 2, Some("b2")),
            ("skip", 3, None),
        ],
    );
    assert_eq!(votes_missing_from_history(&history, &trail), []);
}

#[test]
fn a_landed_vote_the_history_lacks_is_reported() {
    let mut trail = honest();
    // Landed, but another block than the history's: the sender had not
    // stored this vote.
    trail.push(ok(ALICE, "notarize", 4, Some("b4-other")));
    // Refused votes, other voters' votes and votes above the history's
    // newest slot are not judged.
    trail.push(vote(ALICE, "notarize", 5, Some("x"), "ConflictingVote"));
    trail.push(ok(BOB, "notarize", 4, Some("b4")));
    trail.push(ok(ALICE, "notarize", 9, Some("b9")));
    let history = stored(
        ALICE,
        2,
        &[
            ("skip", 2, None),
            ("notarize-fallback", 2, Some("b2")),
            ("skip", 3, None),
            ("notarize", 4, Some("b4")),
            ("skip", 5, None),
        ],
    );
    let missing = votes_missing_from_history(&history, &trail);
    assert_eq!(missing.len(), 1, "{missing:?}");
    let Violation::NotInVoteHistory {
        vote,
        history_newest_slot,
        ..
    } = &missing[0]
    else {
        panic!("{missing:?}")
    };
    assert_eq!((vote.slot, vote.block_id.as_deref()), (4, Some("b4-other")));
    assert_eq!(vote.line, 13);
    assert_eq!(*history_newest_slot, 5);
    assert_eq!(missing[0].kind(), ViolationKind::NotInVoteHistory);
    // Slot 1 is below the root: pruned from the history, not judged; with
    // root 0 its votes are missing too.
    let unrooted = StoredVoteHistory { root: 0, ..history };
    assert_eq!(votes_missing_from_history(&unrooted, &trail).len(), 3);
}
