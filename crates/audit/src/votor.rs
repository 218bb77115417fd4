//! Votor's offences (Alpenglow clusters), per voter identity, over every
//! `votor_vote` line whose signer is known (counted or refused: a refused
//! conflicting vote still left its sender):
//!
//! - **notarize and skip** in one slot (skip + notarize-fallback and
//!   notarize + skip-fallback are Votor's fallbacks, and allowed);
//! - **two blocks** notarized in one slot;
//! - **finalize in a skipped slot** (skip or skip-fallback, either order).
//!
//! And a hook for the stored vote history: [`votes_missing_from_history`]
//! reports every landed vote of an identity, in the slots its history
//! covers, that the history does not hold — a vote sent without being
//! stored first.
//!
//! Like the rest of this crate it shares no code with the validator: the
//! history comes in as [`StoredVoteHistory`], plain data a caller fills from
//! agave's `VoteHistory` (`votes_cast`, `root`) as read from storage.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::{Event, VotorVoteEvent};
use crate::report::{Violation, VotorOffence, VotorVoteRef};

/// Vote kinds, as the trail names them.
pub const NOTARIZE: &str = "notarize";
pub const NOTARIZE_FALLBACK: &str = "notarize-fallback";
pub const SKIP: &str = "skip";
pub const SKIP_FALLBACK: &str = "skip-fallback";
pub const FINALIZE: &str = "finalize";

/// Whether a refused vote was certainly signed by its identity: refusals
/// made before (or by) the signature check prove nothing about the voter.
pub fn signed_by_the_identity(event: &VotorVoteEvent) -> bool {
    !matches!(
        event.result.as_str(),
        "BadSignature" | "UnknownIdentity" | "InstanceTooLong" | "NotAlpenglow"
    )
}

/// What one identity voted in one slot so far (trail order).
#[derive(Debug, Default)]
struct SlotVotes {
    notarize: Option<(Option<String>, VotorVoteRef)>,
    skip: Option<VotorVoteRef>,
    /// A skip or a skip-fallback.
    skipped: Option<VotorVoteRef>,
    finalize: Option<VotorVoteRef>,
}

/// Judges Votor votes one at a time, in trail order.
#[derive(Debug, Default)]
pub struct VotorJudge {
    slots: BTreeMap<(String, u64), SlotVotes>,
    pub violations: Vec<Violation>,
    pub votes: usize,
}

impl VotorJudge {
    /// Takes the vote read from (1-based) `line`.
    pub fn vote(&mut self, line: usize, event: &VotorVoteEvent) {
        self.votes += 1;
        if !signed_by_the_identity(event) {
            return;
        }
        let this = VotorVoteRef::new(line, event);
        let state = self
            .slots
            .entry((event.identity.clone(), event.slot))
            .or_default();
        let mut offences: Vec<(VotorOffence, VotorVoteRef)> = vec![];
        match event.vote.as_str() {
            NOTARIZE => {
                if let Some((block, earlier)) = &state.notarize {
                    if *block != event.block_id {
                        offences.push((VotorOffence::TwoBlocks, earlier.clone()));
                    }
                }
                if let Some(earlier) = &state.skip {
                    offences.push((VotorOffence::NotarizeAndSkip, earlier.clone()));
                }
                state
                    .notarize
                    .get_or_insert((event.block_id.clone(), this.clone()));
            }
            SKIP | SKIP_FALLBACK => {
                if event.vote == SKIP {
                    if let Some((_, earlier)) = &state.notarize {
                        offences.push((VotorOffence::NotarizeAndSkip, earlier.clone()));
                    }
                    state.skip.get_or_insert(this.clone());
                }
                if let Some(earlier) = &state.finalize {
                    offences.push((VotorOffence::FinalizeSkipped, earlier.clone()));
                }
                state.skipped.get_or_insert(this.clone());
            }
            FINALIZE => {
                if let Some(earlier) = &state.skipped {
                    offences.push((VotorOffence::FinalizeSkipped, earlier.clone()));
                }
                state.finalize.get_or_insert(this.clone());
            }
            _ => {}
        }
        for (offence, earlier) in offences {
            self.violations.push(Violation::Votor {
                identity: event.identity.clone(),
                offence,
                slot: event.slot,
                vote: this.clone(),
                earlier,
            });
        }
    }
}

/// One vote of a stored vote history: agave's `VotePayload` by kind name
/// (`VotePayload::kind`), slot and block id (base-58).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HistoryVote {
    pub kind: String,
    pub slot: u64,
    pub block_id: Option<String>,
}

/// A voter's stored vote history, as plain data: its identity, its root
/// (agave prunes the votes below it) and every vote it holds (agave's
/// `votes_cast`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVoteHistory {
    pub identity: String,
    pub root: u64,
    pub votes: Vec<HistoryVote>,
}

impl StoredVoteHistory {
    /// The newest slot the history holds a vote in.
    pub fn newest_slot(&self) -> Option<u64> {
        self.votes.iter().map(|v| v.slot).max()
    }
}

/// Every landed vote of `history`'s identity in the slots the history
/// covers (from its root to its newest vote) that it does not hold: the
/// voter sent a vote it had not stored, or stored another. Votes above the
/// newest slot are not judged (the history may simply be older than them).
pub fn votes_missing_from_history<'a>(
    history: &StoredVoteHistory,
    trail: impl IntoIterator<Item = &'a Event>,
) -> Vec<Violation> {
    let Some(newest) = history.newest_slot() else {
        return vec![];
    };
    let held: BTreeSet<&HistoryVote> = history.votes.iter().collect();
    let mut missing = vec![];
    for (index, event) in trail.into_iter().enumerate() {
        let Event::VotorVote(vote) = event else {
            continue;
        };
        let judged = vote.identity == history.identity
            && vote.result.is_accepted()
            && (history.root..=newest).contains(&vote.slot);
        if !judged {
            continue;
        }
        let as_stored = HistoryVote {
            kind: vote.vote.clone(),
            slot: vote.slot,
            block_id: vote.block_id.clone(),
        };
        if !held.contains(&as_stored) {
            missing.push(Violation::NotInVoteHistory {
                identity: vote.identity.clone(),
                vote: VotorVoteRef::new(index + 1, vote),
                history_root: history.root,
                history_newest_slot: newest,
            });
        }
    }
    missing
}
