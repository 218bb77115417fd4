//! The local cluster, served in this process on a thread of its own, and
//! what the lab reads from it (its audit trail).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use towerlock_audit::event::{BlockEvent, Event, VoteEvent};
use towerlock_cluster::genesis::{
    self, Consensus, InitOptions, ValidatorKeys, IDENTITY_FILE, SECONDARY_IDENTITY_FILE,
    VOTE_ACCOUNT_FILE,
};
use towerlock_cluster::server::{Server, ServerConfig, ServerError, AUDIT_FILE};

use crate::trail::{as_landed, as_vote, banks_between, now_ms, AuditTrail, LandedVote};
use crate::{wait_until, LabError};

/// How long a restart waits for the old listener's port to come free.
const REBIND_DEADLINE: Duration = Duration::from_secs(10);

/// A cluster server on a thread (and runtime) of its own; stops when
/// dropped. Stopping waits until the server has written its last file,
/// whatever runtime the caller is on, so that its folder can be removed
/// right after.
pub struct ClusterServer {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Bound = Result<String, ServerError>;

impl ClusterServer {
    /// Serves the cluster folder `dir` on `rpc_addr`.
    pub async fn start(dir: &Path, rpc_addr: SocketAddr) -> Result<Self, LabError> {
        let config = ServerConfig {
            dir: dir.to_path_buf(),
            slot_ms: None,
            rpc_addr,
        };
        let thread_error = LabError::io("start the cluster's thread for", dir);
        let (bound_tx, bound) = tokio::sync::oneshot::channel::<Bound>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(LabError::io("start the cluster's runtime for", dir))?;
        let thread = std::thread::Builder::new()
            .name("lab-cluster".into())
            .spawn(move || runtime.block_on(serve(config, bound_tx, stopped)))
            .map_err(thread_error)?;
        let start_error = |source| LabError::ClusterStart {
            dir: dir.to_path_buf(),
            addr: rpc_addr,
            source,
        };
        match bound.await {
            Ok(Ok(url)) => Ok(Self {
                url,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(err)) => {
                let _ = thread.join();
                Err(start_error(err))
            }
            Err(_) => {
                let _ = thread.join();
                let ended = std::io::Error::other("the cluster's thread ended before binding");
                Err(LabError::io("start the cluster from", dir)(ended))
            }
        }
    }

    /// The cluster's JSON-RPC URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server and waits until it has flushed everything.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ClusterServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The cluster thread's body: bind, say where, serve until told to stop.
async fn serve(
    config: ServerConfig,
    bound: tokio::sync::oneshot::Sender<Bound>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let server = match Server::bind(config).await {
        Ok(server) => server,
        Err(err) => {
            let _ = bound.send(Err(err));
            return;
        }
    };
    let _ = bound.send(Ok(server.rpc_url()));
    let _ = server
        .run(async move {
            let _ = stopped.await;
        })
        .await;
}

/// A local cluster running in this process, with its folder and keys;
/// stops when dropped.
pub struct LabCluster {
    /// The cluster folder (genesis, keys, snapshot, audit trail).
    pub dir: PathBuf,
    /// Its JSON-RPC URL.
    pub url: String,
    /// Our validator's keys (the seed's key files).
    pub keys: ValidatorKeys,
    /// The audit trail, followed as it grows.
    pub trail: AuditTrail,
    server: Option<ClusterServer>,
}

impl LabCluster {
    /// Creates a cluster folder in `dir` and serves it on a free port.
    pub async fn start(dir: &Path, options: &InitOptions) -> Result<Self, LabError> {
        Self::start_with(dir, options, Consensus::Tower).await
    }

    /// [`Self::start`] for a cluster running `consensus`.
    pub async fn start_with(
        dir: &Path,
        options: &InitOptions,
        consensus: Consensus,
    ) -> Result<Self, LabError> {
        let init_error = |source| LabError::ClusterInit {
            dir: dir.to_path_buf(),
            source,
        };
        let (_, keys) =
            genesis::init_with(dir, options, consensus, now_ms()).map_err(init_error)?;
        let keys = keys.into_iter().next().ok_or_else(|| {
            init_error(genesis::GenesisError::Invalid("no validator keys".into()))
        })?;
        let server = ClusterServer::start(dir, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        Ok(Self {
            dir: dir.to_path_buf(),
            url: server.url().to_string(),
            keys,
            trail: AuditTrail::new(dir.join(AUDIT_FILE)),
            server: Some(server),
        })
    }

    /// `<dir>/audit.jsonl`.
    pub fn audit_path(&self) -> PathBuf {
        self.trail.path().to_path_buf()
    }

    /// The staked identity's keypair file (`validator-keypair.json`).
    pub fn identity_file(&self) -> PathBuf {
        self.keys.dir.join(IDENTITY_FILE)
    }

    /// The secondary's own keypair file (`secondary-validator-keypair.json`).
    pub fn secondary_identity_file(&self) -> PathBuf {
        self.keys.dir.join(SECONDARY_IDENTITY_FILE)
    }

    /// The vote account's keypair file (`vote-account-keypair.json`).
    pub fn vote_account_file(&self) -> PathBuf {
        self.keys.dir.join(VOTE_ACCOUNT_FILE)
    }

    /// Every event of the audit trail so far.
    pub fn events(&self) -> Result<Vec<Event>, LabError> {
        self.trail.events()
    }

    /// Every vote received so far.
    pub fn votes(&self) -> Result<Vec<VoteEvent>, LabError> {
        self.trail.votes()
    }

    /// Every block one of our leaders submitted so far.
    pub fn blocks(&self) -> Result<Vec<BlockEvent>, LabError> {
        self.trail.blocks()
    }

    /// Accepted votes sent by `instance`, in trail order.
    pub fn accepted_votes(&self, instance: &str) -> Result<Vec<VoteEvent>, LabError> {
        self.trail.accepted_votes(instance)
    }

    /// Waits until an accepted vote from `instance` received after
    /// `after_ms` is in the trail; returns it.
    pub async fn wait_for_vote(
        &self,
        instance: &str,
        after_ms: u64,
        deadline: Duration,
    ) -> Result<VoteEvent, LabError> {
        let what = format!("an accepted vote of instance {instance}");
        self.trail
            .wait_for(deadline, &what, |e| {
                as_vote(e)
                    .filter(|v| v.instance == instance && v.ts_ms > after_ms && v.result == "ok")
                    .cloned()
            })
            .await
    }

    /// Landed votes of either consensus sent by `instance`, in trail order.
    pub fn landed_votes(&self, instance: &str) -> Result<Vec<LandedVote>, LabError> {
        self.trail.landed_votes(instance)
    }

    /// Waits until `instance` has `n` more landed votes (of either
    /// consensus) than now; returns the last.
    pub async fn wait_for_more_landed(
        &self,
        instance: &str,
        n: usize,
        deadline: Duration,
    ) -> Result<LandedVote, LabError> {
        let before = self.landed_votes(instance)?.len();
        let what = format!("{n} more landed votes of instance {instance}");
        self.trail
            .wait_for_nth(deadline, &what, before + n, |e| {
                as_landed(e).filter(|v| v.instance == instance)
            })
            .await
    }

    /// Waits until `instance` has `n` more accepted votes than now.
    pub async fn wait_for_more_votes(
        &self,
        instance: &str,
        n: usize,
        deadline: Duration,
    ) -> Result<VoteEvent, LabError> {
        let before = self.accepted_votes(instance)?.len();
        let what = format!("{n} more accepted votes of instance {instance}");
        self.trail
            .wait_for_nth(deadline, &what, before + n, |e| {
                as_vote(e)
                    .filter(|v| v.instance == instance && v.result == "ok")
                    .cloned()
            })
            .await
    }

    /// Waits until `n` banks frozen after `after_ms` are in the trail;
    /// returns the slot of the `n`th.
    pub async fn wait_for_banks(
        &self,
        after_ms: u64,
        n: usize,
        deadline: Duration,
    ) -> Result<u64, LabError> {
        let what = format!("{n} banks");
        self.trail
            .wait_for_nth(deadline, &what, n, |e| match e {
                Event::Bank(b) if b.ts_ms > after_ms => Some(b.slot),
                _ => None,
            })
            .await
    }

    /// Banks strictly between two slots: the slots a vote account could
    /// have voted on between two votes.
    pub fn banks_between(&self, after: u64, before: u64) -> Result<usize, LabError> {
        self.trail
            .with_events(|events| banks_between(events, after, before))
    }

    /// Votable slots missed across a switch from `old` to `new`: banks
    /// between the old holder's last accepted vote and the new holder's
    /// first one received after `since_ms` (`None` if it has not voted).
    pub fn missed_slots(
        &self,
        old: &str,
        new: &str,
        since_ms: u64,
    ) -> Result<Option<usize>, LabError> {
        let last_old = self
            .landed_votes(old)?
            .iter()
            .map(|v| v.slot)
            .max()
            .unwrap_or(0);
        let first_new = self
            .landed_votes(new)?
            .iter()
            .filter(|v| v.ts_ms >= since_ms)
            .map(|v| v.slot)
            .min();
        match first_new {
            Some(first_new) => self.banks_between(last_old, first_new).map(Some),
            None => Ok(None),
        }
    }

    /// Stops the cluster and starts it again from its folder on the same
    /// port (validators see their subscriptions drop and come back).
    pub async fn restart(&mut self) -> Result<(), LabError> {
        self.stop().await;
        let addr: SocketAddr = self
            .url
            .trim_start_matches("http://")
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
        let mut last = None;
        let server = wait_until(
            REBIND_DEADLINE,
            "the cluster's port to come free",
            async || {
                match ClusterServer::start(&self.dir, addr).await {
                    Ok(server) => Ok(Some(server)),
                    // The old listener may linger for a moment.
                    Err(
                        err @ LabError::ClusterStart {
                            source: ServerError::Bind { .. },
                            ..
                        },
                    ) => {
                        last = Some(err);
                        Ok(None)
                    }
                    Err(err) => Err(err),
                }
            },
        )
        .await
        .map_err(|err| last.take().unwrap_or(err))?;
        self.server = Some(server);
        Ok(())
    }

    /// Stops the cluster and waits for it to flush its trail.
    pub async fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = tokio::task::spawn_blocking(move || server.stop()).await;
        }
    }
}
