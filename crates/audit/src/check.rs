//! The checker: a state machine fed one event at a time, then asked for a report.
//!
//! Bank and block lines are absorbed as they come; votes are kept and judged in
//! `finish`, once the whole fork tree is known, so a bank line written after a
//! vote for it does not make the vote look unknown.
//!
//! Votes are judged by content in slot order, not in arrival order: the
//! lockouts of a vote bind every vote for a higher slot, whenever either
//! arrived. A vote delayed in the network, or sent late by a node thawed
//! after a takeover, is an earlier state of the same tower and passes; two
//! towers voting on different forks within a lockout fail in any order.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::event::{Event, VoteEvent, VoteResult};
use crate::report::{AccountReport, Report, RootProblem, Violation, VoteRef};
use crate::tree::ForkTree;
use crate::AuditError;

/// Timely vote credits for a vote that landed `latency` slots after its slot
/// (at most 16; 16 for the first two slots, one less per slot after, at least 1).
pub fn timely_vote_credits(latency: u64) -> u64 {
    const GRACE_SLOTS: u64 = 2;
    const MAXIMUM_PER_SLOT: u64 = 16;
    if latency <= GRACE_SLOTS {
        MAXIMUM_PER_SLOT
    } else {
        MAXIMUM_PER_SLOT
            .saturating_sub(latency - GRACE_SLOTS)
            .max(1)
    }
}

/// The last slot a lockout covers: `slot + 2^confirmation_count`, saturating.
pub fn locked_out_through(slot: u64, confirmation_count: u32) -> u64 {
    let lockout = 1u64.checked_shl(confirmation_count).unwrap_or(u64::MAX);
    slot.saturating_add(lockout)
}

/// Feeds on events in trail order; `finish` judges the votes.
#[derive(Debug, Default)]
pub struct Checker {
    lines: usize,
    banks: usize,
    blocks: usize,
    contacts: usize,
    highest_bank_slot: Option<u64>,
    tree: ForkTree,
    bank_versions: BTreeMap<u64, SlotVersions>,
    block_versions: BTreeMap<u64, SlotVersions>,
    votes: Vec<TrailVote>,
    votor: crate::votor::VotorJudge,
    certificates: usize,
    finalized_slot: Option<u64>,
}

/// Every distinct block seen for one slot.
#[derive(Debug)]
struct SlotVersions {
    hashes: Vec<String>,
    producers: Vec<String>,
    flagged: bool,
    line: usize,
}

impl SlotVersions {
    fn new(line: usize) -> Self {
        Self {
            hashes: Vec::new(),
            producers: Vec::new(),
            flagged: false,
            line,
        }
    }

    fn add(&mut self, hash: &str, producer: &str) {
        if !self.hashes.iter().any(|known| known == hash) {
            self.hashes.push(hash.to_owned());
            self.producers.push(producer.to_owned());
        }
    }

    fn is_duplicate(&self) -> bool {
        self.flagged || self.hashes.len() > 1
    }

    fn into_violation(self, slot: u64) -> Violation {
        Violation::DuplicateBlock {
            slot,
            hashes: self.hashes,
            producers: self.producers,
            flagged: self.flagged,
            line: self.line,
        }
    }
}

#[derive(Debug)]
struct TrailVote {
    line: usize,
    /// The highest bank slot listed before this vote: its landing slot, roughly.
    newest_bank: Option<u64>,
    vote: VoteEvent,
}

impl TrailVote {
    fn reference(&self) -> VoteRef {
        VoteRef {
            line: self.line,
            ts_ms: self.vote.ts_ms,
            signature: self.vote.signature.clone(),
            instance: self.vote.instance.clone(),
            identity: self.vote.identity.clone(),
            voter: self.vote.voter.clone(),
            slot: self.vote.lockouts.last().map_or(0, |&(slot, _)| slot),
            hash: self.vote.hash.clone(),
        }
    }

    /// Every slot the vote names: its root, then its lockouts.
    fn slots(&self) -> impl Iterator<Item = u64> + '_ {
        self.vote
            .root
            .into_iter()
            .chain(self.vote.lockouts.iter().map(|&(slot, _)| slot))
    }
}

