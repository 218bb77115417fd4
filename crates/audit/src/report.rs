//! What the checker found: violations, and liveness figures per vote account.
//!
//! Plain data, serializable as JSON (`towerlock audit --json`); `Display`
//! renders the readable summary.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The result of checking a whole trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Non-empty lines read.
    pub lines: usize,
    /// `bank` lines.
    pub banks: usize,
    /// `block` lines.
    pub blocks: usize,
    /// `vote` lines, accepted or not.
    pub votes: usize,
    /// `contact` lines.
    pub contacts: usize,
    /// The highest slot of any bank line.
    pub highest_bank_slot: Option<u64>,
    /// Votes the cluster rejected, by result name, over every account. For
    /// information only: a rejected vote never landed, so it cannot be unsafe.
    pub rejected_by_result: BTreeMap<String, u64>,
    /// Liveness figures, one entry per vote account, ordered by account.
    pub accounts: Vec<AccountReport>,
    /// Safety violations, in trail order (duplicate blocks last).
    pub violations: Vec<Violation>,
    /// `votor_vote` lines, counted or not (Alpenglow clusters).
    #[serde(default)]
    pub votor_votes: usize,
    /// `certificate` lines.
    #[serde(default)]
    pub certificates: usize,
    /// The highest slot of any `finalized` line.
    #[serde(default)]
    pub finalized_slot: Option<u64>,
}

impl Report {
    /// No safety violation was found.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// How many violations of each kind were found.
    pub fn counts_by_kind(&self) -> BTreeMap<ViolationKind, usize> {
        let mut counts = BTreeMap::new();
        for violation in &self.violations {
            *counts.entry(violation.kind()).or_insert(0) += 1;
        }
        counts
    }

    /// The figures of one vote account.
    pub fn account(&self, vote_account: &str) -> Option<&AccountReport> {
        self.accounts
            .iter()
            .find(|account| account.vote_account == vote_account)
    }
}

/// Liveness figures of one vote account, over every instance that voted for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountReport {
    pub vote_account: String,
    /// Votes the cluster accepted ([`crate::VoteResult::Accepted`]).
    pub votes_accepted: u64,
    /// Votes the cluster rejected.
    pub votes_rejected: u64,
    /// Rejected votes by result name.
    pub rejected_by_result: BTreeMap<String, u64>,
    /// Distinct slots voted on (the last slot of each accepted vote).
    pub slots_voted: u64,
    /// The lowest slot voted on.
    pub first_slot: Option<u64>,
    /// The highest slot voted on.
    pub last_slot: Option<u64>,
    /// The longest gap in slots between consecutive accepted votes (trail order).
    pub longest_gap: u64,
    /// The slot voted on just before the longest gap began.
    pub longest_gap_after: Option<u64>,
    /// Approximate timely vote credits: every slot entering the account's
    /// lockouts earns 16 for a latency of 1–2 slots, 16 − (L − 2) up to 16 and 1
    /// beyond, latency measured against the newest bank listed before the vote
    /// (at least 1). Slots are counted even if their fork was later abandoned.
    pub credits: u64,
    /// The highest root any accepted vote carried.
    pub root: Option<u64>,
    /// Votes per sending instance.
    pub instances: BTreeMap<String, InstanceCounts>,
}

/// Votes of one account sent by one validator instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceCounts {
    pub accepted: u64,
    pub rejected: u64,
    /// Timestamp of the instance's first vote line.
    pub first_ts_ms: u64,
    /// Timestamp of the instance's last vote line.
    pub last_ts_ms: u64,
}

/// Where a vote appears in the trail and who sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRef {
    /// 1-based line number in the trail.
    pub line: usize,
    pub ts_ms: u64,
    pub signature: String,
    pub instance: String,
    pub identity: String,
    pub voter: String,
    /// The vote's last (newly voted) slot.
    pub slot: u64,
    /// The hash the vote claims for its last slot.
    pub hash: String,
}

impl fmt::Display for VoteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vote {} for slot {} (instance {}, ts {} ms, line {})",
            self.signature, self.slot, self.instance, self.ts_ms, self.line
        )
    }
}

