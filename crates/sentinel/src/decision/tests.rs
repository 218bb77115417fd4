//! Hand-made checks, and generated traces of long runs.

use super::*;
use proptest::prelude::*;

const SLOT_MS: u64 = 400;

/// A check at `at_ms` that saw `slot` and `last_vote`; everything else
/// healthy and fenced.
fn check(at_ms: u64, slot: u64, last_vote: u64) -> Observation {
    Observation {
        at_ms,
        cluster_slot: Some(slot),
        vote: Some(VoteView {
            last_vote,
            delinquent: false,
        }),
        in_gossip: Some(true),
        primary_health: None,
        local_health: Health::Ok,
        local_active: false,
        fence: Some(FenceView {
            holder: Some("primary".into()),
            tower_last_vote: Some(last_vote),
        }),
        next_leader_slot: None,
    }
}

/// Feeds checks one slot apart from slot 100: the vote follows the slot
/// (lag 1) until `stop`, then stays. Returns the decisions.
fn run(
    detector: &mut Detector,
    checks: u64,
    stop: Option<u64>,
    tweak: impl Fn(&mut Observation),
) -> Vec<Decision> {
    (0..checks)
        .map(|i| {
            let slot = 100 + i;
            let vote = stop.map_or(slot - 1, |s| (slot - 1).min(s));
            let mut obs = check(i * SLOT_MS, slot, vote);
            tweak(&mut obs);
            detector.observe(&obs)
        })
        .collect()
}

fn promotes(d: &Decision) -> bool {
    matches!(d, Decision::Promote { .. })
}

fn first_promote(decisions: &[Decision]) -> Option<usize> {
    decisions
        .iter()
        .position(|d| matches!(d, Decision::Promote { .. }))
}

#[test]
fn a_voting_primary_is_healthy() {
    let mut d = Detector::new(Params::default());
    let decisions = run(&mut d, 50, None, |_| {});
    assert!(decisions
        .iter()
        .all(|d| matches!(d, Decision::Healthy { .. })));
}

#[test]
fn a_stalled_vote_promotes_after_the_failures() {
    let mut d = Detector::new(Params::default());
    // The vote stops at 109: slot 110 still shows it (lag 1), 111 is the
    // first bad check, 113 the third.
    let decisions = run(&mut d, 20, Some(109), |_| {});
    assert_eq!(first_promote(&decisions), Some(13));
    match &decisions[12] {
        Decision::Suspect { bad, needed, .. } => assert_eq!((*bad, *needed), (2, 3)),
        other => panic!("expected Suspect, got {other:?}"),
    }
    let Decision::Promote { detection } = &decisions[13] else {
        unreachable!()
    };
    assert_eq!(
        (detection.last_vote, detection.slot, detection.bad),
        (109, 113, 3)
    );
    assert_eq!(detection.since_ms, 11 * SLOT_MS);
}

#[test]
fn a_check_without_a_new_slot_counts_neither_way() {
    let mut d = Detector::new(Params::default());
    let _ = run(&mut d, 5, None, |_| {}); // slots 100..=104, vote 103
    assert!(d.observe(&check(2_000, 105, 103)).is_bad());
    // The same slot again, 100 ms later: still one bad check.
    match d.observe(&check(2_100, 105, 103)) {
        Decision::Suspect { bad: 1, .. } => {}
        other => panic!("expected Suspect 1, got {other:?}"),
    }
}

#[test]
fn one_missed_vote_resets_once_the_next_lands() {
    let mut d = Detector::new(Params::default());
    let _ = run(&mut d, 5, None, |_| {});
    assert!(d.observe(&check(2_000, 105, 103)).is_bad());
    assert!(d.observe(&check(2_400, 106, 103)).is_bad());
    assert!(matches!(
        d.observe(&check(2_800, 107, 106)),
        Decision::Healthy { .. }
    ));
}

#[test]
fn a_healthy_answer_from_the_primary_doubles_the_failures() {
    let mut d = Detector::new(Params::default());
    let decisions = run(&mut d, 30, Some(109), |o| {
        o.primary_health = Some(Health::Ok)
    });
    assert_eq!(first_promote(&decisions), Some(16));
}

