//! The Alpenglow (SIMD-0326) validator's Votor as a state machine: which
//! votes to cast, and that each leaves only after the vote history holding
//! it is stored under the fence.
//!
//! No tokio, no clock reads, no IO, as the node machine: events go in
//! through [`VotorMachine::handle`] with the time (milliseconds, passed in),
//! actions come out of [`VotorMachine::poll_action`] in the order they must
//! be carried out, and [`VotorMachine::status`] says where it stands.
//!
//! The rules are the paper's and agave's votor (`event_handler`,
//! `voting_utils`), kept in `rules.rs`: notarize the first block of a slot
//! whose parent is ready, skip a window's slots without a vote when they
//! time out, finalize a notarized block this node notarized in a slot it did
//! not give up on, and the fallback votes when the stake says it is safe.
//! Each vote is recorded in the in-memory [`VoteHistory`] before anything
//! else; the rules read the history, so a slot's votes never contradict each
//! other, and after [`Event::Loaded`] they never contradict the votes of an
//! earlier holder of the identity either.
//!
//! Invariants, checked by the step tests and the randomized simulation
//! beside this file:
//! - an [`Action::SendVote`] only follows the receipt of a stored history
//!   that holds that vote ([`PendingVotorVotes::stored`]);
//! - no two votes of the identity are an offence: notarize and skip in one
//!   slot, two notarized blocks in one slot, finalize in a slot it skipped
//!   or voted a fallback in — across reloads of the stored history too.
//!
//! One store is in flight at a time; votes decided meanwhile are recorded
//! and go with the next store.

mod certificates;
mod exit;
#[cfg(test)]
mod harness;
mod io;
mod rules;
#[cfg(test)]
mod simulation;
mod status;
mod store;
#[cfg(test)]
mod tests;
mod vote;
mod window;

use std::collections::{BTreeMap, VecDeque};

use solana_pubkey::Pubkey;
use towerlock_tower::{
    vote_history::{Block, VotePayload},
    Slot, VoteHistory,
};

pub use exit::VotorExit;
pub use io::{Action, Certificate, Event, OpId, SlotTally, StakeBps};
pub use status::{VotorPhase, VotorStatus};
pub use vote::{PendingVotorVotes, SendableVotorVote, VotorReceiptMismatch};
pub use window::{is_first_in_window, window_slots, window_start, Timing, LEADER_WINDOW};

use crate::node::machine::UnavailablePolicy;
use certificates::Certificates;
use window::WindowClocks;

/// What the machine starts from.
#[derive(Debug, Clone)]
pub struct VotorConfig {
    /// The identity that casts the votes and owns the history.
    pub identity: Pubkey,
    /// The block the chain starts from, certified by definition: the parent
    /// of a block whose parent is `None`.
    pub genesis: Block,
    pub timing: Timing,
    /// What to do when a store's outcome is unknown.
    pub unavailable: UnavailablePolicy,
}

/// The store awaiting its answer and the votes its history holds.
#[derive(Debug)]
struct InFlight {
    op: OpId,
    pending: PendingVotorVotes,
}

/// A block this node may notarize in its slot: the first one seen there.
#[derive(Debug, Clone, Copy)]
struct SeenBlock {
    block: Block,
    parent: Block,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    votes_sent: u64,
    stores: u64,
    store_failures: u64,
    /// A second, different block seen in a slot (never notarized).
    duplicate_blocks: u64,
}