/// A slot an account voted on, with its confirmation count as the latest vote
/// holding it had it.
#[derive(Debug, Clone, Copy)]
struct Lock {
    confirmation_count: u32,
    /// Index of that vote.
    vote: usize,
}

/// What the checker remembers about one vote account.
#[derive(Debug, Default)]
struct Account {
    report: AccountReport,
    /// Every voted slot not yet covered by the root.
    locks: BTreeMap<u64, Lock>,
    /// The highest root, and the vote that carried it.
    root: Option<(u64, usize)>,
    /// The first accepted vote for each last slot.
    by_last_slot: HashMap<u64, usize>,
    /// The latest accepted vote.
    previous: Option<usize>,
    voted_slots: HashSet<u64>,
    reported_unknown: HashSet<u64>,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in the event read from (1-based) `line`.
    pub fn observe(&mut self, line: usize, event: Event) {
        self.lines += 1;
        match event {
            Event::Bank(bank) => {
                self.banks += 1;
                self.tree.insert(bank.slot, bank.parent);
                self.highest_bank_slot = self.highest_bank_slot.max(Some(bank.slot));
                self.bank_versions
                    .entry(bank.slot)
                    .or_insert_with(|| SlotVersions::new(line))
                    .add(&bank.hash, &bank.leader);
            }
            Event::Block(block) => {
                self.blocks += 1;
                let versions = self
                    .block_versions
                    .entry(block.slot)
                    .or_insert_with(|| SlotVersions::new(line));
                versions.add(&block.hash, &block.instance);
                versions.flagged |= block.duplicate;
            }
            Event::Vote(vote) => self.votes.push(TrailVote {
                line,
                newest_bank: self.highest_bank_slot,
                vote,
            }),
            Event::Contact(_) => self.contacts += 1,
            Event::VotorVote(vote) => self.votor.vote(line, &vote),
            Event::Certificate(_) => self.certificates += 1,
            Event::Finalized(finalized) => {
                self.finalized_slot = self.finalized_slot.max(Some(finalized.slot));
            }
        }
    }

    /// Judges every vote and returns the report; a trail without votes is an
    /// error, since it proves nothing.
    pub fn finish(self) -> Result<Report, AuditError> {
        if self.votes.is_empty() && self.votor.votes == 0 {
            return Err(AuditError::NoVotes { lines: self.lines });
        }
        let mut judge = Judge {
            tree: &self.tree,
            votes: &self.votes,
            accounts: BTreeMap::new(),
            violations: Vec::new(),
        };
        for index in slot_order(&self.votes) {
            judge.vote(index);
        }
        let Judge {
            accounts,
            mut violations,
            ..
        } = judge;
        violations.extend(self.votor.violations);

        let mut duplicate_slots = HashSet::new();
        for (slot, versions) in self.block_versions {
            if versions.is_duplicate() {
                duplicate_slots.insert(slot);
                violations.push(versions.into_violation(slot));
            }
        }
        for (slot, versions) in self.bank_versions {
            if versions.is_duplicate() && !duplicate_slots.contains(&slot) {
                violations.push(versions.into_violation(slot));
            }
        }

        let mut rejected_by_result = BTreeMap::new();
        let accounts: Vec<AccountReport> = accounts
            .into_values()
            .map(|account| {
                for (result, count) in &account.report.rejected_by_result {
                    *rejected_by_result.entry(result.clone()).or_insert(0) += count;
                }
                account.report
            })
            .collect();
        Ok(Report {
            lines: self.lines,
            banks: self.banks,
            blocks: self.blocks,
            votes: self.votes.len(),
            contacts: self.contacts,
            highest_bank_slot: self.highest_bank_slot,
            rejected_by_result,
            accounts,
            violations,
            votor_votes: self.votor.votes,
            certificates: self.certificates,
            finalized_slot: self.finalized_slot,
        })
    }
}

