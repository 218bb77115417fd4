//! The sentinel: monitoring-triggered failover for a primary/secondary pair.
//!
//! Runs beside the secondary and promotes it when the active node stops
//! voting. What it promises:
//!
//! - it watches only what any operator can see: standard Solana JSON-RPC
//!   (`getSlot`, `getVoteAccounts`, `getClusterNodes`, `getHealth`), agave's
//!   admin socket, and — read-only — the fence in etcd;
//! - it promotes only through the local node's admin socket (`setIdentity`
//!   with `require_tower`), one promotion at a time, and never without a
//!   fence: the etcd fence, or a `--fence-command` (STONITH) that exited 0;
//! - every decision is made by the pure [`decision::Detector`] (no IO, no
//!   clock), which the tests replay over long generated traces.
//!
//! What it leaves to others: safety itself. With the etcd fence, a false
//! promotion costs one failover and never a double vote, because every vote
//! and every leader slot of the old node is fenced (`towerlock-validator`).
//! The sentinel only decides when.

pub mod checks;
pub mod decision;
mod error;
pub mod hooks;
pub mod metrics;
pub mod poller;
mod promote;
pub mod timeline;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use solana_pubkey::Pubkey;
use towerlock_etcd::EtcdConfig;
use towerlock_storage::EtcdTowerStorage;
use towerlock_validator::admin::AdminClient;
use towerlock_validator::restart_window::NodeRpc;

pub use decision::{Decision, Detector, Params, Veto, DEFAULT_FAILURES};
pub use error::{PromotionError, SentinelError};
pub use poller::PromotionRecord;
pub use timeline::{Entry, Event};

/// The default check interval: one slot of 400 ms.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(400);

/// Everything the sentinel needs; the `towerlock sentinel` flags map onto it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The local node's ledger (its admin socket is `<ledger>/admin.rpc`).
    pub ledger: PathBuf,
    /// The staked identity's keypair file, handed to `setIdentity`.
    pub identity_keypair: PathBuf,
    /// The vote account; found through `getVoteAccounts` when `None`.
    pub vote_account: Option<Pubkey>,
    /// A JSON-RPC of the cluster.
    pub cluster_rpc_url: String,
    /// The local node's JSON-RPC; asked of its admin socket when `None`.
    pub local_rpc_url: Option<String>,
    /// The active node's JSON-RPC, for its own `getHealth`.
    pub primary_rpc_url: Option<String>,
    pub interval: Duration,
    pub params: Params,
    /// The etcd fence, read-only; `None`: agave mode.
    pub etcd: Option<EtcdConfig>,
    /// STONITH, run before a promotion; must exit 0.
    pub fence_command: Option<String>,
    pub require_tower: bool,
    pub respect_leader_slots: bool,
    pub dry_run: bool,
    pub pre_hook: Option<String>,
    pub post_hook: Option<String>,
    pub metrics_addr: Option<SocketAddr>,
    pub timeline: Option<PathBuf>,
}

