//! agave's `TowerStorage` on the fence: `load` takes over, `store` is the
//! fenced write.

use std::{
    collections::HashMap,
    future::Future,
    sync::{mpsc, Arc, Mutex, PoisonError},
    time::Duration,
};

use solana_core::consensus::{
    tower_storage::{SavedTowerVersions, TowerStorage},
    Result as TowerResult, Tower,
};
use solana_pubkey::Pubkey;
use towerlock_etcd::EtcdConfig;

use crate::{
    fence::{EtcdFence, FenceToken},
    saved, FenceError, InstanceRecord,
};

/// How long past the etcd deadline a caller waits for the runtime itself
/// before giving up on it (a wedged runtime is an unknown outcome too).
const RUNTIME_GRACE: Duration = Duration::from_secs(1);

/// agave's tower storage in etcd behind towerlock's fence
/// (`--tower-storage etcd`).
///
/// agave's trait is synchronous and is called from its own threads (start-up,
/// replay, the voting service, the admin RPC, which may run inside a tokio
/// runtime of its own): every call is carried out on this storage's runtime
/// and waited for on a plain channel, bounded by the etcd deadline
/// (`EtcdConfig::request_timeout`, towerlock's `--etcd-timeout-ms`, default
/// 2000 ms).
pub struct EtcdTowerStorage {
    fence: Arc<EtcdFence>,
    /// The token of the last load of each identity (start-up, set-identity).
    tokens: Mutex<HashMap<Pubkey, FenceToken>>,
    /// `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for EtcdTowerStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTowerStorage")
            .field("instance", self.fence.instance())
            .finish_non_exhaustive()
    }
}

impl EtcdTowerStorage {
    /// Connects with mutual TLS as `config` says; fails when no endpoint
    /// answers (naming the cause) or the certificate files are wrong.
    pub fn new(config: &EtcdConfig) -> Result<Self, FenceError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("towerlockEtcd")
            .enable_all()
            .build()
            .map_err(|err| FenceError::Runtime(format!("cannot start: {err}")))?;
        let config = config.clone();
        let fence = runtime.block_on(async move { EtcdFence::connect(&config).await })?;
        Ok(Self {
            fence: Arc::new(fence),
            tokens: Mutex::new(HashMap::new()),
            runtime: Some(runtime),
        })
    }

    /// The record this instance writes into `<identity>/instance`.
    pub fn instance(&self) -> &InstanceRecord {
        self.fence.instance()
    }

    /// The token of the last successful load of `identity`, if any.
    pub fn token(&self, identity: &Pubkey) -> Option<FenceToken> {
        self.tokens().get(identity).copied()
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<Pubkey, FenceToken>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `call` on the runtime and waits for it, whatever thread (or
    /// runtime) the caller is on, at most the deadline plus a grace.
    fn run<T, E, F>(&self, what: &'static str, call: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<FenceError> + Send + 'static,
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let (sender, receiver) = mpsc::sync_channel(1);
        let deadline = self.fence.timeout();
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        runtime.spawn(async move {
            let result = match tokio::time::timeout(deadline, call).await {
                Ok(result) => result,
                Err(_) => Err(FenceError::Unavailable {
                    reason: format!("{what}: no answer within {deadline:?}"),
                }
                .into()),
            };
            let _ = sender.send(result);
        });
        receiver
            .recv_timeout(deadline + RUNTIME_GRACE)
            .unwrap_or_else(|_| {
                Err(FenceError::Unavailable {
                    reason: format!(
                        "{what}: the storage runtime did not answer within {:?}",
                        deadline + RUNTIME_GRACE
                    ),
                }
                .into())
            })
    }
}

/// agave may drop its storage on any thread, a runtime's included, where
/// dropping a runtime the usual way panics.
impl Drop for EtcdTowerStorage {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl TowerStorage for EtcdTowerStorage {
    /// Takes over the fence of `node_pubkey` and returns its tower, read and
    /// verified (agave's signature and owner checks) before the fence moved.
    /// With no tower stored the fence is taken all the same and the answer is
    /// agave's "tower file missing" (`TowerError::IoError` of kind
    /// `NotFound`), so agave starts from its vote account as with a file,
    /// and `--require-tower` refuses as it would.
    fn load(&self, node_pubkey: &Pubkey) -> TowerResult<Tower> {
        let fence = Arc::clone(&self.fence);
        let identity = *node_pubkey;
        let taken = self.run("load", async move { fence.takeover(&identity).await });
        let taken = taken.inspect_err(
            |err| tracing::error!(%identity, "tower load through the fence failed: {err}"),
        )?;
        self.tokens().insert(identity, taken.token);
        tracing::info!(%identity, revision = taken.token.revision, "holding the tower fence");
        match taken.tower {
            Some((_, tower)) => Ok(tower),
            None => Err(FenceError::NotFound {
                identity,
                key: self.fence.key(&identity, "tower"),
            }
            .into()),
        }
    }

    /// Stores the tower under the fence of its node, taken by the last
    /// `load` of that node. Any failure — the fence lost to another
    /// instance, an unknown outcome, no fence held — is an error, and agave's
    /// voting service then exits without sending the vote.
    fn store(&self, saved_tower: &SavedTowerVersions) -> TowerResult<()> {
        let bytes = saved::to_bytes(saved_tower)?;
        let identity = saved::owner(&bytes)?;
        let token = self
            .token(&identity)
            .ok_or(FenceError::NoFence { identity })?;
        let fence = Arc::clone(&self.fence);
        let stored = self.run("store", async move { fence.store(&token, bytes).await });
        match stored {
            Ok(revision) => {
                tracing::trace!(%identity, revision, "tower stored");
                Ok(())
            }
            Err(err) => {
                tracing::error!(%identity, "tower store through the fence failed: {err}");
                Err(err.into())
            }
        }
    }
}
