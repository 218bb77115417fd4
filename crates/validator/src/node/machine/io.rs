//! What goes into the machine ([`Event`]) and what comes out ([`Action`]).
//!
//! Every action that needs an answer carries an [`OpId`]; the answer comes
//! back as an event with the same id. An answer whose id the machine is not
//! waiting for (late, repeated, from before an identity switch) is ignored.

use std::time::Duration;

use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_transaction::Transaction;
use towerlock_storage::{
    FenceToken, LeaderSlotFenced, StorageError, Takeover, TowerStored, VoteHistoryStored,
};
use towerlock_tower::{SavedTower, SavedVoteHistory, Slot};
use towerlock_wire::{
    api::{BankNotification, SignedContactInfo, SubmitBlock},
    votor::{VotorNotification, VotorVoteMessage},
};

use super::NodeExit;
use crate::{admin::AdminError, node::schedule::LeaderSchedule};
use solana_slot_history::SlotHistory;

/// What [`Action::CheckVoteHistory`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteHistoryCheck {
    /// How far the stored history reaches (its newest vote, or its root if
    /// newer); `None` when none is stored or it holds nothing.
    pub covered: Option<Slot>,
    /// The newest slot with a landed vote of the identity.
    pub landed: Option<Slot>,
}

/// Why [`Action::CheckVoteHistory`] could not tell.
#[derive(Debug, thiserror::Error)]
pub enum VoteHistoryCheckFailed {
    /// The stored history could not be read.
    #[error("the stored vote history could not be read: {0}")]
    Storage(#[source] StorageError),
    /// The cluster did not say which votes of the identity landed.
    #[error("the cluster did not answer getVotorLastVote: {0}")]
    Cluster(String),
}

/// Wall-clock time, passed in: the machine never reads a clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Now {
    /// Microseconds since the Unix epoch.
    pub unix_micros: u64,
}

impl Now {
    pub fn from_micros(unix_micros: u64) -> Self {
        Self { unix_micros }
    }

    /// Seconds since the Unix epoch (a vote's timestamp).
    pub fn unix_secs(self) -> i64 {
        (self.unix_micros / 1_000_000) as i64
    }

    /// The time elapsed since `earlier` (zero if the clock went back).
    pub fn since(self, earlier: Now) -> Duration {
        Duration::from_micros(self.unix_micros.saturating_sub(earlier.unix_micros))
    }
}

/// Names one storage operation and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpId(pub u64);

/// Names one admin request and its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u64);

/// The cluster streams the node follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Banks,
    Gossip,
    /// Votor's blocks, certificates and slots (Alpenglow clusters).
    Votor,
}

/// An admin request the machine decides on (the admin RPC answers the
/// others, such as `pid`, by itself).
#[derive(Debug)]
pub enum Command {
    SetIdentity {
        keypair: Keypair,
        require_tower: bool,
    },
    AddAuthorizedVoter {
        keypair: Keypair,
    },
    RemoveAllAuthorizedVoters,
    Exit,
}

