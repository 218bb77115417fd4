//! The role: catching up, hot spare, or holding the fence — and the
//! takeovers that move the node between them.
//!
//! Every takeover reads the stored tower first ([`Action::CheckTower`]) and
//! judges it ([`tower_verdict`]), so a tower that is missing or older than
//! the landed votes is refused before the fence moves; the takeover's own
//! answer is judged again (the tower may have changed in between).

use std::sync::Arc;

use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use towerlock_storage::{StorageError, Takeover};
use towerlock_tower::{Lockout, SavedVoteHistory, Slot, Tower};

use super::{
    Action, Activity, Fence, HotSpareReason, InFlight, NodeExit, NodeMachine, Now, OpId,
    TakeoverFor, UnavailablePolicy, VoteHistoryCheck, VoteHistoryCheckFailed,
};
use crate::{
    admin::AdminError,
    node::{
        decide::{tower_verdict, TowerRefusal},
        votor::VotorExit,
    },
};

/// Why a takeover did not give a fence.
enum Refused {
    Storage(StorageError),
    Tower(TowerRefusal),
    /// Alpenglow: the vote history is missing or older than the landed
    /// votes (the sentence the Votor machine would exit with).
    VoteHistory(VotorExit),
    /// Alpenglow: the history or the landed votes could not be read.
    VoteHistoryUnchecked(VoteHistoryCheckFailed),
}

impl NodeMachine {
    /// Moves the role to what `may_vote` says, once caught up: a node that
    /// may vote takes the fence; one that may not replays as a hot spare.
    /// A node that held the fence and lost the right to vote stays a hot
    /// spare until `set-identity` or a restart: it never takes the fence
    /// back by itself.
    pub(super) fn settle_role(&mut self, now: Now, may_vote: Result<(), HotSpareReason>) {
        match (&self.activity, may_vote) {
            // --start-as-hot-spare: it may vote, but waits to be told.
            (Activity::CatchingUp, Ok(())) if self.stepped_down => {
                self.settle_role(now, Err(HotSpareReason::AwaitingSetIdentity));
            }
            (Activity::CatchingUp, Ok(())) => self.activate(now),
            (Activity::HotSpare(_), Ok(())) if !self.stepped_down => self.activate(now),
            (Activity::HotSpare(_), Ok(())) | (Activity::Fenced(_), Ok(())) => {}
            (Activity::CatchingUp, Err(reason)) => {
                tracing::info!(%reason, "hot spare: replaying without voting");
                // Started as a hot spare with the staked identity, it stays
                // out of gossip: its newer outset would tell the active node
                // that a newer instance runs the identity, and stop it.
                let in_gossip = reason != HotSpareReason::AwaitingSetIdentity;
                self.activity = Activity::HotSpare(reason);
                self.outset = self.next_outset(&self.identity(), now);
                if in_gossip {
                    self.publish_contact();
                }
            }
            (Activity::Fenced(_), Err(reason)) => {
                tracing::warn!(%reason, "no longer voting: a hot spare until set-identity or a restart");
                self.stop_voting();
                self.activity = Activity::HotSpare(reason);
                self.stepped_down = true;
            }
            (Activity::HotSpare(current), Err(reason)) => {
                if *current != reason {
                    tracing::info!(%reason, "hot spare: replaying without voting");
                    self.activity = Activity::HotSpare(reason);
                }
            }
        }
    }

    /// Asks for the fence of the node's own identity.
    fn activate(&mut self, now: Now) {
        self.outset = self.next_outset(&self.identity(), now);
        self.check_tower(TakeoverFor::Activate);
    }

    /// The first step of every takeover: read the stored tower.
    pub(super) fn check_tower(&mut self, purpose: TakeoverFor) {
        let identity = self.takeover_identity(&purpose);
        let op = self.next_op();
        self.in_flight = Some(InFlight::CheckTower { op, purpose });
        self.actions.push_back(Action::CheckTower { op, identity });
    }

    fn takeover_identity(&self, purpose: &TakeoverFor) -> Pubkey {
        match purpose {
            TakeoverFor::Activate => self.identity(),
            TakeoverFor::SetIdentity { keypair, .. } => keypair.pubkey(),
        }
    }

    fn require_tower(purpose: &TakeoverFor) -> bool {
        matches!(
            purpose,
            TakeoverFor::SetIdentity {
                require_tower: true,
                ..
            }
        )
    }

    /// The vote account's last landed vote, as of the newest bank.
    fn landed_last_vote(&self) -> Option<Slot> {
        let state = self
            .forks
            .newest_bank()
            .and_then(|bank| bank.vote_account(&self.vote_account))?;
        state
            .last_vote
            .or_else(|| state.lockouts.last().map(|(slot, _)| *slot))
    }

