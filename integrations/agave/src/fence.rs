//! towerlock's fence in etcd (docs/architecture.md §2), for agave: the same
//! keys, records and transactions as `towerlock_storage::EtcdTowerStorage`,
//! so that agave, towerlock-validator and the `towerlock` tools see one
//! fence.
//!
//! The fence lives here rather than in `towerlock-storage` because that
//! crate cannot link beside `solana-core` 3.1: agave pins
//! `solana-serde-varint = "=3.0.0"`, towerlock's `solana-vote-interface` 7
//! needs `^3.0.1`, and cargo allows one 3.x. The tests of this crate check
//! the two against each other through the `towerlock` binary.
//!
//! - takeover: read and verify the tower, then one transaction
//!   `when mod_revision(<id>/tower) == seen then put(<id>/instance, ours)
//!   else get(<id>/tower)`, retried while another holder keeps storing, until
//!   the deadline (`Busy`). The token is the revision of that write.
//! - store: `when mod_revision(<id>/instance) == token and value(<id>/instance)
//!   == ours then put(<id>/tower, bytes) else get(<id>/instance)`, sent once.

use std::{
    future::Future,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use solana_core::consensus::{Tower, TowerError};
use solana_pubkey::Pubkey;
use towerlock_etcd::{
    etcd_client::{
        Client, Compare, CompareOp, KvClient, PutOptions, Txn, TxnOp, TxnOpResponse, TxnResponse,
    },
    Endpoints, EtcdConfig,
};

use crate::{
    record::{describe_holder, record_format, InstanceRecord, RECORD_FORMAT},
    saved, FenceError,
};

/// Proof of holding the fence of one identity: the revision of our
/// takeover write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FenceToken {
    pub identity: Pubkey,
    pub revision: i64,
}

/// What a takeover found: the token and the identity's tower, if any.
pub struct Takeover {
    pub token: FenceToken,
    /// The stored tower (its bytes, and agave's `Tower` made of them), or
    /// `None` when the identity never stored one.
    pub tower: Option<(Vec<u8>, Tower)>,
}

/// One instance's fence over one etcd cluster.
pub struct EtcdFence {
    endpoints: Endpoints,
    clients: Mutex<(Vec<Client>, usize)>,
    prefix: String,
    timeout: Duration,
    instance: InstanceRecord,
    instance_bytes: Vec<u8>,
}

impl EtcdFence {
    /// Connects with mutual TLS, one client per endpoint; succeeds when at
    /// least one endpoint answers (the others are tried again later).
    pub async fn connect(config: &EtcdConfig) -> Result<Self, FenceError> {
        let endpoints = Endpoints::new(config).map_err(FenceError::Connect)?;
        let mut clients = Vec::with_capacity(endpoints.len());
        let mut current = None;
        let mut first_error = None;
        for (index, checked) in endpoints.check_each().await.into_iter().enumerate() {
            match checked {
                Ok(client) => {
                    current.get_or_insert(index);
                    clients.push(client);
                }
                Err(err) => {
                    tracing::warn!(
                        "etcd endpoint {} does not answer now; it will be tried again: {err}",
                        endpoints.endpoint(index)
                    );
                    first_error.get_or_insert(err);
                    clients.push(endpoints.client(index).await.map_err(FenceError::Connect)?);
                }
            }
        }
        let Some(current) = current else {
            let err = first_error.expect("an endpoint failed if none answered");
            return Err(FenceError::Connect(err));
        };
        let instance = InstanceRecord::for_this_process();
        tracing::info!(%instance, endpoint = endpoints.endpoint(current), "connected to etcd for tower storage");
        Ok(Self {
            endpoints,
            clients: Mutex::new((clients, current)),
            prefix: config.key_prefix.clone(),
            timeout: config.request_timeout,
            instance_bytes: instance.to_bytes(),
            instance,
        })
    }

    /// This instance's record in `<identity>/instance` once it holds a fence.
    pub fn instance(&self) -> &InstanceRecord {
        &self.instance
    }

    /// The deadline of every call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The etcd key `<prefix><identity>/<name>`.
    pub fn key(&self, identity: &Pubkey, name: &str) -> String {
        format!("{}{identity}/{name}", self.prefix)
    }