/// The kinds of safety violation, for counting and filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    Lockout,
    Equivocation,
    Root,
    DuplicateBlock,
    UnknownSlot,
    /// Votor: notarize and skip in one slot.
    NotarizeAndSkip,
    /// Votor: two blocks notarized in one slot.
    DoubleNotarize,
    /// Votor: finalize in a slot the voter skipped.
    FinalizeSkipped,
    /// Votor: a landed vote the voter's stored vote history lacks.
    NotInVoteHistory,
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Lockout => "lockout violation",
            Self::Equivocation => "equivocation",
            Self::Root => "root violation",
            Self::DuplicateBlock => "duplicate block",
            Self::UnknownSlot => "unknown slot",
            Self::NotarizeAndSkip => "notarize and skip in one slot",
            Self::DoubleNotarize => "two blocks notarized in one slot",
            Self::FinalizeSkipped => "finalize in a skipped slot",
            Self::NotInVoteHistory => "vote not in the stored vote history",
        })
    }
}

/// How a vote broke an earlier root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootProblem {
    /// The vote's slot does not descend from a root the account had already.
    NotDescendant,
    /// The vote carries an older root than the account had, or none.
    MovedBackward,
    /// The vote's own root is not an ancestor of the slot it votes for.
    NotAncestorOfVote,
}

/// Which two votes of one Votor voter in one slot Votor forbids together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VotorOffence {
    /// A notarize and a skip (not a fallback) in one slot.
    NotarizeAndSkip,
    /// Notarize votes for two different blocks of one slot.
    TwoBlocks,
    /// A finalize and a skip or skip-fallback in one slot.
    FinalizeSkipped,
}

/// Where a Votor vote appears in the trail and what it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VotorVoteRef {
    /// 1-based line number in the trail.
    pub line: usize,
    pub ts_ms: u64,
    pub instance: String,
    /// The vote's kind (`notarize`, `skip`, …).
    pub vote: String,
    pub slot: u64,
    pub block_id: Option<String>,
    pub signature: String,
    /// The cluster's verdict (`ok` or why it refused).
    pub result: String,
}

impl VotorVoteRef {
    pub fn new(line: usize, event: &crate::event::VotorVoteEvent) -> Self {
        Self {
            line,
            ts_ms: event.ts_ms,
            instance: event.instance.clone(),
            vote: event.vote.clone(),
            slot: event.slot,
            block_id: event.block_id.clone(),
            signature: event.signature.clone(),
            result: event.result.to_string(),
        }
    }
}

impl fmt::Display for VotorVoteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} vote in slot {}", self.vote, self.slot)?;
        if let Some(block) = &self.block_id {
            write!(f, " for block {block}")?;
        }
        write!(
            f,
            " (instance {}, {}, ts {} ms, line {})",
            self.instance, self.result, self.ts_ms, self.line
        )
    }
}

/// One safety violation. Every vote-related variant names the offending vote
/// and, where there is one, the earlier vote it conflicts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Violation {
    /// A vote for a slot on another fork than a slot the account was still
    /// locked out on (`locked_slot + 2^confirmation_count ≥ vote.slot`).
    Lockout {
        vote_account: String,
        vote: VoteRef,
        /// The latest earlier vote holding `locked_slot`; `None` when the
        /// vote's own lockouts contain a slot off its fork.
        earlier: Option<VoteRef>,
        locked_slot: u64,
        confirmation_count: u32,
        locked_out_through: u64,
        /// How many locked slots this vote conflicts with in all.
        conflicts: usize,
    },
    /// Two votes for one slot claiming different hashes, or placing it on
    /// different forks.
    Equivocation {
        vote_account: String,
        vote: VoteRef,
        earlier: VoteRef,
        slot: u64,
        hash: String,
        earlier_hash: String,
    },
    /// A vote that does not descend from an earlier root, or moves the root back.
    Root {
        vote_account: String,
        vote: VoteRef,
        /// The vote whose root is broken; `None` for the vote's own root.
        earlier: Option<VoteRef>,
        problem: RootProblem,
        earlier_root: Option<u64>,
        root: Option<u64>,
    },
    /// Two different blocks for one slot, or a block the cluster flagged.
    DuplicateBlock {
        slot: u64,
        /// Distinct hashes seen for the slot, in trail order.
        hashes: Vec<String>,
        /// Instances (for `block` lines) or leaders (for `bank` lines) that
        /// produced them, in trail order.
        producers: Vec<String>,
        /// Some line had `duplicate: true`.
        flagged: bool,
        /// The first line about the slot.
        line: usize,
    },
    /// An accepted vote names a slot no bank line lists; its safety cannot be
    /// checked against the fork tree.
    UnknownSlot {
        vote_account: String,
        vote: VoteRef,
        slot: u64,
    },
    /// A Votor voter cast two votes Votor forbids together in one slot.
    Votor {
        identity: String,
        offence: VotorOffence,
        slot: u64,
        vote: VotorVoteRef,
        earlier: VotorVoteRef,
    },
    /// A landed Votor vote, in the slots the voter's stored vote history
    /// covers, that the history does not hold.
    NotInVoteHistory {
        identity: String,
        vote: VotorVoteRef,
        history_root: u64,
        history_newest_slot: u64,
    },
}

