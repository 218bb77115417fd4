//! The driver: the one place where the node machine meets storage and the
//! network. It pumps events into the machine (banks, gossip, admin requests,
//! ticks) and carries out the machine's actions one at a time, feeding each
//! answer back before anything else happens. It decides nothing.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::json;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use tokio::sync::{mpsc, oneshot, watch};
use towerlock_storage::TowerStorage;
use towerlock_wire::client::RpcClient;

use super::{
    executor::Executor,
    machine::{
        Command, Consensus, Event, MachineConfig, NodeExit, NodeMachine, Now, UnavailablePolicy,
    },
    startup::{check_vote_account, not_a_towerlock_cluster},
    streams::Streams,
};
use crate::{
    admin::{AdminError, ContactInfoView, NodeStatus},
    metrics::Metrics,
};

/// Everything the node needs, resolved and loaded.
pub struct NodeConfig {
    pub identity: Keypair,
    pub vote_account: Pubkey,
    pub authorized_voters: Vec<Keypair>,
    pub check_vote_account: bool,
    pub storage: Arc<dyn TowerStorage>,
    /// The cluster's JSON-RPC URL (`http://host:port`).
    pub cluster_url: String,
    pub unavailable: UnavailablePolicy,
    /// How close to the cluster's slot the node must be to take over.
    pub catchup_slots: u64,
    /// How far behind the cluster getHealth still says `ok`.
    pub health_check_slot_distance: u64,
    /// Stay a hot spare until `set-identity`, even with the staked identity.
    pub start_as_hot_spare: bool,
    /// The node's own RPC address, advertised in its contact info.
    pub rpc_addr: Option<std::net::SocketAddr>,
    /// `--allow-tower-rebuild`.
    pub allow_tower_rebuild: bool,
    /// The wall clock the node uses.
    pub clock: Clock,
    /// TowerBFT, or Alpenglow with Votor's timing.
    pub consensus: Consensus,
}

/// An admin request and where its answer goes.
pub type AdminRequest = (Command, oneshot::Sender<Result<(), AdminError>>);

/// What the driver publishes for the admin RPC, the node's RPC and metrics.
#[derive(Debug, Clone)]
pub struct Published {
    pub status: NodeStatus,
    pub contact: Option<ContactInfoView>,
    /// Caught up and settled in a role.
    pub caught_up: bool,
}

/// Deadline of each request to the cluster: a cluster that hangs must not
/// hang the node.
const CLUSTER_DEADLINE: Duration = Duration::from_secs(2);
/// How often time is passed to the machine.
const TICK: Duration = Duration::from_secs(1);

/// The wall clock, shifted by `--clock-offset-ms` (to test clock skew:
/// nothing in the fence depends on clocks).
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    pub offset_ms: i64,
}

impl Clock {
    pub fn now(self) -> Now {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        Now::from_micros(
            micros
                .saturating_add(self.offset_ms.saturating_mul(1000))
                .max(0) as u64,
        )
    }
}

pub(super) async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(CLUSTER_DEADLINE, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(format!("{what}: {err}")),
        Err(_) => Err(format!("{what}: no answer within {CLUSTER_DEADLINE:?}")),
    }
}

/// Runs the node until an admin `exit`, `shutdown`, or a reason to stop.
/// `shutdown` is only looked at between actions, so a store in flight
/// always finishes first.
pub async fn run(
    config: NodeConfig,
    mut commands: mpsc::Receiver<AdminRequest>,
    published: watch::Sender<Published>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeExit> {
    let (mut machine, mut executor) = start(config, metrics, published).await?;
    let mut tick = tokio::time::interval(TICK);
    tokio::pin!(shutdown);
    let mut shutting_down = false;
    loop {
        if let Some(result) = executor.drain(&mut machine).await {
            return result;
        }
        executor.publish(&machine);
        let event = tokio::select! {
            biased;
            () = &mut shutdown, if !shutting_down => {
                shutting_down = true;
                Event::Shutdown
            }
            // Admin requests before the streams: a burst of banks must not
            // starve an operator.
            command = commands.recv() => match command {
                Some((command, reply)) => Event::Admin { request: executor.register(reply), command },
                None => return Ok(()),
            },
            Some(event) = executor.background.1.recv() => event,
            event = executor.streams.next() => match event {
                Some(event) => event,
                None => continue,
            },
            _ = tick.tick() => Event::Tick,
        };
        machine.handle(executor.clock.now(), event);
    }
}

/// The start-up checks and subscriptions, then the machine.
async fn start(
    config: NodeConfig,
    metrics: Arc<Metrics>,
    published: watch::Sender<Published>,
) -> Result<(NodeMachine, Executor), NodeExit> {
    let rpc = RpcClient::new(config.cluster_url.clone());
    let identity = config.identity.pubkey();
    let unreachable = |reason: String| NodeExit::ClusterUnreachable {
        url: config.cluster_url.clone(),
        reason,
    };
    if config.check_vote_account {
        check_vote_account(&rpc, &identity, &config.vote_account)
            .await
            .map_err(|e| e.unwrap_or_else(unreachable))?;
    }
    let start_slot = bounded(
        "getSlot",
        rpc.call("getSlot", json!([{ "commitment": "processed" }])),
    )
    .await
    .and_then(|v| v.as_u64().ok_or_else(|| format!("getSlot answered {v}")))
    .map_err(unreachable)?;
    let ws_url = config.cluster_url.replacen("http", "ws", 1);
    let alpenglow = matches!(config.consensus, Consensus::Alpenglow(_));
    let streams = match Streams::open(ws_url, alpenglow).await {
        Ok(streams) => streams,
        Err(reason) => {
            return Err(not_a_towerlock_cluster(&rpc, &config.cluster_url)
                .await
                .unwrap_or_else(|| unreachable(reason)))
        }
    };
    let instance = config.storage.instance().id;
    tracing::info!(%identity, %instance, start_slot, "replaying");
    let machine = NodeMachine::new(
        MachineConfig {
            identity: config.identity,
            vote_account: config.vote_account,
            authorized_voters: config.authorized_voters,
            instance,
            unavailable: config.unavailable,
            catchup_slots: config.catchup_slots,
            start_slot,
            rpc_addr: config.rpc_addr,
            allow_tower_rebuild: config.allow_tower_rebuild,
            start_as_hot_spare: config.start_as_hot_spare,
            consensus: config.consensus,
        },
        config.clock.now(),
    );
    let executor = Executor {
        storage: config.storage,
        rpc: Arc::new(rpc),
        background: mpsc::unbounded_channel(),
        streams,
        instance: instance.to_string(),
        replies: HashMap::new(),
        next_request: 0,
        metrics,
        published,
        clock: config.clock,
    };
    Ok((machine, executor))
}