#[test]
fn a_stalled_cluster_never_promotes() {
    let mut d = Detector::new(Params::default());
    let _ = run(&mut d, 5, None, |_| {});
    // The slot stops at 104 with the vote at 103; checks keep coming.
    let decisions: Vec<_> = (5..100)
        .map(|i| d.observe(&check(i * SLOT_MS, 104, 103)))
        .collect();
    assert!(first_promote(&decisions).is_none());
    assert!(decisions
        .iter()
        .any(|d| matches!(d, Decision::ClusterStalled { slot: 104, .. })));
}

#[test]
fn a_stall_resets_the_count() {
    let mut d = Detector::new(Params::default());
    let _ = run(&mut d, 5, None, |_| {});
    assert!(d.observe(&check(2_000, 105, 103)).is_bad());
    assert!(d.observe(&check(2_400, 106, 103)).is_bad());
    for t in (2_800..6_000).step_by(400) {
        let _ = d.observe(&check(t, 106, 103));
    }
    // The cluster resumes: one bad check, not three.
    match d.observe(&check(6_400, 107, 103)) {
        Decision::Suspect { bad: 1, .. } => {}
        other => panic!("expected Suspect 1, got {other:?}"),
    }
}

#[test]
fn the_local_node_behind_vetoes_until_caught_up() {
    let mut d = Detector::new(Params::default());
    let behind = |o: &mut Observation| o.local_health = Health::Behind { slots: 40 };
    let decisions = run(&mut d, 20, Some(109), behind);
    assert!(first_promote(&decisions).is_none());
    assert!(matches!(
        decisions.last(),
        Some(Decision::Vetoed {
            veto: Veto::LocalNotCaughtUp { .. },
            ..
        })
    ));
    // Caught up: the next check promotes.
    assert!(matches!(
        d.observe(&check(20 * SLOT_MS, 120, 109)),
        Decision::Promote { .. }
    ));
}

#[test]
fn without_a_fence_it_never_promotes() {
    let params = Params {
        fenced: false,
        ..Params::default()
    };
    let mut d = Detector::new(params);
    let decisions = run(&mut d, 30, Some(109), |_| {});
    assert!(first_promote(&decisions).is_none());
    assert!(matches!(
        decisions.last(),
        Some(Decision::Vetoed {
            veto: Veto::NoFence,
            ..
        })
    ));
}

#[test]
fn cooldown_in_flight_and_backoff_veto_in_turn() {
    let mut d = Detector::new(Params::default());
    let decisions = run(&mut d, 14, Some(109), |_| {});
    assert!(matches!(decisions.last(), Some(Decision::Promote { .. })));
    d.promotion_started();
    assert!(matches!(
        d.observe(&check(14 * SLOT_MS, 114, 109)),
        Decision::Vetoed {
            veto: Veto::PromotionInFlight,
            ..
        }
    ));
    let backoff = d.promotion_failed(14 * SLOT_MS);
    assert_eq!(backoff, 1_000);
    assert!(matches!(
        d.observe(&check(15 * SLOT_MS, 115, 109)),
        Decision::Vetoed {
            veto: Veto::Backoff { retry_in_ms: 600 },
            ..
        }
    ));
    assert_eq!(d.promotion_failed(15 * SLOT_MS), 2_000);
    assert_eq!(d.promotion_failed(15 * SLOT_MS), 4_000);
    d.promotion_succeeded(16 * SLOT_MS);
    // A new active node that stalls at once is held by the cooldown.
    let decisions: Vec<_> = (17..40)
        .map(|i| d.observe(&check(i * SLOT_MS, 100 + i, 115)))
        .collect();
    assert!(first_promote(&decisions).is_none());
    assert!(matches!(
        decisions.last(),
        Some(Decision::Vetoed {
            veto: Veto::Cooldown { .. },
            ..
        })
    ));
}

#[test]
fn a_fence_that_moves_starts_over_and_cools_down() {
    let mut d = Detector::new(Params::default());
    let _ = run(&mut d, 12, Some(109), |_| {}); // two bad checks
    let mut moved = check(12 * SLOT_MS, 112, 109);
    moved.fence = Some(FenceView {
        holder: Some("another".into()),
        tower_last_vote: Some(109),
    });
    assert!(matches!(
        d.observe(&moved),
        Decision::Vetoed {
            veto: Veto::Cooldown { .. },
            ..
        } | Decision::Healthy { .. }
            | Decision::Suspect { bad: 1, .. }
    ));
}

