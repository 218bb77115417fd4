//! Where the machine stands, derived from its state: the admin RPC's
//! `towerlockStatus`, `monitor`, the node's RPC and the metrics all render
//! this one value.

use solana_signer::Signer;

pub use crate::admin::StoreFailures;
use crate::admin::{ContactInfoView, NodeStatus, Role};

use super::{Activity, NodeMachine, Now};

impl NodeMachine {
    pub fn status(&self) -> NodeStatus {
        let (role, token, root) = match &self.activity {
            Activity::CatchingUp => (Role::Starting, None, None),
            Activity::HotSpare(_) => (Role::HotSpare, None, None),
            Activity::Fenced(fence) => (
                if fence.skipping {
                    Role::SkipVote
                } else {
                    Role::Voting
                },
                Some(fence.token.revision),
                fence.tower.root(),
            ),
        };
        NodeStatus {
            slot: self.forks.newest,
            identity: self.identity.pubkey(),
            vote_account: Some(self.vote_account),
            role,
            last_vote_slot: self.last_vote_slot,
            root,
            fence_token: token,
            last_store_latency_ms: self.last_store.map(|d| d.as_secs_f64() * 1000.0),
            leader_slots_produced: self.counters.produced,
            leader_slots_skipped: self.counters.skipped,
            cluster_slot: Some(self.forks.tip.max(self.forks.newest)),
            instance: self.instance.clone(),
            loaded_last_vote: self.loaded_last_vote,
            votes_sent: self.counters.votes_sent,
            votes_rejected: self.counters.votes_rejected,
            store_failures: self.store_failures,
        }
    }

    /// Whether the node has caught up and settled in a role: until then the
    /// admin RPC answers "starting", as agave's does.
    pub fn is_running(&self) -> bool {
        self.caught_up_in_role()
    }

    /// The node's contact info as `contactInfo` shows it.
    pub fn contact_info(&self, now: Now) -> ContactInfoView {
        ContactInfoView {
            id: self.identity.pubkey(),
            gossip: None,
            tpu: None,
            tpu_vote: None,
            rpc: self.rpc_addr,
            rpc_pubsub: None,
            outset: self.outset,
            last_updated_timestamp: now.unix_micros / 1000,
            shred_version: 0,
        }
    }
}
