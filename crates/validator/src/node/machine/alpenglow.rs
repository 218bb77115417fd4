//! The node on an Alpenglow cluster: the fence, the roles and the admin
//! commands stay the node machine's; the votes are the Votor machine's
//! (`node::votor`), which the node holds while it holds the fence.
//!
//! - Votor's stream (`votorSubscribe`) is kept in a log from the newest
//!   finalized block up, whether the node votes or not, so that a node that
//!   takes an identity over (at start, after `set-identity`) starts a Votor
//!   machine that knows the chain: the finalized block is its genesis, the
//!   log is replayed into it.
//! - Before the fence moves, the stored history is checked against the
//!   newest slot the cluster shows this identity voted in
//!   (`CheckVoteHistory`, `getVotorLastVote`); the history the takeover
//!   then read, with that slot, is what the machine is `Loaded` with.
//! - The Votor machine's stores are the node's one storage operation in
//!   flight, under the fence's token; after an unknown outcome the node
//!   renews the fence before any next write, as for towers. A vote leaves
//!   only through a `SendableVotorVote`, made from the store's receipt.

use solana_hash::Hash;
use solana_pubkey::Pubkey;
use towerlock_storage::{StorageError, VoteHistoryStored};
use towerlock_tower::{
    vote_history::{Block, VotePayload},
    SavedVoteHistory, Slot, VoteHistory,
};
use towerlock_wire::votor::{
    CertificateKind, VotorCertificate, VotorNotification, VotorVote, VotorVoteMessage,
};

use super::{Action, Activity, InFlight, NodeExit, NodeMachine, Now, OpId, VoteHistoryCheck};
use crate::node::votor::{
    self, Certificate, Timing, VotorConfig, VotorExit, VotorMachine, VotorStatus,
};

/// Which consensus the cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consensus {
    /// TowerBFT: TowerSync votes, the tower behind the fence.
    TowerBft,
    /// Alpenglow's Votor: Votor votes, the vote history behind the fence.
    Alpenglow(Alpenglow),
}

/// How the node votes on Alpenglow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alpenglow {
    pub timing: Timing,
    /// Refuse to vote from a vote history that is missing or older than the
    /// identity's landed votes (agave's default; off with
    /// `--do-not-require-vote-history`, which may vote against them).
    pub require_vote_history: bool,
}

/// Votor's stream as the node keeps it: the newest finalized block and what
/// came after it.
#[derive(Debug, Default)]
pub(super) struct VotorLog {
    /// The newest finalized block (the genesis block until one is).
    base: Option<Block>,
    /// Blocks and certificates above `base`, in the order they came.
    entries: Vec<votor::Event>,
    /// The cluster's slot, as last heard.
    slot: Option<Slot>,
}

/// The Votor machine of the identity the node holds the fence of.
pub(super) struct Voting {
    machine: VotorMachine,
    /// Its genesis: the finalized block when it started (a block built on
    /// it has no parent for the machine).
    genesis: Block,
}

impl VotorLog {
    fn record(&mut self, notification: &VotorNotification) {
        match *notification {
            VotorNotification::Block(block) => {
                if self.base.is_none() && block.slot == 0 {
                    self.base = Some(Block {
                        slot: 0,
                        block_id: block.block_id,
                    });
                } else {
                    self.entries.push(block_event(&block, None));
                }
            }
            VotorNotification::Certificate(certificate) => {
                if let Some(certificate) = certificate_of(&certificate) {
                    self.entries.push(votor::Event::Certificate(certificate));
                }
            }
            VotorNotification::Finalized { slot, block_id, .. } => {
                if self.base.is_none_or(|base| base.slot < slot) {
                    self.base = Some(Block { slot, block_id });
                    self.entries.retain(|entry| entry_slot(entry) > slot);
                }
            }
            VotorNotification::Slot { slot } => self.slot = self.slot.max(Some(slot)),
        }
    }
}

/// The slot an entry of the log is about.
fn entry_slot(entry: &votor::Event) -> Slot {
    match entry {
        votor::Event::Block { slot, .. } => *slot,
        votor::Event::Certificate(certificate) => match *certificate {
            Certificate::Notarize(block)
            | Certificate::NotarizeFallback(block)
            | Certificate::FastFinalize(block) => block.slot,
            Certificate::Skip(slot) | Certificate::Finalize(slot) => slot,
        },
        _ => Slot::MAX,
    }
}

/// A block of the stream as the Votor machine takes it; its parent is
/// `None` when it is the machine's genesis.
fn block_event(block: &towerlock_wire::votor::VotorBlock, genesis: Option<Block>) -> votor::Event {
    let parent = Block {
        slot: block.parent_slot,
        block_id: block.parent_block_id,
    };
    votor::Event::Block {
        slot: block.slot,
        block_id: block.block_id,
        parent: (Some(parent) != genesis).then_some(parent),
    }
}

