//! Carries out the node machine's actions — storage, the cluster, admin
//! replies — and turns each answer into the event the machine waits for.

use std::{collections::HashMap, sync::Arc, time::Instant};

use serde_json::json;
use solana_pubkey::Pubkey;
use tokio::sync::{mpsc, oneshot, watch};
use towerlock_storage::{StorageError, TowerStorage};
use towerlock_tower::{SavedTower, SavedVoteHistory, Slot};
use towerlock_wire::{
    client::RpcClient,
    votor::{VotorLastVote, GET_VOTOR_LAST_VOTE, SEND_VOTOR_VOTE},
};

use super::{
    driver::{bounded, Clock, Published},
    machine::{
        Action, Event, NodeExit, NodeMachine, RequestId, VoteHistoryCheck, VoteHistoryCheckFailed,
    },
    schedule::LeaderSchedule,
    slot_history,
    streams::Streams,
};
use crate::{admin::AdminError, metrics::Metrics};

/// Carries out actions.
pub(super) struct Executor {
    pub(super) storage: Arc<dyn TowerStorage>,
    pub(super) rpc: Arc<RpcClient>,
    /// Answers of reads that run beside the loop (the leader schedule):
    /// they gate no write, and must not hold up the next bank's vote.
    pub(super) background: (mpsc::UnboundedSender<Event>, mpsc::UnboundedReceiver<Event>),
    pub(super) streams: Streams,
    pub(super) instance: String,
    pub(super) replies: HashMap<RequestId, oneshot::Sender<Result<(), AdminError>>>,
    pub(super) next_request: u64,
    pub(super) metrics: Arc<Metrics>,
    pub(super) published: watch::Sender<Published>,
    pub(super) clock: Clock,
}

impl Executor {
    /// Carries out every action the machine has, feeding answers back;
    /// returns how the node ends once the machine says so.
    pub(super) async fn drain(
        &mut self,
        machine: &mut NodeMachine,
    ) -> Option<Result<(), NodeExit>> {
        while let Some(action) = machine.poll_action() {
            match action {
                Action::Exit(result) => {
                    self.publish(machine);
                    return Some(result);
                }
                // An operator who got an answer sees the status it left.
                Action::Reply { .. } => self.publish(machine),
                _ => {}
            }
            if let Some(event) = self.execute(action).await {
                machine.handle(self.clock.now(), event);
            }
        }
        None
    }

    async fn execute(&mut self, action: Action) -> Option<Event> {
        let storage = self.storage.clone();
        match action {
            Action::TakeOver { op, identity } => Some(Event::TakenOver {
                op,
                result: storage.takeover(&identity).await,
            }),
            Action::CheckTower { op, identity } => Some(Event::TowerChecked {
                op,
                result: stored_last_vote(storage.load_unfenced(&identity).await),
            }),
            Action::CheckVoteHistory { op, identity } => Some(Event::VoteHistoryChecked {
                op,
                result: self.check_vote_history(&identity).await,
            }),
            Action::Renew { op, token } => Some(Event::Renewed {
                op,
                result: storage.renew(&token).await,
            }),
            Action::Store { op, token, tower } => {
                let started = Instant::now();
                let result = storage.store(&token, &tower).await;
                let elapsed = started.elapsed();
                if result.is_ok() {
                    self.metrics.observe_store(elapsed);
                }
                Some(Event::Stored {
                    op,
                    result,
                    elapsed,
                })
            }
            Action::StoreVoteHistory { op, token, history } => {
                let started = Instant::now();
                let result = storage.store_vote_history(&token, &history).await;
                if result.is_ok() {
                    self.metrics.observe_store(started.elapsed());
                }
                Some(Event::VoteHistoryStored { op, result })
            }
            Action::FenceLeaderSlot { op, token, slot } => Some(Event::LeaderFenced {
                op,
                result: storage.fence_leader_slot(&token, slot).await,
            }),
            Action::Release { token } => {
                match storage.release(&token).await {
                    Ok(true) => {
                        tracing::info!(identity = %token.identity, "released the tower fence")
                    }
                    Ok(false) => {
                        tracing::info!(identity = %token.identity, "the tower fence had moved on; nothing to release")
                    }
                    // The exit goes on: the next instance takes the fence
                    // over from this one, as after a crash.
                    Err(err) => {
                        tracing::warn!(identity = %token.identity, error = %err, "could not release the tower fence")
                    }
                }
                None
            }
            action => self.execute_network(action).await,
        }
    }

