//! Admin requests the machine decides on: `setIdentity`, the authorized
//! voters, `exit`.

use std::sync::Arc;

use solana_keypair::Keypair;
use solana_signer::Signer;

use super::{Action, Activity, Command, NodeMachine, Now, RequestId};
use crate::admin::AdminError;

impl NodeMachine {
    pub(super) fn on_admin(&mut self, now: Now, request: RequestId, command: Command) {
        match command {
            Command::Exit => {
                tracing::info!("exit requested over the admin RPC");
                self.reply(request, Ok(()));
                self.exit(Ok(()));
            }
            Command::SetIdentity { .. } if !self.caught_up_in_role() => {
                self.reply(request, Err(AdminError::Starting));
            }
            // A storage operation is in flight: the request waits for it, so
            // a switch never interleaves with a vote of the old identity.
            command if self.in_flight.is_some() => self.queued.push_back((request, command)),
            command => self.start_admin(now, request, command),
        }
    }

    /// Whether the node has caught up and settled in a role (agave answers
    /// "starting" until then).
    pub(super) fn caught_up_in_role(&self) -> bool {
        !matches!(self.activity, Activity::CatchingUp)
    }

    pub(super) fn start_admin(&mut self, _now: Now, request: RequestId, command: Command) {
        match command {
            Command::SetIdentity {
                keypair,
                require_tower,
            } => self.start_set_identity(request, keypair, require_tower),
            Command::AddAuthorizedVoter { keypair } => {
                if !self.voters.iter().any(|k| k.pubkey() == keypair.pubkey()) {
                    tracing::info!(voter = %keypair.pubkey(), "authorized voter added");
                    self.voters.push(Arc::new(keypair));
                }
                self.reply(request, Ok(()));
            }
            Command::RemoveAllAuthorizedVoters => {
                tracing::info!("all authorized voters removed");
                self.voters.clear();
                self.reply(request, Ok(()));
            }
            Command::Exit => {
                self.reply(request, Ok(()));
                self.exit(Ok(()));
            }
        }
    }

    /// agave's `setIdentity`: refuse a keypair that could not vote; then
    /// check its tower and take the fence (`role.rs`). On any refusal
    /// nothing about the node changes.
    fn start_set_identity(&mut self, request: RequestId, keypair: Keypair, require_tower: bool) {
        let identity = keypair.pubkey();
        if let Err(reason) = self.may_vote_as(&identity) {
            return self.reply(
                request,
                Err(AdminError::InvalidParams(format!(
                    "refusing to switch to {identity}: it could not vote ({reason})"
                ))),
            );
        }
        self.take_over_for(request, keypair, require_tower);
    }

    fn reply(&mut self, request: RequestId, result: Result<(), AdminError>) {
        self.actions.push_back(Action::Reply { request, result });
    }
}