/// A fence released (an orderly exit) and then taken again (the primary
/// restarted) is a failover too: no promotion right behind it.
#[test]
fn a_fence_taken_after_nobody_held_it_cools_down() {
    let mut d = Detector::new(Params::default());
    let released = |o: &mut Observation| {
        if let Some(fence) = o.fence.as_mut() {
            fence.holder = None;
        }
    };
    let _ = run(&mut d, 12, Some(109), released); // bad checks, nobody holds it
    let mut taken = check(12 * SLOT_MS, 112, 109);
    taken.fence = Some(FenceView {
        holder: Some("primary-restarted".into()),
        tower_last_vote: Some(109),
    });
    let decision = d.observe(&taken);
    assert!(
        matches!(decision, Decision::Suspect { bad: 1, .. }),
        "the count starts over: {decision:?}"
    );
    // The vote stays stalled: the cooldown, not a promotion.
    let later: Vec<Decision> = (13..20)
        .map(|i| {
            let mut o = check(i * SLOT_MS, 100 + i, 109);
            o.fence.clone_from(&taken.fence);
            d.observe(&o)
        })
        .collect();
    let promoted = later.iter().any(|d| matches!(d, Decision::Promote { .. }));
    assert!(!promoted, "{later:?}");
    let cooled = later.iter().any(|d| {
        matches!(
            d,
            Decision::Vetoed {
                veto: Veto::Cooldown { .. },
                ..
            }
        )
    });
    assert!(cooled, "{later:?}");
}

#[test]
fn the_leader_guard_waits_for_the_leader_slot_to_pass() {
    let params = Params {
        leader_guard_slots: Some(2),
        ..Params::default()
    };
    let mut d = Detector::new(params);
    let decisions = run(&mut d, 14, Some(109), |o| o.next_leader_slot = Some(115));
    assert!(matches!(
        decisions.last(),
        Some(Decision::Vetoed {
            veto: Veto::LeaderSlotSoon {
                slot: 115,
                in_slots: 2
            },
            ..
        })
    ));
}

#[test]
fn a_local_active_node_needs_nothing() {
    let mut d = Detector::new(Params::default());
    let decisions = run(&mut d, 20, Some(109), |o| o.local_active = true);
    assert!(decisions.iter().all(|d| *d == Decision::LocalActive));
}

#[test]
fn an_unreadable_cluster_is_blind_and_never_promotes() {
    let mut d = Detector::new(Params::default());
    let decisions = run(&mut d, 20, Some(109), |o| o.cluster_slot = None);
    assert!(decisions
        .iter()
        .all(|d| matches!(d, Decision::Blind { .. })));
}

#[test]
fn a_tower_that_still_advances_is_reported() {
    let mut d = Detector::new(Params::default());
    let decisions = run(&mut d, 20, Some(109), |o| {
        o.fence = Some(FenceView {
            holder: Some("primary".into()),
            tower_last_vote: o.cluster_slot.map(|s| s - 1),
        })
    });
    let Some(Decision::Promote { detection }) = decisions.last() else {
        panic!("expected a promotion")
    };
    assert!(detection.tower_advancing);
    // A node still storing its tower is alive: twice the evidence before a
    // promotion (votes only late, or the node cut off from the cluster).
    let promoted_at = first_promote(&decisions).unwrap();
    let mut plain = Detector::new(Params::default());
    let without = first_promote(&run(&mut plain, 14, Some(109), |_| {})).unwrap();
    assert_eq!(
        promoted_at - without,
        DEFAULT_FAILURES as usize,
        "{decisions:?}"
    );
}

/// A generated run: banks about one slot apart (0–60 ms late), the vote of
/// each bank landing in the next, except that a bank may miss it (a fork
/// switch, a late vote): at most `max_missed_in_a_row` banks in a row, the
/// next one carrying the vote again (TowerSync carries the whole tower).
/// Skipped slots leave no bank. Checks come every `interval` ms with up to
/// 80 ms of jitter, read the newest bank for the slot, and the vote account
/// from that bank or the next one (two calls).
#[derive(Debug, Clone)]
struct Trace {
    banks: Vec<(u64, u64, u64)>, // (slot, time, last_vote)
    checks: Vec<(u64, bool)>,    // (time, vote read one bank later)
}

