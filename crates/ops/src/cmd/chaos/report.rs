//! The figures of a chaos run, from the cluster's trail and the fault log.

use std::collections::{BTreeMap, BTreeSet};

use towerlock_audit::event::Event;
use towerlock_lab::{as_landed, LandedVote};

use super::inject::FaultRecord;

/// Timely vote credits a slot can earn at most.
const MAX_CREDITS_PER_SLOT: u64 = 16;

/// What a run measured.
#[derive(Debug, Default)]
pub struct Figures {
    pub faults_by_kind: BTreeMap<String, usize>,
    /// Changes of the voting instance between consecutive landed votes.
    pub failovers: usize,
    /// Moments of those changes (ms).
    pub failover_ts: Vec<u64>,
    pub votes_landed: usize,
    /// The longest stretch without a landed vote of our account.
    pub longest_gap_ms: u64,
    /// Where it began.
    pub longest_gap_from_ms: u64,
    /// Distinct slots frozen since the first landed vote, times 16.
    pub credits_possible: u64,
    /// Per healed fault: its kind and the time from heal to the next
    /// landed vote (`None`: none came).
    pub recoveries: Vec<(String, Option<u64>)>,
}

/// Landed votes of `vote_account`, in trail order.
/// TowerSyncs the vote program accepted and, on Alpenglow, Votor votes the
/// cluster counted.
pub fn landed(events: &[Event], vote_account: &str) -> Vec<LandedVote> {
    events
        .iter()
        .filter(|e| match e {
            Event::Vote(v) => v.vote_account == vote_account,
            Event::VotorVote(v) => v.vote_account == vote_account,
            _ => false,
        })
        .filter_map(as_landed)
        .collect()
}

/// Computes the figures of a run that began at `start_ms` and ended at
/// `end_ms`.
pub fn figures(
    events: &[Event],
    vote_account: &str,
    records: &[FaultRecord],
    (start_ms, end_ms): (u64, u64),
) -> Figures {
    let votes = landed(events, vote_account);
    let mut figures = Figures {
        votes_landed: votes.len(),
        ..Figures::default()
    };
    for record in records {
        *figures
            .faults_by_kind
            .entry(record.kind.clone())
            .or_default() += 1;
        let next = votes
            .iter()
            .find(|v| v.ts_ms >= record.end_ms)
            .map(|v| v.ts_ms - record.end_ms);
        figures.recoveries.push((record.kind.clone(), next));
    }
    let mut previous = start_ms;
    let mut previous_instance: Option<&str> = None;
    for vote in votes.iter().chain(std::iter::once(&end_vote(end_ms))) {
        let gap = vote.ts_ms.saturating_sub(previous);
        if gap > figures.longest_gap_ms {
            figures.longest_gap_ms = gap;
            figures.longest_gap_from_ms = previous;
        }
        previous = vote.ts_ms.max(previous);
        if vote.instance.is_empty() {
            continue;
        }
        if previous_instance.is_some_and(|p| p != vote.instance) {
            figures.failovers += 1;
            figures.failover_ts.push(vote.ts_ms);
        }
        previous_instance = Some(&vote.instance);
    }
    let first = votes.first().map_or(end_ms, |v| v.ts_ms);
    let slots: BTreeSet<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Bank(b) if b.ts_ms >= first => Some(b.slot),
            _ => None,
        })
        .collect();
    figures.credits_possible = slots.len() as u64 * MAX_CREDITS_PER_SLOT;
    figures
}

/// A stand-in vote at the end of the run, closing the last stretch.
fn end_vote(end_ms: u64) -> LandedVote {
    LandedVote {
        instance: String::new(),
        ts_ms: end_ms,
        slot: 0,
    }
}