    pub(super) fn on_tower_checked(
        &mut self,
        now: Now,
        op: OpId,
        result: Result<Option<Option<Slot>>, StorageError>,
    ) {
        let Some(InFlight::CheckTower { purpose, .. }) = self
            .in_flight
            .take_if(|f| matches!(f, InFlight::CheckTower { op: o, .. } if *o == op))
        else {
            return;
        };
        let verdict = result.map_err(Refused::Storage).and_then(|stored| {
            tower_verdict(
                stored,
                self.landed_last_vote(),
                Self::require_tower(&purpose),
                self.allow_tower_rebuild,
            )
            .map_err(Refused::Tower)
        });
        match verdict {
            // On Alpenglow the vote history is checked too, before the fence
            // moves.
            Ok(()) if self.is_alpenglow() => {
                let identity = self.takeover_identity(&purpose);
                let op = self.next_op();
                self.in_flight = Some(InFlight::CheckVoteHistory { op, purpose });
                self.actions
                    .push_back(Action::CheckVoteHistory { op, identity });
            }
            Ok(()) => self.take_over_now(purpose, None),
            Err(refused) => self.refused(now, purpose, refused, false),
        }
    }

    /// The takeover itself, once the records were checked; `landed` is
    /// what the vote-history check read (Alpenglow).
    fn take_over_now(&mut self, purpose: TakeoverFor, landed: Option<Slot>) {
        let identity = self.takeover_identity(&purpose);
        let op = self.next_op();
        self.in_flight = Some(InFlight::Takeover {
            op,
            purpose,
            landed,
        });
        self.actions.push_back(Action::TakeOver { op, identity });
    }

    pub(super) fn on_vote_history_checked(
        &mut self,
        now: Now,
        op: OpId,
        result: Result<VoteHistoryCheck, VoteHistoryCheckFailed>,
    ) {
        let Some(InFlight::CheckVoteHistory { purpose, .. }) = self
            .in_flight
            .take_if(|f| matches!(f, InFlight::CheckVoteHistory { op: o, .. } if *o == op))
        else {
            return;
        };
        let identity = self.takeover_identity(&purpose);
        match result {
            Ok(check) => match self.vote_history_refusal(identity, check) {
                None => self.take_over_now(purpose, check.landed),
                Some(refusal) => self.refused(now, purpose, Refused::VoteHistory(refusal), false),
            },
            Err(failed) => self.refused(now, purpose, Refused::VoteHistoryUnchecked(failed), false),
        }
    }

    pub(super) fn on_taken_over(
        &mut self,
        now: Now,
        op: OpId,
        result: Result<Takeover, StorageError>,
    ) {
        let Some(InFlight::Takeover {
            purpose, landed, ..
        }) = self
            .in_flight
            .take_if(|f| matches!(f, InFlight::Takeover { op: o, .. } if *o == op))
        else {
            return;
        };
        let identity = self.takeover_identity(&purpose);
        let require_tower = Self::require_tower(&purpose);
        match result {
            Ok(mut taken) => {
                // Alpenglow votes from the vote history read with the fence.
                let history = taken
                    .vote_history
                    .take()
                    .map(SavedVoteHistory::into_history);
                match self.fence_from(identity, taken, require_tower) {
                    Ok(fence) => {
                        self.fenced(now, purpose, fence);
                        self.start_voting(now, identity, history, landed);
                    }
                    Err(refusal) => self.refused(now, purpose, Refused::Tower(refusal), true),
                }
            }
            Err(err) => self.refused(now, purpose, Refused::Storage(err), true),
        }
    }

    /// A takeover succeeded: hold the fence (and switch keys for
    /// `set-identity`).
    fn fenced(&mut self, now: Now, purpose: TakeoverFor, fence: Fence) {
        match purpose {
            TakeoverFor::Activate => {}
            TakeoverFor::SetIdentity {
                request, keypair, ..
            } => {
                let identity = keypair.pubkey();
                tracing::info!(%identity, revision = fence.token.revision, last_vote = ?fence.tower.last_voted_slot(), "identity switched");
                self.outset = self.next_outset(&identity, now);
                self.identity = Arc::new(keypair);
                self.schedule = Default::default();
                self.actions.push_back(Action::Reply {
                    request,
                    result: Ok(()),
                });
            }
        }
        self.loaded_last_vote = fence.tower.last_voted_slot();
        self.activity = Activity::Fenced(fence);
        self.stepped_down = false;
        self.publish_contact();
    }