impl Violation {
    pub fn kind(&self) -> ViolationKind {
        match self {
            Self::Lockout { .. } => ViolationKind::Lockout,
            Self::Equivocation { .. } => ViolationKind::Equivocation,
            Self::Root { .. } => ViolationKind::Root,
            Self::DuplicateBlock { .. } => ViolationKind::DuplicateBlock,
            Self::UnknownSlot { .. } => ViolationKind::UnknownSlot,
            Self::Votor { offence, .. } => match offence {
                VotorOffence::NotarizeAndSkip => ViolationKind::NotarizeAndSkip,
                VotorOffence::TwoBlocks => ViolationKind::DoubleNotarize,
                VotorOffence::FinalizeSkipped => ViolationKind::FinalizeSkipped,
            },
            Self::NotInVoteHistory { .. } => ViolationKind::NotInVoteHistory,
        }
    }

    /// The offending vote, for vote-related violations.
    pub fn vote(&self) -> Option<&VoteRef> {
        match self {
            Self::Lockout { vote, .. }
            | Self::Equivocation { vote, .. }
            | Self::Root { vote, .. }
            | Self::UnknownSlot { vote, .. } => Some(vote),
            Self::DuplicateBlock { .. } | Self::Votor { .. } | Self::NotInVoteHistory { .. } => {
                None
            }
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.kind())?;
        match self {
            Self::Lockout {
                vote_account,
                vote,
                earlier,
                locked_slot,
                confirmation_count,
                locked_out_through,
                conflicts,
            } => {
                write!(f, "account {vote_account}: {vote} is not on the fork of slot {locked_slot} (confirmation count {confirmation_count}, locked out through slot {locked_out_through})")?;
                write_lock_holder(f, earlier.as_ref(), *conflicts)
            }
            Self::Equivocation {
                vote_account,
                vote,
                earlier,
                slot,
                hash,
                earlier_hash,
            } => {
                if hash != earlier_hash {
                    write!(f, "account {vote_account}: {vote} claims hash {hash} for slot {slot}, earlier {earlier} claimed {earlier_hash}")
                } else {
                    write!(f, "account {vote_account}: {vote} and earlier {earlier} place slot {slot} on different forks")
                }
            }
            Self::Root {
                vote_account,
                vote,
                earlier,
                problem,
                earlier_root,
                root,
            } => {
                write!(f, "account {vote_account}: {vote} ")?;
                write_root_problem(f, *problem, *earlier_root, *root)?;
                if let Some(earlier) = earlier {
                    write!(f, ", set by earlier {earlier}")?;
                }
                Ok(())
            }
            Self::DuplicateBlock {
                slot,
                hashes,
                producers,
                flagged,
                line,
            } => {
                write!(
                    f,
                    "slot {slot} has {} block(s) [{}] from [{}] (first at line {line})",
                    hashes.len(),
                    hashes.join(", "),
                    producers.join(", ")
                )?;
                if *flagged {
                    write!(f, ", flagged duplicate by the cluster")?;
                }
                Ok(())
            }
            Self::UnknownSlot {
                vote_account,
                vote,
                slot,
            } => write!(
                f,
                "account {vote_account}: {vote} names slot {slot}, which no bank line lists"
            ),
            Self::Votor { .. } | Self::NotInVoteHistory { .. } => self.write_votor(f),
        }
    }
}

impl Violation {
    /// The Votor variants' sentence (after the kind).
    fn write_votor(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Votor {
                identity,
                vote,
                earlier,
                ..
            } => write!(f, "identity {identity}: {vote}, after {earlier}"),
            Self::NotInVoteHistory {
                identity,
                vote,
                history_root,
                history_newest_slot,
            } => write!(
                f,
                "identity {identity}: {vote} landed, but its stored vote history (slots {history_root}..={history_newest_slot}) does not hold it"
            ),
            _ => Ok(()),
        }
    }
}

/// What holds the lock a lockout violation broke: an earlier vote, or the
/// vote's own lockouts; and how many locked slots conflict in all.
fn write_lock_holder(
    f: &mut fmt::Formatter<'_>,
    earlier: Option<&VoteRef>,
    conflicts: usize,
) -> fmt::Result {
    match earlier {
        Some(earlier) => write!(f, ", held by earlier {earlier}")?,
        None => write!(f, ", which the vote's own lockouts hold")?,
    }
    if conflicts > 1 {
        write!(f, "; {conflicts} locked slots conflict in all")?;
    }
    Ok(())
}