/// A certificate of the stream as the Votor machine takes it.
fn certificate_of(certificate: &VotorCertificate) -> Option<Certificate> {
    let block = |block_id: Option<Hash>| {
        block_id.map(|block_id| Block {
            slot: certificate.slot,
            block_id,
        })
    };
    Some(match certificate.kind {
        CertificateKind::Notarization => Certificate::Notarize(block(certificate.block_id)?),
        CertificateKind::NotarizeFallback => {
            Certificate::NotarizeFallback(block(certificate.block_id)?)
        }
        CertificateKind::FastFinalization => {
            Certificate::FastFinalize(block(certificate.block_id)?)
        }
        CertificateKind::Skip => Certificate::Skip(certificate.slot),
        CertificateKind::Finalization => Certificate::Finalize(certificate.slot),
    })
}

/// A vote of the history as the cluster's message carries it.
fn wire_vote(payload: &VotePayload) -> Option<VotorVote> {
    Some(match *payload {
        VotePayload::Notar { block, .. } => VotorVote::Notarize {
            slot: block.slot,
            block_id: block.block_id,
        },
        VotePayload::NotarFallback { block, .. } => VotorVote::NotarizeFallback {
            slot: block.slot,
            block_id: block.block_id,
        },
        VotePayload::Finalize { slot, .. } => VotorVote::Finalize { slot },
        VotePayload::Skip { slot, .. } => VotorVote::Skip { slot },
        VotePayload::SkipFallback { slot, .. } => VotorVote::SkipFallback { slot },
        // Never cast on a cluster that starts in Alpenglow.
        VotePayload::Genesis { .. } => return None,
    })
}

fn now_ms(now: Now) -> u64 {
    now.unix_micros / 1000
}

impl NodeMachine {
    fn alpenglow(&self) -> Option<Alpenglow> {
        match self.consensus {
            Consensus::Alpenglow(alpenglow) => Some(alpenglow),
            Consensus::TowerBft => None,
        }
    }

    pub(super) fn is_alpenglow(&self) -> bool {
        self.alpenglow().is_some()
    }

    /// Whether the node may settle its role: on Alpenglow, once Votor's
    /// stream has brought its first (finalized) block, so that a takeover
    /// starts a Votor machine that knows the chain.
    pub(super) fn votor_ready(&self) -> bool {
        !self.is_alpenglow() || self.votor_log.base.is_some()
    }

    /// Why the vote history `check` found may not be voted from, if it may
    /// not: agave's rule, unless `--do-not-require-vote-history`.
    pub(super) fn vote_history_refusal(
        &self,
        identity: Pubkey,
        check: VoteHistoryCheck,
    ) -> Option<VotorExit> {
        let require = self.alpenglow()?.require_vote_history;
        let landed = check.landed?;
        (require && check.covered.is_none_or(|covered| covered < landed)).then_some(
            VotorExit::HistoryOlderThanLanded {
                identity,
                covered: check.covered,
                landed,
            },
        )
    }

    /// A Votor notification: into the log, and to the machine that votes.
    pub(super) fn on_votor(&mut self, now: Now, notification: VotorNotification) {
        self.votor_log.record(&notification);
        let Some(voting) = &mut self.voting else {
            return;
        };
        let event = match notification {
            VotorNotification::Block(block) => block_event(&block, Some(voting.genesis)),
            VotorNotification::Certificate(certificate) => match certificate_of(&certificate) {
                Some(certificate) => votor::Event::Certificate(certificate),
                None => return,
            },
            VotorNotification::Slot { slot } => votor::Event::Slot(slot),
            VotorNotification::Finalized { .. } => return,
        };
        voting.machine.handle(now_ms(now), event);
    }

    /// Time passed: the Votor machine's timeouts.
    pub(super) fn votor_tick(&mut self, now: Now) {
        if let Some(voting) = &mut self.voting {
            voting.machine.handle(now_ms(now), votor::Event::Tick);
        }
    }

