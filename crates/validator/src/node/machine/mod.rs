//! The node as a state machine: every decision of the validator — when it
//! may vote, take over, produce, skip, exit — and nothing else.
//!
//! No tokio, no clock reads, no IO: events go in through
//! [`NodeMachine::handle`] (with the time, passed in), actions come out of
//! [`NodeMachine::poll_action`], and [`NodeMachine::status`] says where it
//! stands. The driver (`node::driver`) only carries actions out and feeds
//! their answers back. The invariants, checked by the step tests and the
//! randomized simulation beside this file:
//! - a [`Action::SendVote`] only follows a store receipt for a tower that
//!   contains that vote (`PendingVote::stored`);
//! - a [`Action::SubmitBlock`] only follows a fence receipt for that slot,
//!   and no slot is produced twice, across identity switches too;
//! - the tower never loses a vote that was sent.
//!
//! One storage operation is in flight at a time: a takeover, a store and a
//! leader fence never race each other inside one node, so an identity switch
//! cannot interleave with a vote of the previous identity.

mod admin;
mod alpenglow;
mod exit;
#[cfg(test)]
mod harness;
mod history;
mod io;
mod produce;
mod role;
#[cfg(test)]
mod simulation;
mod status;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_alpenglow;

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use towerlock_storage::{FenceToken, InstanceId, StorageError, TowerStored};
use towerlock_tower::{Recorded, SavedTower, Slot, Tower};
use towerlock_wire::api::{BankNotification, ContactAddresses, ContactInfo, SignedContactInfo};

pub use alpenglow::{Alpenglow, Consensus};
pub use exit::NodeExit;
pub use io::{
    Action, Command, Event, Now, OpId, RequestId, Stream, VoteHistoryCheck, VoteHistoryCheckFailed,
};

use super::{
    decide::{choose_vote, is_newer_instance_of, may_vote, HotSpareReason, VoteChoice},
    forks::ForkView,
    schedule::LeaderSchedule,
    vote::PendingVote,
};

/// What to do when the tower cannot be stored because storage did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnavailablePolicy {
    /// Exit with status 1 (agave's behaviour, the seed's).
    Exit,
    /// Stay up without voting; vote again once a store succeeds.
    SkipVote,
}

/// Silence on the bank stream after which it is reopened: banks come every
/// slot, so a long silence means a dead connection.
pub const BANK_SILENCE: Duration = Duration::from_secs(10);

/// How often the gossip stream is reopened. Gossip is pushed only when a
/// contact info changes, so a stream that died looks like a quiet one; a
/// fresh subscription replays every contact info, and a newer instance of
/// this identity is then seen whatever happened to the old stream.
pub const GOSSIP_REFRESH: Duration = Duration::from_secs(30);

/// What the machine starts from.
pub struct MachineConfig {
    pub identity: Keypair,
    pub vote_account: Pubkey,
    pub authorized_voters: Vec<Keypair>,
    /// This process's instance id (as written to the fence).
    pub instance: InstanceId,
    pub unavailable: UnavailablePolicy,
    /// How close to the cluster's slot the node must be to take over.
    pub catchup_slots: u64,
    /// The cluster's slot when the node subscribed.
    pub start_slot: Slot,
    /// The node's own RPC address, advertised in its contact info.
    pub rpc_addr: Option<SocketAddr>,
    /// Build a tower from the vote account's landed votes when none is
    /// stored or the stored one is older (`--allow-tower-rebuild`).
    pub allow_tower_rebuild: bool,
    /// Stay a hot spare until `set-identity`, even when the node may vote
    /// (`--start-as-hot-spare`).
    pub start_as_hot_spare: bool,
    /// TowerBFT, or Alpenglow with Votor's timing.
    pub consensus: Consensus,
}

/// The node holds the fence of its identity with this tower.
#[derive(Debug)]
struct Fence {
    token: FenceToken,
    tower: Tower,
    /// The last store got no answer: no vote until one succeeds.
    skipping: bool,
    /// A write under `token` has an unknown outcome: renew the fence before
    /// the next write, so that write can never land after a later one.
    renew: bool,
    /// The token is stale but the fence is this instance's own: take it
    /// again before the next write.
    retake: bool,
}