    async fn execute_network(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::SendVote { slot, transaction } => {
                self.metrics.observe_vote_sent();
                let sent = self
                    .rpc
                    .send_transaction(&transaction, Some(&self.instance), false);
                let accepted = warn_on_error(bounded("sendTransaction", sent).await);
                Some(Event::VoteSent { slot, accepted })
            }
            Action::SendVotorVote(message) => {
                self.metrics.observe_vote_sent();
                let slot = message.vote.slot();
                let sent = self.rpc.call(SEND_VOTOR_VOTE, json!([message]));
                let accepted = warn_on_error(bounded(SEND_VOTOR_VOTE, sent).await);
                Some(Event::VotorVoteSent { slot, accepted })
            }
            Action::SubmitBlock(block) => {
                let submitted = bounded("submitBlock", self.rpc.submit_block(&block)).await;
                let accepted = warn_on_error(submitted);
                Some(Event::BlockSubmitted {
                    slot: block.slot,
                    accepted,
                })
            }
            Action::FetchLeaderSchedule { identity, slot } => {
                let (rpc, answer) = (self.rpc.clone(), self.background.0.clone());
                tokio::spawn(async move {
                    let fetched = LeaderSchedule::fetch(&rpc, identity, slot);
                    let schedule = bounded("leader schedule", fetched).await;
                    let _ = answer.send(Event::LeaderSchedule(schedule));
                });
                None
            }
            Action::FetchSlotHistory => Some(Event::SlotHistory(
                bounded("SlotHistory", slot_history::fetch(&self.rpc)).await,
            )),
            Action::PublishContact(contact) => {
                let published = self.rpc.publish_contact_info(&contact);
                warn_on_error(bounded("publishContactInfo", published).await);
                None
            }
            Action::Reopen(stream) => self
                .streams
                .reopen(stream)
                .await
                .err()
                .map(|reason| Event::ClusterLost { reason }),
            Action::Reply { request, result } => {
                if let Some(reply) = self.replies.remove(&request) {
                    let _ = reply.send(result);
                }
                None
            }
            _ => unreachable!("storage actions and exits are handled by the caller"),
        }
    }

    /// How far the stored vote history of `identity` reaches, and the
    /// newest slot with a landed vote of it.
    async fn check_vote_history(
        &self,
        identity: &Pubkey,
    ) -> Result<VoteHistoryCheck, VoteHistoryCheckFailed> {
        let covered = stored_reach(self.storage.load_vote_history_unfenced(identity).await)
            .map_err(VoteHistoryCheckFailed::Storage)?;
        let asked = self
            .rpc
            .call_as::<VotorLastVote>(GET_VOTOR_LAST_VOTE, json!([identity.to_string()]));
        let landed = bounded(GET_VOTOR_LAST_VOTE, asked)
            .await
            .map_err(VoteHistoryCheckFailed::Cluster)?
            .slot;
        Ok(VoteHistoryCheck { covered, landed })
    }

    pub(super) fn publish(&self, machine: &NodeMachine) {
        let status = machine.status();
        self.metrics.set_status(&status);
        self.published.send_replace(Published {
            status,
            contact: Some(machine.contact_info(self.clock.now())),
            caught_up: machine.is_running(),
        });
    }

    pub(super) fn register(&mut self, reply: oneshot::Sender<Result<(), AdminError>>) -> RequestId {
        self.next_request += 1;
        let request = RequestId(self.next_request);
        self.replies.insert(request, reply);
        request
    }
}

/// How far a stored vote history reaches: its newest vote, or its root if
/// newer; `None` when none is stored or it holds nothing.
pub fn stored_reach(
    loaded: Result<SavedVoteHistory, StorageError>,
) -> Result<Option<Slot>, StorageError> {
    match loaded {
        Ok(saved) => {
            let history = saved.history();
            Ok(history
                .last_voted_slot()
                .max(Some(history.root).filter(|r| *r > 0)))
        }
        Err(StorageError::VoteHistoryNotFound { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

/// A tower check's answer: `None` when no tower is stored, else its last
/// vote.
pub fn stored_last_vote(
    loaded: Result<SavedTower, StorageError>,
) -> Result<Option<Option<Slot>>, StorageError> {
    match loaded {
        Ok(saved) => Ok(Some(saved.tower().last_voted_slot())),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

fn warn_on_error<T>(result: Result<T, String>) -> bool {
    if let Err(err) = &result {
        tracing::warn!(error = %err, "not accepted");
    }
    result.is_ok()
}