    /// The fence of `identity` is held with `history` read under it: a
    /// Votor machine for it, replayed from the log and loaded with the
    /// history and `landed`, the newest landed vote the check before the
    /// takeover read (a vote that landed since was stored before it was
    /// sent, so the history holds it).
    pub(super) fn start_voting(
        &mut self,
        now: Now,
        identity: Pubkey,
        history: Option<VoteHistory>,
        landed: Option<Slot>,
    ) {
        let Some(Alpenglow {
            timing,
            require_vote_history,
        }) = self.alpenglow()
        else {
            return;
        };
        // `votor_ready` held before the takeover.
        let Some(genesis) = self.votor_log.base else {
            return;
        };
        let mut machine = VotorMachine::new(VotorConfig {
            identity,
            genesis,
            timing,
            unavailable: self.unavailable,
        });
        let ms = now_ms(now);
        for entry in &self.votor_log.entries {
            let entry = match entry {
                // Blocks were logged before the genesis was known.
                votor::Event::Block {
                    slot,
                    block_id,
                    parent,
                } => votor::Event::Block {
                    slot: *slot,
                    block_id: *block_id,
                    parent: parent.filter(|p| *p != genesis),
                },
                votor::Event::Certificate(certificate) => votor::Event::Certificate(*certificate),
                _ => continue,
            };
            machine.handle(ms, entry);
        }
        if let Some(slot) = self.votor_log.slot {
            machine.handle(ms, votor::Event::Slot(slot));
        }
        // With --do-not-require-vote-history the check let an older history
        // through; the machine must not refuse it again.
        let landed = landed.filter(|_| require_vote_history);
        machine.handle(ms, votor::Event::Loaded { history, landed });
        self.voting = Some(Voting { machine, genesis });
    }

    /// The Votor machine's next actions, while no other storage operation
    /// is in flight. Returns whether a store is now in flight.
    pub(super) fn vote_votor(&mut self) -> bool {
        let Activity::Fenced(fence) = &self.activity else {
            return false;
        };
        let token = fence.token.clone();
        let Some(voting) = &mut self.voting else {
            return false;
        };
        while let Some(action) = voting.machine.poll_action() {
            match action {
                // After a write whose outcome is unknown the fence was
                // renewed before this (`renew` in `advance`).
                votor::Action::StoreVoteHistory { op, history } => {
                    let saved = match SavedVoteHistory::new(&history, &self.identity) {
                        Ok(saved) => saved,
                        Err(err) => {
                            let identity = self.identity();
                            self.exit(Err(NodeExit::CannotSignTower {
                                identity,
                                reason: err.to_string(),
                            }));
                            return true;
                        }
                    };
                    self.in_flight = Some(InFlight::VoteHistory { op });
                    self.actions.push_back(Action::StoreVoteHistory {
                        op,
                        token,
                        history: saved,
                    });
                    return true;
                }
                votor::Action::SendVote(sendable) => {
                    let Some(vote) = wire_vote(sendable.payload()) else {
                        continue;
                    };
                    let message = VotorVoteMessage::new_signed(
                        &self.identity,
                        self.vote_account,
                        vote,
                        &self.instance,
                    );
                    self.last_vote_slot = self.last_vote_slot.max(Some(sendable.slot()));
                    self.actions
                        .push_back(Action::SendVotorVote(Box::new(message)));
                }
                votor::Action::Exit(reason) => {
                    self.votor_exit(reason);
                    return true;
                }
            }
        }
        false
    }

    /// The answer to [`Action::StoreVoteHistory`].
    pub(super) fn on_vote_history_stored(
        &mut self,
        now: Now,
        op: OpId,
        result: Result<VoteHistoryStored, StorageError>,
    ) {
        if self
            .in_flight
            .take_if(|f| matches!(f, InFlight::VoteHistory { op: o } if *o == op))
            .is_none()
        {
            return;
        }
        match &result {
            Ok(_) => self.storage_answers(),
            // The write may still land: the fence moves before the next
            // write of any record (`renew` in `advance`), which voids it.
            Err(err) if err.is_unavailable() => {
                if let Activity::Fenced(fence) = &mut self.activity {
                    fence.renew = true;
                }
            }
            Err(_) => {}
        }
        if let Some(voting) = &mut self.voting {
            voting
                .machine
                .handle(now_ms(now), votor::Event::Stored { op, result });
        }
    }

    /// The Votor machine stopped: the node stops, saying why.
    fn votor_exit(&mut self, reason: VotorExit) {
        // A lost fence says what it says with towers (agave's sentence);
        // the rest name the vote history.
        let exit = match reason {
            VotorExit::LockLost { identity, by } => NodeExit::LockLost { identity, by },
            other => NodeExit::Votor { source: other },
        };
        self.exit(Err(exit));
    }

    /// The Votor machine's status, while the node votes on Alpenglow.
    pub fn votor_status(&self) -> Option<VotorStatus> {
        self.voting.as_ref().map(|voting| voting.machine.status())
    }

    /// Stops voting (the fence is gone, or held for another identity now).
    pub(super) fn stop_voting(&mut self) {
        self.voting = None;
    }
}