pub struct VotorMachine {
    identity: Pubkey,
    genesis: Block,
    timing: Timing,
    unavailable: UnavailablePolicy,
    phase: VotorPhase,
    /// Every vote decided, stored or not: the rules read it.
    history: VoteHistory,
    certificates: Certificates,
    blocks: BTreeMap<Slot, SeenBlock>,
    windows: WindowClocks,
    /// The newest finalized slot: no vote at or below it.
    root: Slot,
    cluster_slot: Option<Slot>,
    in_flight: Option<InFlight>,
    /// Votes recorded in the history and not yet handed to a store.
    queued: Vec<VotePayload>,
    /// A store's outcome was unknown (skip-and-retry): no vote leaves until
    /// a store succeeds.
    skipping: bool,
    /// The next store waits for a tick or a slot, not the next event.
    wait_for_tick: bool,
    next_op: u64,
    newest_sent: Option<VotePayload>,
    counters: Counters,
    actions: VecDeque<Action>,
}

impl VotorMachine {
    /// A machine that votes once the history is [`Event::Loaded`].
    pub fn new(config: VotorConfig) -> Self {
        Self {
            identity: config.identity,
            genesis: config.genesis,
            timing: config.timing,
            unavailable: config.unavailable,
            phase: VotorPhase::AwaitingHistory,
            history: VoteHistory::new(config.identity, 0),
            certificates: Certificates::new(config.genesis),
            blocks: BTreeMap::new(),
            windows: WindowClocks::default(),
            root: 0,
            cluster_slot: None,
            in_flight: None,
            queued: Vec::new(),
            skipping: false,
            wait_for_tick: false,
            next_op: 0,
            newest_sent: None,
            counters: Counters::default(),
            actions: VecDeque::new(),
        }
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn identity(&self) -> Pubkey {
        self.identity
    }

    /// The history as recorded so far, stored or not.
    pub fn history(&self) -> &VoteHistory {
        &self.history
    }

    pub fn is_stopped(&self) -> bool {
        self.phase == VotorPhase::Stopped
    }

    /// Takes in one event at `now_ms`.
    pub fn handle(&mut self, now_ms: u64, event: Event) {
        if self.is_stopped() {
            return;
        }
        match event {
            Event::Loaded { history, landed } => self.on_loaded(now_ms, history, landed),
            Event::Block {
                slot,
                block_id,
                parent,
            } => self.on_block(Block { slot, block_id }, parent),
            Event::Certificate(certificate) => self.on_certificate(now_ms, certificate),
            Event::Tally(tally) => self.on_tally(&tally),
            Event::Slot(slot) => {
                self.cluster_slot = self.cluster_slot.max(Some(slot));
                self.windows.start(slot, now_ms);
                self.wait_for_tick = false;
            }
            Event::Tick => self.wait_for_tick = false,
            Event::Stored { op, result } => self.on_stored(op, result),
        }
        self.advance(now_ms);
    }

    /// After every event, while voting: the timeouts that passed, the
    /// blocks that may now be notarized, then a store of what was recorded.
    fn advance(&mut self, now_ms: u64) {
        if self.phase != VotorPhase::Voting {
            return;
        }
        self.on_timeouts(now_ms);
        self.notarize_pending();
        self.store_queued();
    }

    /// A block seen: the first valid one of a slot is the one this node may
    /// notarize; a second one there is counted, never voted for.
    fn on_block(&mut self, block: Block, parent: Option<Block>) {
        let parent = parent.unwrap_or(self.genesis);
        if parent.slot >= block.slot || block.slot <= self.root {
            return;
        }
        match self.blocks.get(&block.slot) {
            Some(seen) if seen.block != block => self.counters.duplicate_blocks += 1,
            Some(_) => {}
            None => {
                self.blocks.insert(block.slot, SeenBlock { block, parent });
            }
        }
    }

    fn on_certificate(&mut self, now_ms: u64, certificate: Certificate) {
        self.certificates.add(certificate);
        match certificate {
            Certificate::Notarize(block) => {
                if self.phase == VotorPhase::Voting {
                    self.note_notarized(block);
                    self.try_finalize(block);
                }
            }
            Certificate::FastFinalize(block) => {
                if self.phase == VotorPhase::Voting {
                    self.note_notarized(block);
                }
                self.finalized(block.slot);
            }
            Certificate::Finalize(slot) => self.finalized(slot),
            Certificate::NotarizeFallback(_) | Certificate::Skip(_) => {}
        }
        self.note_ready_parents(now_ms);
    }

    /// agave keeps the notarized blocks above the root in the history.
    fn note_notarized(&mut self, block: Block) {
        if block.slot >= self.root {
            self.history.notarized_blocks.insert(block);
        }
    }

    /// Records the windows whose parent is ready and starts their clocks
    /// (agave sets a window's timeouts at ParentReady).
    fn note_ready_parents(&mut self, now_ms: u64) {
        for (slot, parent) in self.certificates.ready_parents(self.root) {
            if slot <= self.root {
                continue;
            }
            self.windows.start(slot, now_ms);
            if self.phase == VotorPhase::Voting {
                self.history
                    .parent_ready_slots
                    .entry(slot)
                    .or_default()
                    .insert(parent);
            }
        }
    }

    /// `slot` is final: no vote at or below it any more, and what lies
    /// below it is forgotten (agave's `set_root`).
    fn finalized(&mut self, slot: Slot) {
        if slot <= self.root {
            return;
        }
        self.root = slot;
        self.prune();
    }

    fn prune(&mut self) {
        let root = self.root;
        let history = &mut self.history;
        history.root = history.root.max(root);
        history.voted.retain(|&s| s >= root);
        history.voted_notar.retain(|&s, _| s >= root);
        history.voted_notar_fallback.retain(|&s, _| s >= root);
        history.voted_skip_fallback.retain(|&s| s >= root);
        history.skipped.retain(|&s| s >= root);
        history.its_over.retain(|&s| s >= root);
        history.votes_cast.retain(|&s, _| s >= root);
        history.notarized_blocks.retain(|b| b.slot >= root);
        history.parent_ready_slots.retain(|&s, _| s >= root);
        // A queued vote below the root is no longer in the history: it
        // could not be released, and is of no use to anyone.
        self.queued.retain(|vote| vote.slot() >= root);
        self.blocks.retain(|&s, _| s > root);
        self.certificates.prune(root);
        self.windows
            .retain(|start| start + LEADER_WINDOW - 1 > root);
    }

    /// The history read under the fence: from now on the rules start from
    /// it. What this machine recorded and did not store was never sent, so
    /// it is dropped with the store in flight, whose answer is now ignored.
    fn on_loaded(&mut self, now_ms: u64, history: Option<VoteHistory>, landed: Option<Slot>) {
        let identity = self.identity;
        if let Some(history) = &history {
            if history.node_pubkey != identity {
                return self.exit(VotorExit::WrongHistory {
                    identity,
                    found: history.node_pubkey,
                });
            }
        }
        // What the history answers for: its votes, and all below its root
        // (final before it was written; no vote goes there again).
        let covered = history
            .as_ref()
            .map(|h| h.last_voted_slot().unwrap_or(h.root).max(h.root));
        if let Some(landed) = landed {
            if covered.is_none_or(|covered| covered < landed) {
                return self.exit(VotorExit::HistoryOlderThanLanded {
                    identity,
                    covered,
                    landed,
                });
            }
        }
        self.history = history.unwrap_or_else(|| VoteHistory::new(identity, self.root));
        self.root = self.root.max(self.history.root);
        self.in_flight = None;
        self.queued.clear();
        self.skipping = false;
        self.wait_for_tick = false;
        self.phase = VotorPhase::Voting;
        self.prune();
        self.note_ready_parents(now_ms);
        tracing::info!(
            %identity,
            newest_vote = ?self.history.last_voted_slot(),
            root = self.root,
            "vote history loaded: voting"
        );
    }

    fn exit(&mut self, reason: VotorExit) {
        if !self.is_stopped() {
            tracing::error!(%reason, "votor stops");
            self.phase = VotorPhase::Stopped;
            self.actions.push_back(Action::Exit(reason));
        }
    }
}