/// The votes' indices by the slot each votes for (its last lockout), ties
/// in arrival order.
fn slot_order(votes: &[TrailVote]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..votes.len()).collect();
    order.sort_by_key(|&index| {
        let last = votes[index].vote.lockouts.last().map(|&(slot, _)| slot);
        (last, index)
    });
    order
}

/// Judges votes one by one against every vote of the same account for a
/// lower slot.
struct Judge<'a> {
    tree: &'a ForkTree,
    votes: &'a [TrailVote],
    accounts: BTreeMap<String, Account>,
    violations: Vec<Violation>,
}

impl Judge<'_> {
    fn vote(&mut self, index: usize) {
        let pending = &self.votes[index];
        let vote = &pending.vote;
        let account = self
            .accounts
            .entry(vote.vote_account.clone())
            .or_insert_with(|| Account {
                report: AccountReport {
                    vote_account: vote.vote_account.clone(),
                    ..AccountReport::default()
                },
                ..Account::default()
            });

        let accepted = vote.result.is_accepted();
        let instance = account
            .report
            .instances
            .entry(vote.instance.clone())
            .or_default();
        if instance.accepted + instance.rejected == 0 {
            instance.first_ts_ms = vote.ts_ms;
            instance.last_ts_ms = vote.ts_ms;
        }
        instance.first_ts_ms = instance.first_ts_ms.min(vote.ts_ms);
        instance.last_ts_ms = instance.last_ts_ms.max(vote.ts_ms);
        if accepted {
            instance.accepted += 1;
            account.report.votes_accepted += 1;
        } else {
            instance.rejected += 1;
            account.report.votes_rejected += 1;
            *account
                .report
                .rejected_by_result
                .entry(vote.result.to_string())
                .or_insert(0) += 1;
            // A vote the cluster refused still left its sender: a second
            // instance breaking a lockout is usually refused (LockoutConflict,
            // VoteTooOld), and it is exactly what the audit must see. Only a
            // vote the authorized voter may not have signed proves nothing.
            if !signed_by_the_voter(&vote.result) {
                return;
            }
        }

        // A vote without lockouts votes for nothing; the vote program refuses
        // those (`EmptySlots`), and there is nothing to check.
        let Some(&(last, _)) = vote.lockouts.last() else {
            return;
        };

        let found = judge_vote(self.tree, self.votes, account, index, last);
        self.violations.extend(found);
        record_vote(self.tree, self.votes, account, index, last, accepted);
    }
}

/// Every violation `votes[index]` commits against the account's earlier votes.
fn judge_vote(
    tree: &ForkTree,
    votes: &[TrailVote],
    account: &mut Account,
    index: usize,
    last: u64,
) -> Vec<Violation> {
    let mut found = Vec::new();
    found.extend(unknown_slot(tree, &votes[index], account));
    found.extend(equivocation(tree, votes, account, index, last));
    if tree.contains(last) {
        found.extend(lockout(tree, votes, account, index, last));
    }
    found.extend(root(tree, votes, account, index, last));
    found
}

/// Slots the fork tree does not know: each reported once per account.
fn unknown_slot(tree: &ForkTree, pending: &TrailVote, account: &mut Account) -> Option<Violation> {
    let unknown: Vec<u64> = pending
        .slots()
        .filter(|&slot| !tree.contains(slot))
        .filter(|&slot| account.reported_unknown.insert(slot))
        .collect();
    unknown.iter().max().map(|&slot| Violation::UnknownSlot {
        vote_account: pending.vote.vote_account.clone(),
        vote: pending.reference(),
        slot,
    })
}

/// Another vote for the same last slot with another hash, or with lockouts
/// that put it on another fork.
fn equivocation(
    tree: &ForkTree,
    votes: &[TrailVote],
    account: &Account,
    index: usize,
    last: u64,
) -> Option<Violation> {
    let pending = &votes[index];
    let vote = &pending.vote;
    let other = &votes[*account.by_last_slot.get(&last)?];
    let forks_differ = || {
        other.slots().any(|theirs| {
            pending.slots().any(|ours| {
                tree.contains(theirs) && tree.contains(ours) && !tree.on_one_fork(theirs, ours)
            })
        })
    };
    (other.vote.hash != vote.hash || forks_differ()).then(|| Violation::Equivocation {
        vote_account: vote.vote_account.clone(),
        vote: pending.reference(),
        earlier: other.reference(),
        slot: last,
        hash: vote.hash.clone(),
        earlier_hash: other.vote.hash.clone(),
    })
}

