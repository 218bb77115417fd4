//! The audit trail of a local cluster, and the safety checks run over it.
//!
//! This crate promises an independent judgement of a trail: it rebuilds the
//! fork tree from `bank` lines and checks every vote that landed against every
//! earlier vote of the same vote account, whichever instance sent it. It knows
//! nothing of how votes were produced (no tower code is shared with the
//! validator), opens no sockets and has no runtime; reading the file in
//! [`check_file`] is its only IO.
//!
//! - [`event`] is the trail's line format (docs/architecture.md §5), shared by the cluster
//!   that writes it and the checker that reads it.
//! - [`Checker`] is the pure state machine: [`Checker::observe`] each event, then
//!   [`Checker::finish`] for a [`Report`].
//! - [`synth`] builds trails in code, with a reference TowerBFT voter, for tests.
//!
//! What counts as a violation, for each vote account over all accepted votes
//! ([`VoteResult::Accepted`], `"ok"` in the trail) in trail order:
//! - **lockout**: the voted slot is not on the fork of an earlier voted slot
//!   still locked out at it (`slot + 2^confirmation_count ≥ voted slot`, with
//!   the confirmation count of the latest vote holding that slot), or the
//!   vote's own lockouts leave its fork;
//! - **equivocation**: two votes for one slot with different hashes, or with
//!   lockouts placing it on different forks;
//! - **root**: a vote not descending from the account's root, or carrying an
//!   older root (or none);
//! - **duplicate block**: a block flagged duplicate, or two blocks (or banks)
//!   for one slot with different hashes;
//! - **unknown slot**: a vote naming a slot no bank line lists.
//!
//! Rejected votes never landed and are only counted, by result name.
//!
//! On an Alpenglow cluster the trail holds Votor votes, certificates and
//! finalizations instead; [`votor`] judges Votor's offences per voter
//! identity (notarize and skip in one slot, two blocks notarized in one
//! slot, finalize in a skipped slot) and checks landed votes against a
//! stored vote history.

pub mod check;
pub mod event;
pub mod report;
pub mod synth;
pub mod tree;
pub mod votor;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

pub use check::Checker;
pub use event::{
    BankEvent, BlockEvent, CertificateEvent, ContactEvent, Event, FinalizedEvent, VoteEvent,
    VoteResult, VotorVoteEvent,
};
pub use report::{
    AccountReport, InstanceCounts, Report, RootProblem, Violation, ViolationKind, VoteRef,
    VotorOffence, VotorVoteRef,
};
pub use tree::ForkTree;
pub use votor::{votes_missing_from_history, HistoryVote, StoredVoteHistory};

/// Why a trail could not be judged at all.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The trail file could not be opened or read.
    #[error("cannot read the audit trail {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line is not an audit event (bad JSON, unknown kind, missing field).
    #[error("line {line} of the audit trail is not a valid event")]
    Malformed {
        /// 1-based line number.
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    /// The trail has no vote line: it proves nothing, which is not a pass.
    #[error("the audit trail has no votes ({lines} events read), so there is nothing to check")]
    NoVotes { lines: usize },
}

/// Parses line `line` (1-based) of a trail; a blank line is `None`.
pub fn parse_line(line: usize, text: &[u8]) -> Result<Option<Event>, AuditError> {
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(text)
        .map(Some)
        .map_err(|source| AuditError::Malformed { line, source })
}

/// Checks a whole trail held in memory.
pub fn check_str(trail: &str) -> Result<Report, AuditError> {
    let mut checker = Checker::new();
    for (index, text) in trail.lines().enumerate() {
        if let Some(event) = parse_line(index + 1, text.as_bytes())? {
            checker.observe(index + 1, event);
        }
    }
    checker.finish()
}

/// Checks events built in code; line numbers in the report are positions
/// (1-based) in `events`.
pub fn check_events<I>(events: I) -> Result<Report, AuditError>
where
    I: IntoIterator<Item = Event>,
{
    let mut checker = Checker::new();
    for (index, event) in events.into_iter().enumerate() {
        checker.observe(index + 1, event);
    }
    checker.finish()
}

/// Reads the trail at `path` line by line and checks it.
pub fn check_file(path: &Path) -> Result<Report, AuditError> {
    let read_error = |source| AuditError::Read {
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(read_error)?);
    let mut checker = Checker::new();
    let mut buffer = Vec::new();
    let mut line = 0;
    loop {
        buffer.clear();
        if reader.read_until(b'\n', &mut buffer).map_err(read_error)? == 0 {
            break;
        }
        line += 1;
        if let Some(event) = parse_line(line, &buffer)? {
            checker.observe(line, event);
        }
    }
    checker.finish()
}