fn trace(
    banks: usize,
    max_missed_in_a_row: usize,
    killed_at: Option<usize>,
) -> impl Strategy<Value = Trace> {
    let bank = (0u64..60, 0u8..100, 0u8..100);
    (
        proptest::collection::vec(bank, banks),
        proptest::collection::vec((0u64..80, any::<bool>()), banks),
    )
        .prop_map(move |(raw, jitter)| {
            let mut out = Vec::new();
            let (mut last_vote, mut missed, mut slot) = (0, 0, 1000);
            for (i, (late, miss, skip)) in raw.into_iter().enumerate() {
                slot += if skip < 3 { 2 } else { 1 };
                let voting = killed_at.is_none_or(|k| i < k);
                if voting && (miss >= 6 || missed >= max_missed_in_a_row) {
                    last_vote = out.last().map_or(slot - 1, |&(s, _, _)| s);
                    missed = 0;
                } else if voting {
                    missed += 1;
                }
                out.push((slot, i as u64 * SLOT_MS + late, last_vote));
            }
            let checks = jitter
                .into_iter()
                .enumerate()
                .map(|(i, (j, later))| (i as u64 * SLOT_MS + 200 + j, later))
                .collect();
            Trace { banks: out, checks }
        })
}

/// Replays a trace; the decisions with the index of the newest bank seen.
fn replay(trace: &Trace, params: Params) -> Vec<(usize, Decision)> {
    let mut d = Detector::new(params);
    let mut out = Vec::new();
    for &(at, later) in &trace.checks {
        let Some(i) = trace.banks.iter().rposition(|&(_, t, _)| t <= at) else {
            continue;
        };
        let j = if later {
            (i + 1).min(trace.banks.len() - 1)
        } else {
            i
        };
        let (slot, vote) = (trace.banks[i].0, trace.banks[j].2);
        out.push((i, d.observe(&check(at, slot, vote))));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Long healthy runs (3000 slots, 20 minutes at 400 ms) with votes
    /// landing up to `failures - 2` banks late, skipped slots and reads of
    /// the vote account one bank ahead of the slot never promote.
    #[test]
    fn healthy_runs_never_promote(t in trace(3000, DEFAULT_FAILURES as usize - 2, None)) {
        let decisions = replay(&t, Params::default());
        prop_assert!(!decisions.iter().any(|(_, d)| promotes(d)), "a promotion");
    }

    /// Without reads ahead, votes may land up to `failures - 1` banks late.
    #[test]
    fn healthy_runs_with_late_votes_never_promote(t in trace(3000, DEFAULT_FAILURES as usize - 1, None)) {
        let t = Trace { checks: t.checks.iter().map(|&(at, _)| (at, false)).collect(), ..t };
        let decisions = replay(&t, Params::default());
        prop_assert!(!decisions.iter().any(|(_, d)| promotes(d)), "a promotion");
    }

    /// After a kill, the promotion comes within `failures + 2` banks.
    #[test]
    fn a_killed_primary_is_promoted_promptly(t in trace(200, 1, Some(100))) {
        let decisions = replay(&t, Params::default());
        let (bank, _) = decisions
            .iter()
            .find(|(_, d)| matches!(d, Decision::Promote { .. }))
            .expect("a promotion");
        prop_assert!(*bank >= 100, "promoted before the kill, at bank {}", bank);
        prop_assert!(*bank <= 100 + DEFAULT_FAILURES as usize + 2, "promoted late, at bank {}", bank);
    }

    /// A cluster whose slot stops never gets a promotion, whatever the vote.
    #[test]
    fn a_stalled_cluster_never_promotes_whatever_the_vote(votes in proptest::collection::vec(0u64..2000, 200)) {
        let mut d = Detector::new(Params::default());
        for (i, vote) in votes.into_iter().enumerate() {
            let decision = d.observe(&check(i as u64 * 100, 2000, vote.min(1999)));
            prop_assert!(!promotes(&decision), "a promotion");
        }
    }

    /// Without a fence, or with the local node behind, nothing promotes.
    #[test]
    fn vetoes_hold_on_killed_runs(t in trace(200, 1, Some(50)), no_fence in any::<bool>()) {
        let mut d = Detector::new(Params { fenced: !no_fence, ..Params::default() });
        for &(at, _) in &t.checks {
            let Some(i) = t.banks.iter().rposition(|&(_, time, _)| time <= at) else { continue };
            let mut obs = check(at, t.banks[i].0, t.banks[i].2);
            if !no_fence {
                obs.local_health = Health::Unknown;
            }
            prop_assert!(!promotes(&d.observe(&obs)), "a promotion");
        }
    }
}