/// Every earlier slot still locked out at `last` (a known slot) must be on
/// its fork. A late vote for an ancestor of a locked slot commits to nothing
/// the locked slot does not imply, so only forks are compared; the lock
/// stays, and any later vote leaving its fork is caught. Without such a
/// conflict, the vote's own lockouts must all lie on its fork.
fn lockout(
    tree: &ForkTree,
    votes: &[TrailVote],
    account: &Account,
    index: usize,
    last: u64,
) -> Option<Violation> {
    let pending = &votes[index];
    let conflicts: Vec<(u64, Lock)> = account
        .locks
        .iter()
        .map(|(&slot, &lock)| (slot, lock))
        .filter(|&(slot, lock)| {
            slot != last
                && tree.contains(slot)
                && locked_out_through(slot, lock.confirmation_count) >= last
                && !tree.on_one_fork(slot, last)
        })
        .collect();
    if let Some(&(slot, lock)) = conflicts.last() {
        return Some(Violation::Lockout {
            vote_account: pending.vote.vote_account.clone(),
            vote: pending.reference(),
            earlier: Some(votes[lock.vote].reference()),
            locked_slot: slot,
            confirmation_count: lock.confirmation_count,
            locked_out_through: locked_out_through(slot, lock.confirmation_count),
            conflicts: conflicts.len(),
        });
    }
    let own: Vec<(u64, u32)> = pending
        .vote
        .lockouts
        .iter()
        .copied()
        .filter(|&(slot, _)| tree.contains(slot) && !tree.is_ancestor_or_self(slot, last))
        .collect();
    own.last()
        .map(|&(slot, confirmation_count)| Violation::Lockout {
            vote_account: pending.vote.vote_account.clone(),
            vote: pending.reference(),
            earlier: None,
            locked_slot: slot,
            confirmation_count,
            locked_out_through: locked_out_through(slot, confirmation_count),
            conflicts: own.len(),
        })
}

/// The vote must descend from the account's root and keep it.
fn root(
    tree: &ForkTree,
    votes: &[TrailVote],
    account: &Account,
    index: usize,
    last: u64,
) -> Option<Violation> {
    let pending = &votes[index];
    let vote = &pending.vote;
    let last_known = tree.contains(last);
    let descends = |root: u64| root < last && tree.is_ancestor_or_self(root, last);
    let root_problem = match account.root {
        Some((root, _)) if last_known && tree.contains(root) && !descends(root) => {
            Some(RootProblem::NotDescendant)
        }
        Some((root, _)) if vote.root.is_none_or(|new| new < root) => {
            Some(RootProblem::MovedBackward)
        }
        _ => None,
    };
    if let (Some(problem), Some((root, earlier))) = (root_problem, account.root) {
        return Some(Violation::Root {
            vote_account: vote.vote_account.clone(),
            vote: pending.reference(),
            earlier: Some(votes[earlier].reference()),
            problem,
            earlier_root: Some(root),
            root: vote.root,
        });
    }
    let root = vote.root?;
    (last_known && tree.contains(root) && !descends(root)).then(|| Violation::Root {
        vote_account: vote.vote_account.clone(),
        vote: pending.reference(),
        earlier: None,
        problem: RootProblem::NotAncestorOfVote,
        earlier_root: account.root.map(|(root, _)| root),
        root: Some(root),
    })
}

/// Folds an accepted vote into the account's state and liveness figures.
/// Whether a vote with this verdict was certainly signed by the vote
/// account's authorized voter (so its content binds the account).
fn signed_by_the_voter(result: &VoteResult) -> bool {
    !matches!(
        result.as_str(),
        "SignatureFailure" | "MissingRequiredSignature"
    )
}