/// What a root violation did to the root.
fn write_root_problem(
    f: &mut fmt::Formatter<'_>,
    problem: RootProblem,
    earlier_root: Option<u64>,
    root: Option<u64>,
) -> fmt::Result {
    let show = |root: Option<u64>| match root {
        Some(slot) => slot.to_string(),
        None => "none".to_owned(),
    };
    match problem {
        RootProblem::NotDescendant => {
            write!(f, "does not descend from root {}", show(earlier_root))
        }
        RootProblem::MovedBackward => write!(
            f,
            "moves the root back from {} to {}",
            show(earlier_root),
            show(root)
        ),
        RootProblem::NotAncestorOfVote => {
            write!(f, "carries root {} off its own fork", show(root))
        }
    }
}

/// `1 vote`, `2 votes`.
fn plural(count: impl TryInto<u64>, word: &str) -> String {
    match count.try_into().unwrap_or(u64::MAX) {
        1 => format!("1 {word}"),
        count => format!("{count} {word}s"),
    }
}

/// How many violations of each kind the readable summary lists in full.
const SHOWN_PER_KIND: usize = 20;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            plural(self.lines, "line"),
            plural(self.banks, "bank")
        )?;
        if let Some(slot) = self.highest_bank_slot {
            write!(f, " (up to slot {slot})")?;
        }
        writeln!(
            f,
            ", {}, {}, {}",
            plural(self.blocks, "block"),
            plural(self.votes, "vote"),
            plural(self.contacts, "contact")
        )?;
        if self.votor_votes + self.certificates > 0 {
            write!(
                f,
                "votor: {}, {}",
                plural(self.votor_votes, "vote"),
                plural(self.certificates, "certificate")
            )?;
            if let Some(slot) = self.finalized_slot {
                write!(f, ", finalized up to slot {slot}")?;
            }
            writeln!(f)?;
        }
        for account in &self.accounts {
            write_account(f, account)?;
        }
        if self.violations.is_empty() {
            return writeln!(f, "no safety violations");
        }
        self.write_violations(f)
    }
}

/// One vote account's figures: votes, slots voted, credits, instances.
fn write_account(f: &mut fmt::Formatter<'_>, account: &AccountReport) -> fmt::Result {
    writeln!(f, "vote account {}:", account.vote_account)?;
    write!(
        f,
        "  {} votes accepted, {} rejected",
        account.votes_accepted, account.votes_rejected
    )?;
    if !account.rejected_by_result.is_empty() {
        let by_result: Vec<String> = account
            .rejected_by_result
            .iter()
            .map(|(result, count)| format!("{result} {count}"))
            .collect();
        write!(f, " ({})", by_result.join(", "))?;
    }
    writeln!(f)?;
    if let (Some(first), Some(last)) = (account.first_slot, account.last_slot) {
        write!(
            f,
            "  {} voted ({first}..={last}), longest gap {}",
            plural(account.slots_voted, "slot"),
            plural(account.longest_gap, "slot")
        )?;
        if let Some(after) = account.longest_gap_after {
            write!(f, " (after slot {after})")?;
        }
        write!(f, ", ~{} credits", account.credits)?;
        if let Some(root) = account.root {
            write!(f, ", root {root}")?;
        }
        writeln!(f)?;
    }
    for (instance, counts) in &account.instances {
        writeln!(
            f,
            "  instance {instance}: {} accepted, {} rejected (ts {}..{} ms)",
            counts.accepted, counts.rejected, counts.first_ts_ms, counts.last_ts_ms
        )?;
    }
    Ok(())
}

impl Report {
    /// The violations by kind, at most [`SHOWN_PER_KIND`] of each in full.
    fn write_violations(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts: Vec<String> = self
            .counts_by_kind()
            .iter()
            .map(|(kind, count)| format!("{count} × {kind}"))
            .collect();
        writeln!(
            f,
            "{} safety violation(s): {}",
            self.violations.len(),
            counts.join(", ")
        )?;
        for (kind, count) in self.counts_by_kind() {
            for violation in self
                .violations
                .iter()
                .filter(|violation| violation.kind() == kind)
                .take(SHOWN_PER_KIND)
            {
                writeln!(f, "  {violation}")?;
            }
            if count > SHOWN_PER_KIND {
                writeln!(
                    f,
                    "  … and {} more {kind}(s) (see --json)",
                    count - SHOWN_PER_KIND
                )?;
            }
        }
        Ok(())
    }
}