    /// A takeover did not give a fence: `set-identity` answers why and
    /// changes nothing; the node's own takeover exits, or waits for the next
    /// bank when storage is in trouble and the policy is skip-vote.
    /// `moved` says whether the fence may have moved.
    fn refused(&mut self, _now: Now, purpose: TakeoverFor, refused: Refused, moved: bool) {
        let identity = self.takeover_identity(&purpose);
        match (purpose, refused) {
            (TakeoverFor::SetIdentity { request, .. }, refused) => {
                let err = match refused {
                    Refused::Storage(err @ StorageError::Unavailable { .. }) if moved => {
                        AdminError::OutcomeUnknown {
                            identity,
                            reason: err.to_string(),
                        }
                    }
                    Refused::Storage(err) => AdminError::TowerUnavailable {
                        identity,
                        reason: err.to_string(),
                    },
                    Refused::Tower(refusal) => AdminError::TowerUnavailable {
                        identity,
                        reason: refusal.to_string(),
                    },
                    Refused::VoteHistory(refusal) => AdminError::VoteHistoryUnavailable {
                        identity,
                        reason: refusal.to_string(),
                    },
                    Refused::VoteHistoryUnchecked(failed) => AdminError::VoteHistoryUnavailable {
                        identity,
                        reason: format!("it could not be checked ({failed}); nothing changed, run set-identity again"),
                    },
                };
                self.actions.push_back(Action::Reply {
                    request,
                    result: Err(err),
                });
            }
            // The history not read: as any storage error at a takeover.
            (TakeoverFor::Activate, Refused::VoteHistoryUnchecked(VoteHistoryCheckFailed::Storage(err))) => {
                self.refused(_now, TakeoverFor::Activate, Refused::Storage(err), moved)
            }
            // The cluster did not say which votes landed: no takeover
            // without it; exit, or try again at the next bank with skip-vote.
            (TakeoverFor::Activate, Refused::VoteHistoryUnchecked(failed @ VoteHistoryCheckFailed::Cluster(_))) => {
                match self.unavailable {
                    UnavailablePolicy::Exit => self.exit(Err(NodeExit::ClusterLost {
                        reason: format!("cannot check the vote history of {identity} against its landed votes ({failed})"),
                    })),
                    UnavailablePolicy::SkipVote => {
                        tracing::warn!(%identity, error = %failed, "cannot check the vote history against the landed votes: not taking over until it can");
                        self.wait_for_bank = true;
                    }
                }
            }
            (TakeoverFor::Activate, Refused::Storage(err)) if self.is_transient(&err) => {
                self.store_failures.unavailable += 1;
                self.unavailable(err);
            }
            (TakeoverFor::Activate, Refused::Storage(err)) => {
                self.exit(Err(NodeExit::TakeoverRefused {
                    identity,
                    source: err,
                }))
            }
            (TakeoverFor::Activate, Refused::Tower(refusal)) => {
                self.exit(Err(NodeExit::TowerRefused { identity, refusal }))
            }
            (TakeoverFor::Activate, Refused::VoteHistory(refusal)) => {
                self.exit(Err(NodeExit::Votor { source: refusal }))
            }
        }
    }

    /// The fence a successful takeover gives: the stored tower, or a fresh
    /// one (an identity that never voted, or a rebuild the operator allowed)
    /// built from the vote account's landed lockouts. Remembers the last
    /// fenced leader slot.
    fn fence_from(
        &mut self,
        identity: Pubkey,
        taken: Takeover,
        require_tower: bool,
    ) -> Result<Fence, TowerRefusal> {
        if let Some(displaced) = &taken.displaced {
            tracing::info!(%identity, %displaced, revision = taken.token.revision, "took the fence");
        } else {
            tracing::info!(%identity, revision = taken.token.revision, "took the fence");
        }
        // Never produce a slot an earlier holder already fenced, even when
        // the tower is refused below.
        if let Some(last) = taken.last_leader_slot {
            let produced = self.produced.entry(identity).or_default();
            *produced = (*produced).max(last);
        }
        let stored = taken
            .tower
            .as_ref()
            .map(|saved| saved.tower().last_voted_slot());
        let landed = self.landed_last_vote();
        tower_verdict(stored, landed, require_tower, self.allow_tower_rebuild)?;
        let tower = match taken.tower {
            Some(saved) if saved.tower().last_voted_slot() >= landed => saved.into_tower(),
            // None stored, or (with --allow-tower-rebuild only: refused
            // above otherwise) one older than the landed votes, whose root
            // and lockouts the vote program would refuse: rebuilt.
            _ => self.tower_from_landed_state(identity),
        };
        Ok(Fence {
            token: taken.token,
            tower,
            skipping: false,
            renew: false,
            retake: false,
        })
    }

    fn tower_from_landed_state(&self, identity: Pubkey) -> Tower {
        let state = self
            .forks
            .newest_bank()
            .and_then(|bank| bank.vote_account(&self.vote_account));
        let Some(state) = state else {
            return Tower::new(identity);
        };
        let lockouts = state
            .lockouts
            .iter()
            .map(|&(slot, conf)| Lockout::new_with_confirmation_count(slot, conf));
        let hash = state
            .lockouts
            .last()
            .and_then(|(slot, _)| self.forks.get(*slot))
            .map(|bank| bank.hash)
            .unwrap_or_default();
        tracing::info!(%identity, root = ?state.root_slot, "no saved tower: built from the vote account");
        Tower::from_landed(identity, lockouts, state.root_slot, hash)
    }

    /// `set-identity`'s start: the takeover, with its tower check first.
    pub(super) fn take_over_for(
        &mut self,
        request: super::RequestId,
        keypair: Keypair,
        require_tower: bool,
    ) {
        self.check_tower(TakeoverFor::SetIdentity {
            request,
            keypair,
            require_tower,
        });
    }
}
