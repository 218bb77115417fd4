//! One check: what the decision needs, read over standard Solana JSON-RPC
//! and, read-only, from the fence in etcd.
//!
//! - the cluster (`--cluster-rpc-url`): `getSlot` (processed), then
//!   `getVoteAccounts` for the vote account (processed; read after the slot,
//!   so the vote is never older than the slot's bank), `getClusterNodes`;
//! - the active node (`--primary-rpc-url`, optional): `getHealth`;
//! - the local node: `getHealth` and `getIdentity`;
//! - etcd (optional): the fence holder and the stored tower's last vote;
//! - with `--respect-leader-slots`: `getEpochInfo` and, once per epoch,
//!   `getLeaderSchedule` for the identity.
//!
//! Each call has the check's deadline; a call that fails or times out
//! leaves its field `None` (or the health `Unknown`).

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use solana_pubkey::Pubkey;
use towerlock_cluster::client::RpcClient;
use towerlock_storage::{EtcdTowerStorage, TowerStorage};
use towerlock_validator::restart_window::decision::LeaderSlots;
use towerlock_validator::restart_window::NodeRpc;

use crate::decision::{FenceView, Health, Observation, VoteView};

/// The longest a check's call may take (also bounded by the interval).
pub const MAX_CALL: Duration = Duration::from_secs(2);

/// Everything a check reads from.
pub struct Probe {
    pub identity: Pubkey,
    pub vote_account: Pubkey,
    pub cluster: RpcClient,
    pub cluster_url: String,
    pub local: NodeRpc,
    pub primary: Option<NodeRpc>,
    pub fence: Option<EtcdTowerStorage>,
    pub respect_leader_slots: bool,
    pub deadline: Duration,
    schedule: Option<LeaderSlots>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VoteAccount {
    vote_pubkey: String,
    node_pubkey: String,
    last_vote: u64,
}

#[derive(Deserialize)]
struct VoteAccounts {
    current: Vec<VoteAccount>,
    delinquent: Vec<VoteAccount>,
}

impl Probe {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        identity: Pubkey,
        vote_account: Pubkey,
        cluster_url: String,
        local: NodeRpc,
        primary: Option<NodeRpc>,
        fence: Option<EtcdTowerStorage>,
        respect_leader_slots: bool,
        deadline: Duration,
    ) -> Self {
        Self {
            identity,
            vote_account,
            cluster: RpcClient::new(cluster_url.clone()),
            cluster_url,
            local,
            primary,
            fence,
            respect_leader_slots,
            deadline,
            schedule: None,
        }
    }

    /// One check, stamped `at_ms`.
    pub async fn check(&mut self, at_ms: u64) -> Observation {
        let cluster_slot = self.bounded(self.cluster_slot()).await;
        let (vote, in_gossip, primary_health, local_health, local_identity, fence) = tokio::join!(
            self.bounded(self.vote()),
            self.bounded(self.in_gossip()),
            self.primary_health(),
            self.bounded_health(self.local.health()),
            self.bounded(async { self.local.identity().await.ok() }),
            self.bounded(self.fence()),
        );
        let next_leader_slot = match (self.respect_leader_slots, cluster_slot) {
            (true, Some(slot)) => self.next_leader_slot(slot).await,
            _ => None,
        };
        Observation {
            at_ms,
            cluster_slot,
            vote,
            in_gossip,
            primary_health,
            local_health,
            local_active: local_identity == Some(self.identity),
            fence,
            next_leader_slot,
        }
    }

    async fn bounded<T>(&self, call: impl Future<Output = Option<T>>) -> Option<T> {
        tokio::time::timeout(self.deadline, call)
            .await
            .ok()
            .flatten()
    }

    async fn bounded_health(&self, call: impl Future<Output = Health>) -> Health {
        tokio::time::timeout(self.deadline, call)
            .await
            .unwrap_or(Health::Unknown)
    }

    async fn primary_health(&self) -> Option<Health> {
        let primary = self.primary.as_ref()?;
        Some(self.bounded_health(primary.health()).await)
    }

    async fn cluster_slot(&self) -> Option<u64> {
        self.cluster
            .call_as("getSlot", json!([{ "commitment": "processed" }]))
            .await
            .ok()
    }

    async fn vote(&self) -> Option<VoteView> {
        let config =
            json!([{ "commitment": "processed", "votePubkey": self.vote_account.to_string() }]);
        let accounts: VoteAccounts = self.cluster.call_as("getVoteAccounts", config).await.ok()?;
        let wanted = self.vote_account.to_string();
        let current = accounts.current.iter().find(|a| a.vote_pubkey == wanted);
        let delinquent = accounts.delinquent.iter().find(|a| a.vote_pubkey == wanted);
        current
            .map(|a| (a, false))
            .or(delinquent.map(|a| (a, true)))
            .map(|(a, delinquent)| VoteView {
                last_vote: a.last_vote,
                delinquent,
            })
    }

    async fn in_gossip(&self) -> Option<bool> {
        let nodes: Vec<Value> = self
            .cluster
            .call_as("getClusterNodes", json!([]))
            .await
            .ok()?;
        let me = self.identity.to_string();
        Some(
            nodes
                .iter()
                .any(|n| n.get("pubkey").and_then(Value::as_str) == Some(&me)),
        )
    }

    async fn fence(&self) -> Option<FenceView> {
        let storage = self.fence.as_ref()?;
        let holder = storage.holder(&self.identity).await.ok()?;
        let tower = storage.load_unfenced(&self.identity).await.ok();
        Some(FenceView {
            holder: holder.map(|h| h.id.to_string()),
            tower_last_vote: tower.and_then(|t| t.tower().last_voted_slot()),
        })
    }

    /// The identity's next leader slot at or after `slot`, from the
    /// schedule of the current epoch (fetched once per epoch).
    async fn next_leader_slot(&mut self, slot: u64) -> Option<u64> {
        let rpc = NodeRpc::new(self.cluster_url.clone());
        let position = tokio::time::timeout(self.deadline, rpc.epoch_position())
            .await
            .ok()?
            .ok()?;
        if self.schedule.as_ref().map(LeaderSlots::epoch) != Some(position.epoch) {
            let fetched =
                tokio::time::timeout(MAX_CALL, rpc.leader_slots(&position, &self.identity))
                    .await
                    .ok()?
                    .ok()?;
            self.schedule = Some(fetched);
        }
        let slots = self.schedule.as_ref()?.slots();
        slots.get(slots.partition_point(|&s| s < slot)).copied()
    }
}

/// The vote account whose node is `identity` (`getVoteAccounts`, all).
pub async fn find_vote_account(
    cluster: &RpcClient,
    identity: &Pubkey,
) -> Result<Option<Pubkey>, String> {
    let accounts: VoteAccounts = cluster
        .call_as(
            "getVoteAccounts",
            json!([{ "commitment": "processed", "keepUnstakedDelinquents": true }]),
        )
        .await
        .map_err(|e| e.to_string())?;
    let me = identity.to_string();
    Ok(accounts
        .current
        .iter()
        .chain(&accounts.delinquent)
        .find(|a| a.node_pubkey == me)
        .and_then(|a| a.vote_pubkey.parse().ok()))
}