    /// Takes the fence of `identity` and returns its tower, verified with
    /// agave's checks. A tower that fails them stops the takeover before the
    /// fence moves.
    pub async fn takeover(&self, identity: &Pubkey) -> Result<Takeover, TowerError> {
        let until = Instant::now() + self.timeout;
        let instance_key = self.key(identity, "instance");
        if let Some((_, bytes)) = self.get(&instance_key, until).await? {
            if let Some(format) = record_format(&bytes).filter(|f| *f > RECORD_FORMAT) {
                return Err(FenceError::NewerRecord {
                    key: instance_key,
                    format,
                    newest: RECORD_FORMAT,
                }
                .into());
            }
        }
        let tower_key = self.key(identity, "tower");
        let mut seen = self.get(&tower_key, until).await?;
        loop {
            let (seen_revision, tower) = match seen {
                Some((revision, bytes)) => {
                    let tower = saved::tower_from_bytes(&bytes, identity)?;
                    (revision, Some((bytes, tower)))
                }
                None => (0, None),
            };
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    tower_key.as_str(),
                    CompareOp::Equal,
                    seen_revision,
                )])
                .and_then([TxnOp::put(
                    instance_key.as_str(),
                    self.instance_bytes.clone(),
                    Some(PutOptions::new().with_prev_key()),
                )])
                .or_else([TxnOp::get(tower_key.as_str(), None)]);
            let left = until.saturating_duration_since(Instant::now());
            let response = self.attempt("takeover", left, &txn_request(txn)).await?;
            if response.succeeded() {
                return Ok(self.taken(identity, tower, &response));
            }
            if Instant::now() >= until {
                return Err(FenceError::Busy {
                    identity: *identity,
                    waited: self.timeout,
                }
                .into());
            }
            tracing::debug!(%identity, "the tower changed during the takeover; trying again");
            seen = first_get(&response).map(|kv| (kv.mod_revision(), kv.value().to_vec()));
        }
    }

    fn taken(
        &self,
        identity: &Pubkey,
        tower: Option<(Vec<u8>, Tower)>,
        response: &TxnResponse,
    ) -> Takeover {
        let revision = response.header().map(|h| h.revision()).unwrap_or_default();
        let displaced = response.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Put(put) => put.prev_key().map(|kv| kv.value().to_vec()),
            _ => None,
        });
        if displaced.as_deref() != Some(self.instance_bytes.as_slice()) {
            tracing::info!(
                %identity,
                revision,
                displaced = describe_holder(displaced.as_deref()),
                "took over the tower fence"
            );
        }
        Takeover {
            token: FenceToken {
                identity: *identity,
                revision,
            },
            tower,
        }
    }

    /// Stores `bytes` (a saved tower of `token.identity`) if `token` still
    /// holds the fence. Sent once: when it goes unanswered its outcome is
    /// unknown and that is the answer (`Unavailable`).
    pub async fn store(&self, token: &FenceToken, bytes: Vec<u8>) -> Result<i64, FenceError> {
        let instance_key = self.key(&token.identity, "instance");
        let txn = Txn::new()
            .when([
                Compare::mod_revision(instance_key.as_str(), CompareOp::Equal, token.revision),
                Compare::value(
                    instance_key.as_str(),
                    CompareOp::Equal,
                    self.instance_bytes.clone(),
                ),
            ])
            .and_then([TxnOp::put(self.key(&token.identity, "tower"), bytes, None)])
            .or_else([TxnOp::get(instance_key.as_str(), None)]);
        let response = self
            .attempt("store the tower", self.timeout, &txn_request(txn))
            .await?;
        if response.succeeded() {
            return Ok(response.header().map(|h| h.revision()).unwrap_or_default());
        }
        let holder = first_get(&response).map(|kv| kv.value().to_vec());
        Err(FenceError::LockLost {
            identity: token.identity,
            by: describe_holder(holder.as_deref()),
        })
    }

    /// A read, tried on the next endpoint when one does not answer, while
    /// `until` has not passed: `(mod_revision, value)`.
    async fn get(&self, key: &str, until: Instant) -> Result<Option<(i64, Vec<u8>)>, FenceError> {
        let request = |mut kv: KvClient| {
            let key = key.to_string();
            async move { kv.get(key, None).await }
        };
        let what = format!("read {key}");
        let mut tries = self.endpoints.len();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let result = self.attempt(&what, left, &request).await;
            tries -= 1;
            match result {
                Err(err) if err.is_unavailable() && tries > 0 && Instant::now() < until => continue,
                result => {
                    return result.map(|response| {
                        response
                            .kvs()
                            .first()
                            .map(|kv| (kv.mod_revision(), kv.value().to_vec()))
                    })
                }
            }
        }
    }

    /// One request through the current endpoint, bounded by `deadline`.
    /// When it gets no answer, later requests go to the next endpoint, and
    /// this one gets a fresh connection for its next turn.
    async fn attempt<T, F, Fut>(
        &self,
        what: &str,
        deadline: Duration,
        request: &F,
    ) -> Result<T, FenceError>
    where
        F: Fn(KvClient) -> Fut,
        Fut: Future<Output = Result<T, towerlock_etcd::etcd_client::Error>>,
    {
        let (index, client) = self.current();
        let endpoint = self.endpoints.endpoint(index).to_string();
        let result = match tokio::time::timeout(deadline, request(client.kv_client())).await {
            Ok(Ok(response)) => return Ok(response),
            Ok(Err(err)) if towerlock_etcd::is_outcome_unknown(&err) => FenceError::Unavailable {
                reason: format!(
                    "{what} through {endpoint}: {}",
                    towerlock_etcd::describe_chain(&err)
                ),
            },
            Ok(Err(err)) => return Err(FenceError::refused(what, &err)),
            Err(_) => FenceError::Unavailable {
                reason: format!("{what} through {endpoint}: no answer within {deadline:?}"),
            },
        };
        self.failed(index).await;
        Err(result)
    }

    fn current(&self) -> (usize, Client) {
        let state = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        (state.1, state.0[state.1].clone())
    }

    async fn failed(&self, index: usize) {
        let fresh = self.endpoints.client(index).await;
        let mut state = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Ok(fresh) = fresh {
            state.0[index] = fresh;
        }
        if state.1 == index && self.endpoints.len() > 1 {
            state.1 = (index + 1) % self.endpoints.len();
            tracing::warn!(
                "etcd endpoint {} failed; moving to {}",
                self.endpoints.endpoint(index),
                self.endpoints.endpoint(state.1)
            );
        }
    }
}

/// A request sending `txn` (cloned for each attempt).
fn txn_request(
    txn: Txn,
) -> impl Fn(
    KvClient,
) -> std::pin::Pin<
    Box<dyn Future<Output = Result<TxnResponse, towerlock_etcd::etcd_client::Error>> + Send>,
> {
    move |mut kv: KvClient| {
        let txn = txn.clone();
        Box::pin(async move { kv.txn(txn).await })
    }
}

/// The first key-value read by the `else` branch of a transaction.
fn first_get(response: &TxnResponse) -> Option<towerlock_etcd::etcd_client::KeyValue> {
    response.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().cloned(),
        _ => None,
    })
}