/// What the node does about votes.
#[allow(clippy::large_enum_variant)] // one per node
#[derive(Debug)]
enum Activity {
    /// Not in a role yet: catching up, or caught up and taking the fence.
    CatchingUp,
    /// Replaying without voting.
    HotSpare(HotSpareReason),
    /// Holding the fence.
    Fenced(Fence),
}

/// Why a takeover was asked for, so its answer goes to the right place.
#[allow(clippy::large_enum_variant)] // one in flight at most
#[derive(Debug)]
enum TakeoverFor {
    /// The node's own identity, once caught up (or a hot spare that may
    /// vote now).
    Activate,
    /// `setIdentity`.
    SetIdentity {
        request: RequestId,
        keypair: Keypair,
        require_tower: bool,
    },
}

/// The storage operation awaiting its answer.
#[derive(Debug)]
enum InFlight {
    Takeover {
        op: OpId,
        purpose: TakeoverFor,
        /// Alpenglow: the newest landed vote the vote-history check read.
        landed: Option<Slot>,
    },
    CheckTower {
        op: OpId,
        purpose: TakeoverFor,
    },
    CheckVoteHistory {
        op: OpId,
        purpose: TakeoverFor,
    },
    Renew {
        op: OpId,
    },
    Store {
        op: OpId,
        vote: PendingVote,
        voter: Pubkey,
    },
    Fence {
        op: OpId,
        slot: Slot,
    },
    /// A store of the Votor machine's vote history.
    VoteHistory {
        op: OpId,
    },
}

/// Counters the status reports.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    votes_sent: u64,
    votes_rejected: u64,
    produced: u64,
    skipped: u64,
}

pub struct NodeMachine {
    identity: Arc<Keypair>,
    vote_account: Pubkey,
    voters: Vec<Arc<Keypair>>,
    instance: String,
    unavailable: UnavailablePolicy,
    catchup_slots: u64,
    start_slot: Slot,
    rpc_addr: Option<SocketAddr>,
    /// This instance's outset for its current identity (µs).
    outset: u64,
    /// The newest outset seen in gossip per identity: a new outset must be
    /// newer even if this host's clock is behind the other's.
    outsets_seen: HashMap<Pubkey, u64>,
    forks: ForkView,
    caught_up: bool,
    activity: Activity,
    /// Held the fence, then lost the right to vote: no takeover until
    /// `set-identity` or a restart.
    stepped_down: bool,
    allow_tower_rebuild: bool,
    in_flight: Option<InFlight>,
    next_op: u64,
    /// Admin requests waiting for the storage operation in flight.
    queued: VecDeque<(RequestId, Command)>,
    /// After storage did not answer: try again at the next bank, not at once.
    wait_for_bank: bool,
    schedule: LeaderSchedule,
    schedule_requested: bool,
    /// A SlotHistory was asked for and has not come back yet.
    history_requested: bool,
    /// The leader slot in progress, when it may be ours to produce.
    to_produce: Option<Slot>,
    /// The last leader slot fenced per identity: never produced again.
    produced: HashMap<Pubkey, Slot>,
    last_vote_slot: Option<Slot>,
    loaded_last_vote: Option<Slot>,
    last_store: Option<Duration>,
    store_failures: status::StoreFailures,
    counters: Counters,
    last_bank_at: Now,
    gossip_opened_at: Now,
    actions: VecDeque<Action>,
    stopped: bool,
    consensus: Consensus,
    /// Votor's stream since the newest finalized block (Alpenglow).
    votor_log: alpenglow::VotorLog,
    /// The Votor machine, while the fence is held on Alpenglow.
    voting: Option<alpenglow::Voting>,
}

