//! The vote history's stores: one in flight at a time, and what each answer
//! means for the votes it holds — sent on a matching receipt, never on an
//! error — and for the machine: exit on a lost fence or a refusal, exit or
//! skip-and-retry (the policy) on an unknown outcome, as the node machine
//! does for its tower.

use towerlock_storage::{StorageError, VoteHistoryStored};

use super::{Action, InFlight, OpId, PendingVotorVotes, VotorExit, VotorMachine};
use crate::node::machine::UnavailablePolicy;

impl VotorMachine {
    /// Hands the history to storage when votes wait for it and nothing is
    /// in flight; it holds every vote queued.
    pub(super) fn store_queued(&mut self) {
        if self.in_flight.is_some() || self.queued.is_empty() || self.wait_for_tick {
            return;
        }
        self.next_op += 1;
        let op = OpId(self.next_op);
        let history = self.history.clone();
        let pending = PendingVotorVotes::new(&history, std::mem::take(&mut self.queued));
        self.in_flight = Some(InFlight { op, pending });
        self.counters.stores += 1;
        self.actions
            .push_back(Action::StoreVoteHistory { op, history });
    }

    pub(super) fn on_stored(&mut self, op: OpId, result: Result<VoteHistoryStored, StorageError>) {
        let Some(InFlight { pending, .. }) = self.in_flight.take_if(|f| f.op == op) else {
            tracing::debug!(?op, "an answer to no store in flight: ignored");
            return;
        };
        match result {
            Ok(receipt) => match pending.stored(receipt) {
                Ok(votes) => {
                    if self.skipping {
                        tracing::info!("vote history storage answers again: voting");
                        self.skipping = false;
                    }
                    for vote in votes {
                        self.counters.votes_sent += 1;
                        if self
                            .newest_sent
                            .is_none_or(|newest| newest.slot() <= vote.slot())
                        {
                            self.newest_sent = Some(*vote.payload());
                        }
                        self.actions.push_back(Action::SendVote(vote));
                    }
                }
                Err(mismatch) => self.exit(VotorExit::ReceiptMismatch(mismatch)),
            },
            // The votes stay recorded, unsent: only stricter.
            Err(err) => self.store_failed(err),
        }
    }

    fn store_failed(&mut self, err: StorageError) {
        self.counters.store_failures += 1;
        match err {
            StorageError::LockLost { identity, by } => {
                self.exit(VotorExit::LockLost { identity, by })
            }
            err if err.is_unavailable() => match self.unavailable {
                UnavailablePolicy::Exit => self.exit(VotorExit::StorageUnavailable { source: err }),
                UnavailablePolicy::SkipVote => {
                    tracing::warn!(error = %err, "vote history storage unavailable: no vote leaves until a store succeeds");
                    self.skipping = true;
                    self.wait_for_tick = true;
                }
            },
            err => self.exit(VotorExit::StorageFailed { source: err }),
        }
    }
}