/// Takes `votes[index]` into the account's state: its lockouts and root for
/// the safety checks, and (when it `landed`) the liveness figures.
fn record_vote(
    tree: &ForkTree,
    votes: &[TrailVote],
    account: &mut Account,
    index: usize,
    last: u64,
    landed: bool,
) {
    let pending = &votes[index];
    let vote = &pending.vote;
    if landed {
        record_liveness(votes, account, index, last);
    }
    account.by_last_slot.entry(last).or_insert(index);
    for &(slot, confirmation_count) in &vote.lockouts {
        account.locks.insert(
            slot,
            Lock {
                confirmation_count,
                vote: index,
            },
        );
    }
    record_root(tree, account, vote, index);
}

fn record_liveness(votes: &[TrailVote], account: &mut Account, index: usize, last: u64) {
    let pending = &votes[index];
    let vote = &pending.vote;
    let report = &mut account.report;

    // Credits for slots entering the lockouts (only the voted slot when the
    // account has no earlier vote to compare with).
    let previous: HashSet<u64> = account
        .previous
        .map(|previous| {
            votes[previous]
                .vote
                .lockouts
                .iter()
                .map(|&(slot, _)| slot)
                .collect()
        })
        .unwrap_or_default();
    let new_slots: Vec<u64> = if account.previous.is_some() {
        vote.lockouts
            .iter()
            .map(|&(slot, _)| slot)
            .filter(|slot| !previous.contains(slot))
            .collect()
    } else {
        vec![last]
    };
    for slot in new_slots {
        let latency = pending
            .newest_bank
            .map_or(1, |newest| newest.saturating_sub(slot).max(1));
        report.credits += timely_vote_credits(latency);
    }

    if let Some(previous) = account.previous {
        let previous_last = votes[previous]
            .vote
            .lockouts
            .last()
            .map_or(0, |&(slot, _)| slot);
        let gap = last.saturating_sub(previous_last);
        if gap > report.longest_gap {
            report.longest_gap = gap;
            report.longest_gap_after = Some(previous_last);
        }
    }
    if account.voted_slots.insert(last) {
        report.slots_voted += 1;
    }
    report.first_slot = Some(report.first_slot.map_or(last, |first| first.min(last)));
    report.last_slot = Some(report.last_slot.map_or(last, |high| high.max(last)));
    account.previous = Some(index);
}

fn record_root(tree: &ForkTree, account: &mut Account, vote: &VoteEvent, index: usize) {
    let report = &mut account.report;
    if let Some(root) = vote.root {
        if account.root.is_none_or(|(current, _)| root > current) {
            account.root = Some((root, index));
            report.root = Some(root);
            // From now on every vote must descend from the root, so slots on
            // its path are covered by the root check, and slots whose lockout
            // ends at or before it can never be locked again. Dropping both
            // keeps the lock table small.
            let covered: Vec<u64> = account
                .locks
                .range(..=root)
                .filter(|&(&slot, lock)| {
                    locked_out_through(slot, lock.confirmation_count) <= root
                        || tree.is_ancestor_or_self(slot, root)
                })
                .map(|(&slot, _)| slot)
                .collect();
            for slot in covered {
                account.locks.remove(&slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timely_credits_follow_the_vote_program() {
        assert_eq!(timely_vote_credits(0), 16);
        assert_eq!(timely_vote_credits(1), 16);
        assert_eq!(timely_vote_credits(2), 16);
        assert_eq!(timely_vote_credits(3), 15);
        assert_eq!(timely_vote_credits(16), 2);
        assert_eq!(timely_vote_credits(17), 1);
        assert_eq!(timely_vote_credits(1000), 1);
    }

    #[test]
    fn lockouts_double_and_saturate() {
        assert_eq!(locked_out_through(10, 1), 12);
        assert_eq!(locked_out_through(10, 5), 42);
        assert_eq!(locked_out_through(10, 64), u64::MAX);
        assert_eq!(locked_out_through(u64::MAX - 1, 3), u64::MAX);
    }
}