impl Config {
    /// The defaults around the three things every deployment names.
    pub fn new(ledger: PathBuf, identity_keypair: PathBuf, cluster_rpc_url: String) -> Self {
        Self {
            ledger,
            identity_keypair,
            vote_account: None,
            cluster_rpc_url,
            local_rpc_url: None,
            primary_rpc_url: None,
            interval: DEFAULT_INTERVAL,
            params: Params::default(),
            etcd: None,
            fence_command: None,
            require_tower: true,
            respect_leader_slots: false,
            dry_run: false,
            pre_hook: None,
            post_hook: None,
            metrics_addr: None,
            timeline: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub promotions: Vec<PromotionRecord>,
}

/// Runs the sentinel until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<Report, SentinelError> {
    run_with_events(config, shutdown, None).await
}

/// Like [`run`], passing every timeline entry to `events` as well.
pub async fn run_with_events(
    config: Config,
    shutdown: impl Future<Output = ()>,
    events: Option<tokio::sync::mpsc::UnboundedSender<Entry>>,
) -> Result<Report, SentinelError> {
    let mut poller = start(&config, events).await?;
    let metrics_stop = tokio::sync::oneshot::channel::<()>();
    let server = match config.metrics_addr {
        Some(addr) => {
            let stop = metrics_stop.1;
            let (bound, task) = metrics::serve(addr, poller.metrics.clone(), async move {
                let _ = stop.await;
            })
            .await?;
            tracing::info!("metrics on http://{bound}/metrics");
            Some(task)
        }
        None => None,
    };
    poller.run(shutdown).await;
    let _ = metrics_stop.0.send(());
    if let Some(task) = server {
        let _ = task.await;
    }
    Ok(Report {
        promotions: poller.promotions,
    })
}

/// Resolves the identity, vote account, RPCs and etcd; builds the loop.
async fn start(
    config: &Config,
    events: Option<tokio::sync::mpsc::UnboundedSender<Entry>>,
) -> Result<poller::Poller, SentinelError> {
    let identity = poller::identity_of(&config.identity_keypair)?;
    let cluster = towerlock_cluster::client::RpcClient::new(config.cluster_rpc_url.clone());
    let vote_account = match config.vote_account {
        Some(v) => v,
        None => checks::find_vote_account(&cluster, &identity)
            .await
            .map_err(|reason| SentinelError::ClusterRpc {
                url: config.cluster_rpc_url.clone(),
                reason,
            })?
            .ok_or_else(|| SentinelError::NoVoteAccount {
                identity: identity.to_string(),
            })?,
    };
    let local_url = match &config.local_rpc_url {
        Some(url) => url.clone(),
        None => local_rpc_url(&config.ledger).await?,
    };
    let fence = match &config.etcd {
        Some(etcd) => {
            Some(
                EtcdTowerStorage::connect(etcd)
                    .await
                    .map_err(|e| SentinelError::Etcd {
                        reason: e.to_string(),
                    })?,
            )
        }
        None => None,
    };
    let mut params = config.params.clone();
    params.fenced = fence.is_some() || config.fence_command.is_some();
    let deadline = config
        .interval
        .clamp(Duration::from_millis(200), checks::MAX_CALL);
    let probe = checks::Probe::new(
        identity,
        vote_account,
        config.cluster_rpc_url.clone(),
        NodeRpc::new(local_url.clone()),
        config.primary_rpc_url.clone().map(NodeRpc::new),
        fence,
        config.respect_leader_slots,
        deadline,
    );
    let mut timeline = timeline::Timeline::open(config.timeline.as_deref(), events)?;
    timeline.record(started_entry(
        config,
        &params,
        identity,
        vote_account,
        &local_url,
    ));
    if !params.fenced {
        tracing::warn!("no etcd fence and no --fence-command: the sentinel watches and reports, but never promotes");
    }
    Ok(poller::Poller {
        detector: Detector::new(params),
        probe,
        timeline,
        metrics: Arc::new(Mutex::new(metrics::Metrics::default())),
        interval: config.interval,
        ledger: config.ledger.clone(),
        identity_keypair: config.identity_keypair.clone(),
        require_tower: config.require_tower,
        dry_run: config.dry_run,
        fence_command: config.fence_command.clone(),
        pre_hook: config.pre_hook.clone(),
        post_hook: config.post_hook.clone(),
        after: None,
        last_state: None,
        promotions: Vec::new(),
    })
}

fn started_entry(
    config: &Config,
    params: &Params,
    identity: Pubkey,
    vote: Pubkey,
    local: &str,
) -> Entry {
    Entry::new(timeline::now_ms(), Event::Started)
        .with("identity", identity.to_string())
        .with("vote_account", vote.to_string())
        .with("cluster_rpc", config.cluster_rpc_url.clone())
        .with("local_rpc", local.to_string())
        .with("interval_ms", config.interval.as_millis() as u64)
        .with("failures", params.failures)
        .with("cooldown_ms", params.cooldown_ms)
        .with(
            "fence",
            if config.etcd.is_some() {
                "etcd"
            } else if config.fence_command.is_some() {
                "command"
            } else {
                "none"
            },
        )
        .with("dry_run", config.dry_run)
}

/// The local node's RPC, from its admin socket (`rpcAddress`).
async fn local_rpc_url(ledger: &std::path::Path) -> Result<String, SentinelError> {
    let err = |reason: String| SentinelError::LocalRpc { reason };
    let ask = async {
        let mut client = AdminClient::connect(ledger).await?;
        client.rpc_address().await
    };
    let addr = tokio::time::timeout(Duration::from_secs(5), ask)
        .await
        .map_err(|_| err("its admin socket did not answer within 5 s".into()))?
        .map_err(|e| err(e.to_string()))?;
    let addr = addr.ok_or_else(|| err("the local node serves no RPC".into()))?;
    Ok(format!("http://{addr}"))
}