/// Something that happened.
// One event at a time goes through the machine: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event {
    /// The cluster froze a bank.
    Bank(BankNotification),
    /// A contact info arrived over gossip.
    Contact(SignedContactInfo),
    /// An operator's request.
    Admin {
        request: RequestId,
        command: Command,
    },
    /// The answer to [`Action::TakeOver`].
    TakenOver {
        op: OpId,
        result: Result<Takeover, StorageError>,
    },
    /// The answer to [`Action::CheckTower`]: `None` when no tower is
    /// stored, else the stored tower's last vote.
    TowerChecked {
        op: OpId,
        result: Result<Option<Option<Slot>>, StorageError>,
    },
    /// The answer to [`Action::CheckVoteHistory`].
    VoteHistoryChecked {
        op: OpId,
        result: Result<VoteHistoryCheck, VoteHistoryCheckFailed>,
    },
    /// The answer to [`Action::Renew`].
    Renewed {
        op: OpId,
        result: Result<FenceToken, StorageError>,
    },
    /// The answer to [`Action::Store`]; `elapsed` is how long it took.
    Stored {
        op: OpId,
        result: Result<TowerStored, StorageError>,
        elapsed: Duration,
    },
    /// Votor's stream (Alpenglow clusters).
    Votor(VotorNotification),
    /// The answer to [`Action::StoreVoteHistory`].
    VoteHistoryStored {
        op: OpId,
        result: Result<VoteHistoryStored, StorageError>,
    },
    /// What became of [`Action::SendVotorVote`].
    VotorVoteSent { slot: Slot, accepted: bool },
    /// The answer to [`Action::FenceLeaderSlot`].
    LeaderFenced {
        op: OpId,
        result: Result<LeaderSlotFenced, StorageError>,
    },
    /// The answer to [`Action::FetchLeaderSchedule`].
    LeaderSchedule(Result<LeaderSchedule, String>),
    /// The answer to [`Action::FetchSlotHistory`].
    SlotHistory(Result<Box<SlotHistory>, String>),
    /// What became of [`Action::SendVote`].
    VoteSent { slot: Slot, accepted: bool },
    /// What became of [`Action::SubmitBlock`].
    BlockSubmitted { slot: Slot, accepted: bool },
    /// A stream closed; reopen it.
    StreamClosed { stream: Stream, reason: String },
    /// The cluster could not be reached for long enough to give up.
    ClusterLost { reason: String },
    /// Time passed.
    Tick,
    /// SIGTERM or SIGINT: an orderly exit.
    Shutdown,
}

/// Something the node must do. Actions come out in the order they must be
/// carried out.
#[must_use]
#[allow(clippy::large_enum_variant)] // a handful in flight at most
#[derive(Debug)]
pub enum Action {
    /// Take the fence of `identity` and read its tower (one transaction).
    TakeOver { op: OpId, identity: Pubkey },
    /// Read the tower of `identity` without taking the fence: every
    /// takeover checks first, so a refusal leaves the fence where it is.
    CheckTower { op: OpId, identity: Pubkey },
    /// Alpenglow: read the vote history of `identity` without taking the
    /// fence, and the newest slot with a landed vote of it: a history that
    /// is missing or older is refused before the fence moves.
    CheckVoteHistory { op: OpId, identity: Pubkey },
    /// Move the fence forward under `token` after a write whose outcome is
    /// unknown, so that the write cannot land after a later one.
    Renew { op: OpId, token: FenceToken },
    /// Store `tower` under `token`: before the vote it holds may leave.
    Store {
        op: OpId,
        token: FenceToken,
        tower: SavedTower,
    },
    /// Fence `slot` under `token`: before its block may be produced.
    FenceLeaderSlot {
        op: OpId,
        token: FenceToken,
        slot: Slot,
    },
    /// Alpenglow: store `history` under `token`: before the votes it holds
    /// may leave.
    StoreVoteHistory {
        op: OpId,
        token: FenceToken,
        history: SavedVoteHistory,
    },
    /// Alpenglow: send a Votor vote whose history was stored.
    SendVotorVote(Box<VotorVoteMessage>),
    /// Send a vote whose tower was stored.
    SendVote {
        slot: Slot,
        transaction: Box<Transaction>,
    },
    /// Submit a block for a fenced leader slot.
    SubmitBlock(SubmitBlock),
    /// Read the leader schedule of the epoch containing `slot`.
    FetchLeaderSchedule { identity: Pubkey, slot: Slot },
    /// Read the cluster's SlotHistory sysvar (finalized): where the
    /// tower's votes below the replayed banks stand.
    FetchSlotHistory,
    /// Publish the node's contact info over gossip.
    PublishContact(SignedContactInfo),
    /// Reopen a stream that closed or went silent.
    Reopen(Stream),
    /// Answer an admin request.
    Reply {
        request: RequestId,
        result: Result<(), AdminError>,
    },
    /// Give the fence up: an orderly exit follows, so the next instance
    /// (or `tower import`) finds nobody holding it.
    Release { token: FenceToken },
    /// Stop: `Ok` for an orderly exit, else why.
    Exit(Result<(), NodeExit>),
}