impl NodeMachine {
    pub fn new(config: MachineConfig, now: Now) -> Self {
        Self {
            identity: Arc::new(config.identity),
            vote_account: config.vote_account,
            voters: config.authorized_voters.into_iter().map(Arc::new).collect(),
            instance: config.instance.to_string(),
            unavailable: config.unavailable,
            catchup_slots: config.catchup_slots,
            start_slot: config.start_slot,
            rpc_addr: config.rpc_addr,
            outset: now.unix_micros,
            outsets_seen: HashMap::new(),
            forks: ForkView::default(),
            caught_up: false,
            activity: Activity::CatchingUp,
            // Started as a hot spare: as if it had stepped down, it takes
            // the fence only through set-identity.
            stepped_down: config.start_as_hot_spare,
            allow_tower_rebuild: config.allow_tower_rebuild,
            in_flight: None,
            next_op: 0,
            queued: VecDeque::new(),
            wait_for_bank: false,
            schedule: LeaderSchedule::default(),
            schedule_requested: false,
            history_requested: false,
            to_produce: None,
            produced: HashMap::new(),
            last_vote_slot: None,
            loaded_last_vote: None,
            last_store: None,
            store_failures: status::StoreFailures::default(),
            counters: Counters::default(),
            last_bank_at: now,
            gossip_opened_at: now,
            actions: VecDeque::new(),
            stopped: false,
            consensus: config.consensus,
            votor_log: alpenglow::VotorLog::default(),
            voting: None,
        }
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The identity keypair (the driver signs nothing itself; this is for
    /// tests and tools that check who the node is).
    pub fn identity(&self) -> Pubkey {
        self.identity.pubkey()
    }

    /// Whether the node has stopped (an exit action was emitted).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Takes in one event.
    pub fn handle(&mut self, now: Now, event: Event) {
        if self.stopped {
            return;
        }
        match event {
            Event::Bank(bank) => self.on_bank(now, bank),
            Event::Contact(contact) => self.on_contact(now, &contact),
            Event::Admin { request, command } => self.on_admin(now, request, command),
            Event::TakenOver { op, result } => self.on_taken_over(now, op, result),
            Event::TowerChecked { op, result } => self.on_tower_checked(now, op, result),
            Event::VoteHistoryChecked { op, result } => {
                self.on_vote_history_checked(now, op, result)
            }
            Event::Renewed { op, result } => self.on_renewed(op, result),
            Event::Stored {
                op,
                result,
                elapsed,
            } => self.on_stored(op, result, elapsed),
            Event::LeaderFenced { op, result } => self.on_leader_fenced(op, result),
            Event::Votor(notification) => self.on_votor(now, notification),
            Event::VoteHistoryStored { op, result } => self.on_vote_history_stored(now, op, result),
            Event::VotorVoteSent { slot, accepted } => self.on_vote_sent(slot, accepted),
            Event::LeaderSchedule(result) => self.on_leader_schedule(result),
            Event::SlotHistory(result) => self.on_slot_history(result),
            Event::VoteSent { slot, accepted } => self.on_vote_sent(slot, accepted),
            Event::BlockSubmitted { slot, accepted } => self.on_block_submitted(slot, accepted),
            Event::StreamClosed { stream, reason } => {
                tracing::warn!(?stream, %reason, "subscription lost: reconnecting");
                self.actions.push_back(Action::Reopen(stream));
            }
            Event::ClusterLost { reason } => self.exit(Err(NodeExit::ClusterLost { reason })),
            Event::Tick => {
                self.on_tick(now);
                self.votor_tick(now);
            }
            Event::Shutdown => {
                tracing::info!("shutting down");
                self.exit(Ok(()));
            }
        }
        self.advance(now);
    }

    fn next_op(&mut self) -> OpId {
        self.next_op += 1;
        OpId(self.next_op)
    }

    fn exit(&mut self, result: Result<(), NodeExit>) {
        if !self.stopped {
            self.stopped = true;
            // An orderly exit gives the fence up; a node stopped by an error
            // leaves it as it is (it may not hold it any more).
            if let (Ok(()), Activity::Fenced(fence)) = (&result, &self.activity) {
                self.actions.push_back(Action::Release {
                    token: fence.token.clone(),
                });
            }
            self.actions.push_back(Action::Exit(result));
        }
    }

    fn on_bank(&mut self, now: Now, bank: BankNotification) {
        // Malformed banks were skipped at decode.
        self.forks.insert(&bank);
        self.last_bank_at = now;
        self.wait_for_bank = false;
        // Produce only for the slot now in progress: after the newest bank,
        // at the head of the cluster. Replayed banks are history.
        let live = bank.slot == self.forks.newest && bank.slot >= bank.tip;
        self.to_produce =
            (live && self.forks.get(bank.slot + 1).is_none()).then_some(bank.slot + 1);
        if !self.caught_up {
            // The cluster's tip as of this notification is where it is now;
            // take over only once this close to it (and to where it was
            // when we subscribed).
            let present = bank.tip.max(self.start_slot.saturating_sub(1));
            if self.forks.newest + self.catchup_slots >= present {
                tracing::info!(slot = self.forks.newest, "caught up with the cluster");
                self.caught_up = true;
            }
        }
    }

    fn on_tick(&mut self, now: Now) {
        if now.since(self.last_bank_at) >= BANK_SILENCE {
            tracing::warn!(silence = ?BANK_SILENCE, "no bank: reopening the bank stream");
            self.last_bank_at = now;
            self.actions.push_back(Action::Reopen(Stream::Banks));
        }
        if now.since(self.gossip_opened_at) >= GOSSIP_REFRESH {
            self.gossip_opened_at = now;
            self.actions.push_back(Action::Reopen(Stream::Gossip));
        }
    }

    fn on_contact(&mut self, now: Now, contact: &SignedContactInfo) {
        let Some(signer) = contact.verify() else {
            return;
        };
        if contact.info.instance != self.instance {
            let seen = self.outsets_seen.entry(signer).or_default();
            *seen = (*seen).max(contact.info.outset);
        }
        let identity = self.identity();
        if is_newer_instance_of(&identity, &self.instance, self.outset, contact) {
            tracing::error!(
                other_instance = %contact.info.instance,
                "duplicate running instances of the same validator node: {identity}"
            );
            let ahead = exit::ahead_of_clock(contact.info.outset, now);
            self.exit(Err(NodeExit::DuplicateInstance { identity, ahead }));
        }
    }

    /// Does the next thing when no storage operation is in flight: a queued
    /// admin request, the role, a vote, a leader slot — in that order.
    fn advance(&mut self, now: Now) {
        while !self.stopped && self.in_flight.is_none() {
            if let Some((request, command)) = self.queued.pop_front() {
                self.start_admin(now, request, command);
                continue;
            }
            if !self.caught_up || self.wait_for_bank || !self.votor_ready() {
                return;
            }
            let may_vote = self.may_vote_as(&self.identity());
            self.settle_role(now, may_vote.as_ref().map(|_| ()).map_err(Clone::clone));
            if self.in_flight.is_some() {
                return;
            }
            if self.renew() {
                return;
            }
            if let Ok(voter) = may_vote {
                let storing = if self.is_alpenglow() {
                    self.vote_votor()
                } else {
                    self.vote(now, voter)
                };
                if storing {
                    return;
                }
            }
            self.produce();
            return;
        }
    }

    /// Whether `identity` may vote with the vote account as of the newest
    /// bank, and as which voter.
    fn may_vote_as(&self, identity: &Pubkey) -> Result<Pubkey, HotSpareReason> {
        let state = self
            .forks
            .newest_bank()
            .and_then(|bank| bank.vote_account(&self.vote_account));
        let voters: Vec<Pubkey> = self.voters.iter().map(|k| k.pubkey()).collect();
        may_vote(identity, &self.vote_account, state, &voters)
    }

    /// Records a vote when the tower allows one and asks for its store.
    /// Returns whether a store is now in flight.
    fn vote(&mut self, now: Now, voter: Pubkey) -> bool {
        let identity = self.identity();
        self.request_slot_history();
        let Activity::Fenced(fence) = &mut self.activity else {
            return false;
        };
        let slot = match choose_vote(&fence.tower, &self.forks) {
            VoteChoice::Vote { slot } => slot,
            other => {
                tracing::trace!(?other, "no vote");
                return false;
            }
        };
        let Some(bank) = self.forks.get(slot) else {
            return false;
        };
        let Recorded::Vote(recorded) =
            fence
                .tower
                .record_vote(slot, bank.hash, bank.block_id, now.unix_secs())
        else {
            return false;
        };
        let vote = PendingVote::new(identity, slot, recorded.tower_sync, bank.blockhash);
        let saved = match SavedTower::new(&fence.tower, &self.identity) {
            Ok(saved) => saved,
            Err(err) => {
                self.exit(Err(NodeExit::CannotSignTower {
                    identity,
                    reason: err.to_string(),
                }));
                return true;
            }
        };
        let token = fence.token.clone();
        let op = self.next_op();
        self.in_flight = Some(InFlight::Store { op, vote, voter });
        self.actions.push_back(Action::Store {
            op,
            token,
            tower: saved,
        });
        true
    }

    fn on_stored(
        &mut self,
        op: OpId,
        result: Result<TowerStored, StorageError>,
        elapsed: Duration,
    ) {
        let Some(InFlight::Store {
            op: expected,
            vote,
            voter,
        }) = self
            .in_flight
            .take_if(|f| matches!(f, InFlight::Store { op: o, .. } if *o == op))
        else {
            return;
        };
        debug_assert_eq!(expected, op);
        match result {
            Ok(receipt) => {
                self.last_store = Some(elapsed);
                self.storage_answers();
                self.send(vote, receipt, voter);
            }
            Err(err) => self.storage_failed(err),
        }
    }

    /// Sends the vote the receipt covers, signed by the identity and `voter`.
    fn send(&mut self, vote: PendingVote, receipt: TowerStored, voter: Pubkey) {
        let identity = self.identity();
        let slot = vote.slot();
        let sendable = match vote.stored(receipt) {
            Ok(sendable) => sendable,
            Err(mismatch) => {
                return self.exit(Err(NodeExit::ReceiptMismatch {
                    identity,
                    slot,
                    stored: mismatch.stored_vote,
                }))
            }
        };
        self.last_vote_slot = Some(slot);
        // The voter keypair may have been removed while the store was in
        // flight: then the vote stays in the tower, unsent (only stricter).
        let Some(voter) = self.voters.iter().find(|k| k.pubkey() == voter).cloned() else {
            return;
        };
        let transaction = sendable.transaction(&self.identity, &voter, &self.vote_account);
        self.actions.push_back(Action::SendVote {
            slot,
            transaction: Box::new(transaction),
        });
    }

    fn on_vote_sent(&mut self, slot: Slot, accepted: bool) {
        self.counters.votes_sent += 1;
        if accepted {
            tracing::debug!(slot, "voted");
        } else {
            // The tower already holds it, which only makes us stricter.
            self.counters.votes_rejected += 1;
            tracing::warn!(slot, "vote not accepted");
        }
    }

    /// Asks for a renewed fence when a write's outcome is unknown. Returns
    /// whether a renewal is now in flight.
    fn renew(&mut self) -> bool {
        let Activity::Fenced(fence) = &self.activity else {
            return false;
        };
        if fence.retake {
            self.check_tower(TakeoverFor::Activate);
            return true;
        }
        if !fence.renew {
            return false;
        }
        let token = fence.token.clone();
        let op = self.next_op();
        self.in_flight = Some(InFlight::Renew { op });
        self.actions.push_back(Action::Renew { op, token });
        true
    }

    fn on_renewed(&mut self, op: OpId, result: Result<FenceToken, StorageError>) {
        if self
            .in_flight
            .take_if(|f| matches!(f, InFlight::Renew { op: o } if *o == op))
            .is_none()
        {
            return;
        }
        match result {
            Ok(token) => {
                if let Activity::Fenced(fence) = &mut self.activity {
                    tracing::info!(
                        revision = token.revision,
                        "fence renewed after an unknown outcome"
                    );
                    fence.token = token;
                    fence.renew = false;
                }
            }
            Err(err) => self.storage_failed(err),
        }
    }

    /// Errors skip-vote rides out (it promises to stay up): no answer, an
    /// etcd error (e.g. the NOSPACE alarm), a busy tower, a file error.
    fn is_transient(&self, err: &StorageError) -> bool {
        self.unavailable == UnavailablePolicy::SkipVote
            && matches!(
                err,
                StorageError::Unavailable { .. }
                    | StorageError::Etcd { .. }
                    | StorageError::Busy { .. }
                    | StorageError::Io { .. }
            )
    }

    /// A store or fence answered: out of skip-vote.
    fn storage_answers(&mut self) {
        if let Activity::Fenced(fence) = &mut self.activity {
            if fence.skipping {
                tracing::info!("tower storage answers again: voting");
                fence.skipping = false;
            }
        }
    }

    /// A fenced write failed: the exit decisions.
    fn storage_failed(&mut self, err: StorageError) {
        match err {
            // The fence moved to this very instance: a renewal of ours
            // landed whose answer was lost. Nobody else holds it; in
            // skip-vote take it again (the tower check first), else exit as
            // for any unknown outcome.
            StorageError::LockLost { by, .. } if by.id.to_string() == self.instance => {
                self.store_failures.unavailable += 1;
                if let Activity::Fenced(fence) = &mut self.activity {
                    fence.skipping = true;
                    fence.retake = true;
                }
                if self.unavailable == UnavailablePolicy::Exit {
                    self.unavailable(StorageError::Unavailable {
                        reason: "a renewal of this instance landed unseen".into(),
                    });
                }
            }
            StorageError::LockLost { identity, by } => {
                self.store_failures.lock_lost += 1;
                self.exit(Err(NodeExit::LockLost { identity, by }));
            }
            err if err.is_unavailable() || self.is_transient(&err) => {
                if err.is_unavailable() {
                    self.store_failures.unavailable += 1;
                } else {
                    self.store_failures.other += 1;
                }
                if let Activity::Fenced(fence) = &mut self.activity {
                    fence.skipping = true;
                    fence.renew = true;
                }
                self.unavailable(err);
            }
            err => {
                self.store_failures.other += 1;
                self.exit(Err(NodeExit::StorageFailed { source: err }));
            }
        }
    }

    /// Storage did not answer (or, in skip-vote, failed for a passing
    /// reason): exit, or wait for the next bank (skip-vote).
    fn unavailable(&mut self, err: StorageError) {
        match self.unavailable {
            UnavailablePolicy::Exit => self.exit(Err(NodeExit::StorageUnavailable { source: err })),
            UnavailablePolicy::SkipVote => {
                tracing::warn!(error = %err, "tower storage unavailable: not voting until a store succeeds");
                self.wait_for_bank = true;
            }
        }
    }

    /// An outset newer than `now` and than any seen for `identity`.
    fn next_outset(&self, identity: &Pubkey, now: Now) -> u64 {
        let seen = self.outsets_seen.get(identity).copied().unwrap_or(0);
        if let Some(ahead) = exit::ahead_of_clock(seen, now) {
            // agave's rule still holds (the new outset must be the newest),
            // but it carries another machine's clock error forward.
            tracing::warn!(
                %identity,
                ahead_s = ahead.as_secs_f64(),
                "an instance of this identity started ahead of this machine's clock; \
                 this instance's start time follows it (check NTP on both machines)"
            );
        }
        now.unix_micros.max(seen + 1).max(self.outset + 1)
    }

    fn publish_contact(&mut self) {
        let contact = ContactInfo {
            pubkey: self.identity(),
            outset: self.outset,
            instance: self.instance.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            addresses: ContactAddresses {
                rpc: self.rpc_addr.map(|a| a.to_string()),
                ..ContactAddresses::default()
            },
        }
        .sign(&self.identity);
        self.actions.push_back(Action::PublishContact(contact));
    }
}
