//! The role: catching up, hot spare, or holding the fence — and the
//! takeovers that move the node between them.

use solana_pubkey::Pubkey;
use solana_signer::Signer;
use std::sync::Arc;
use towerlock_storage::{StorageError, Takeover};
use towerlock_tower::{Lockout, Tower};

use super::{
    Action, Activity, Fence, HotSpareReason, InFlight, NodeExit, NodeMachine, Now, OpId,
    TakeoverFor,
};
use crate::admin::AdminError;

impl NodeMachine {
    /// Moves the role to what `may_vote` says, once caught up: a node that
    /// may vote takes the fence; one that may not replays as a hot spare.
    pub(super) fn settle_role(&mut self, now: Now, may_vote: Result<(), HotSpareReason>) {
        match (&self.activity, may_vote) {
            (Activity::CatchingUp | Activity::HotSpare(_), Ok(())) => self.activate(now),
            (Activity::CatchingUp, Err(reason)) => {
                tracing::info!(%reason, "hot spare: replaying without voting");
                self.activity = Activity::HotSpare(reason);
                self.outset = self.next_outset(&self.identity(), now);
                self.publish_contact();
            }
            (Activity::Fenced(_), Err(reason)) => {
                tracing::warn!(%reason, "no longer voting");
                self.activity = Activity::HotSpare(reason);
            }
            (Activity::HotSpare(current), Err(reason)) => {
                if *current != reason {
                    tracing::info!(%reason, "hot spare: replaying without voting");
                    self.activity = Activity::HotSpare(reason);
                }
            }
            (Activity::Fenced(_), Ok(())) => {}
        }
    }

    /// Asks for the fence of the node's own identity.
    fn activate(&mut self, now: Now) {
        self.outset = self.next_outset(&self.identity(), now);
        let op = self.next_op();
        self.in_flight = Some(InFlight::Takeover {
            op,
            purpose: TakeoverFor::Activate,
        });
        self.actions.push_back(Action::TakeOver {
            op,
            identity: self.identity(),
        });
    }

    pub(super) fn on_taken_over(
        &mut self,
        now: Now,
        op: OpId,
        result: Result<Takeover, StorageError>,
    ) {
        let Some(InFlight::Takeover { purpose, .. }) = self
            .in_flight
            .take_if(|f| matches!(f, InFlight::Takeover { op: o, .. } if *o == op))
        else {
            return;
        };
        match purpose {
            TakeoverFor::Activate => self.activated(result),
            TakeoverFor::SetIdentity {
                request,
                keypair,
                require_tower,
            } => {
                let result = self.switch_identity(now, keypair, require_tower, result);
                self.actions.push_back(Action::Reply { request, result });
            }
        }
    }

    /// The answer to the node's own takeover.
    fn activated(&mut self, result: Result<Takeover, StorageError>) {
        let identity = self.identity();
        match result {
            Ok(taken) => {
                // Without `require_tower` a takeover always yields a fence.
                if let Ok(fence) = self.fence_from(identity, taken, false) {
                    self.activity = Activity::Fenced(fence);
                }
                self.publish_contact();
            }
            Err(err @ StorageError::Unavailable { .. }) => {
                self.store_failures.unavailable += 1;
                // Exit, or try again at the next bank.
                self.unavailable(err);
            }
            Err(err) => self.exit(Err(NodeExit::TakeoverRefused {
                identity,
                source: err,
            })),
        }
    }

    /// `setIdentity`'s takeover answered: switch keys, or leave the node as
    /// it was.
    fn switch_identity(
        &mut self,
        now: Now,
        keypair: solana_keypair::Keypair,
        require_tower: bool,
        result: Result<Takeover, StorageError>,
    ) -> Result<(), AdminError> {
        let identity = keypair.pubkey();
        let taken = result.map_err(|err| match err {
            StorageError::Unavailable { .. } => AdminError::OutcomeUnknown {
                identity,
                reason: err.to_string(),
            },
            err => AdminError::TowerUnavailable {
                identity,
                reason: err.to_string(),
            },
        })?;
        let fence = self.fence_from(identity, taken, require_tower)?;
        tracing::info!(%identity, revision = fence.token.revision, last_vote = ?fence.tower.last_voted_slot(), "identity switched");
        self.outset = self.next_outset(&identity, now);
        self.identity = Arc::new(keypair);
        self.activity = Activity::Fenced(fence);
        self.schedule = Default::default();
        self.publish_contact();
        Ok(())
    }

    /// The fence a successful takeover gives: the stored tower, or one built
    /// from the vote account's landed lockouts when none is stored (refused
    /// with `require_tower`). Remembers the last fenced leader slot.
    fn fence_from(
        &mut self,
        identity: Pubkey,
        taken: Takeover,
        require_tower: bool,
    ) -> Result<Fence, AdminError> {
        if let Some(displaced) = &taken.displaced {
            tracing::info!(%identity, %displaced, revision = taken.token.revision, "took the fence");
        } else {
            tracing::info!(%identity, revision = taken.token.revision, "took the fence");
        }
        let tower = match taken.tower {
            Some(saved) => saved.into_tower(),
            None if require_tower => {
                return Err(AdminError::TowerUnavailable {
                    identity,
                    reason: StorageError::NotFound { identity }.to_string(),
                })
            }
            None => self.tower_from_landed_state(identity),
        };
        // Never produce a slot an earlier holder already fenced.
        if let Some(last) = taken.last_leader_slot {
            let produced = self.produced.entry(identity).or_default();
            *produced = (*produced).max(last);
        }
        self.loaded_last_vote = tower.last_voted_slot();
        Ok(Fence {
            token: taken.token,
            tower,
            skipping: false,
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
        tracing::info!(%identity, root = ?state.root_slot, "no saved tower: rebuilt from the vote account");
        Tower::from_landed(identity, lockouts, state.root_slot, hash)
    }
}
