//! The tower in etcd, fenced by the revision of the takeover write
//! (docs/architecture.md §2).
//!
//! Keys (agave's names, under an optional prefix):
//! `<identity>/instance` holds the [`InstanceRecord`] of the fence holder,
//! `<identity>/tower` the saved tower (the same bytes as agave's file),
//! `<identity>/leader` the last leader slot produced, `<identity>/vote_history`
//! Alpenglow's vote history (the same bytes as agave 4.x's file).
//!
//! etcd's Lock and Election APIs are never used: their safety depends on
//! leases and clocks. Every write is a plain transaction whose compare is the
//! fence.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use solana_pubkey::Pubkey;
use towerlock_etcd::{
    etcd_client::{
        Client, Compare, CompareOp, KeyValue, KvClient, PutOptions, Txn, TxnOp, TxnOpResponse,
        TxnResponse,
    },
    Endpoints, EtcdConfig,
};
use towerlock_tower::{SavedTower, SavedVoteHistory, Slot};

use crate::{
    vote_history::verify_vote_history, FenceToken, InstanceRecord, LeaderSlotFenced, StorageError,
    Takeover, TowerStorage, TowerStored, VoteHistoryStored,
};

/// Fenced tower storage in etcd.
///
/// It holds one client per configured endpoint and sends each request
/// through the current one, with the request deadline. When a request fails
/// without an answer (`Unavailable`: transport failure, timeout, a member
/// without leader), the next request goes to the next endpoint, and the
/// failed one gets a fresh connection for when its turn comes again: an
/// endpoint down at start, or lost for a while, is used again once it is
/// back. Clones share the clients and the current endpoint.
#[derive(Clone)]
pub struct EtcdTowerStorage {
    pool: Arc<Pool>,
    prefix: String,
    timeout: Duration,
    instance: InstanceRecord,
    /// `instance` as stored: every fenced write compares against it.
    instance_bytes: Vec<u8>,
}

/// The clients of one storage, one per endpoint, and the one in use.
struct Pool {
    /// How to reach each endpoint again; `None` for a client given by the
    /// caller, which is kept whatever happens.
    endpoints: Option<Endpoints>,
    state: Mutex<PoolState>,
}

struct PoolState {
    clients: Vec<Client>,
    current: usize,
}

impl Pool {
    fn single(client: Client) -> Self {
        Self {
            endpoints: None,
            state: Mutex::new(PoolState {
                clients: vec![client],
                current: 0,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.state().clients.len()
    }

    /// The endpoint in use and its client.
    fn current(&self) -> (usize, Client) {
        let state = self.state();
        (state.current, state.clients[state.current].clone())
    }

    fn name(&self, index: usize) -> String {
        match &self.endpoints {
            Some(endpoints) => endpoints.endpoint(index).to_string(),
            None => "etcd".to_string(),
        }
    }

    /// A request through endpoint `index` got no answer: later requests go
    /// to the next endpoint, and `index` gets a fresh connection.
    async fn failed(&self, index: usize, reason: &str) {
        let Some(endpoints) = &self.endpoints else {
            return;
        };
        // No I/O: the new client connects on its first request.
        let fresh = endpoints.client(index).await;
        let mut state = self.state();
        if let Ok(fresh) = fresh {
            state.clients[index] = fresh;
        }
        if state.current == index && endpoints.len() > 1 {
            state.current = (index + 1) % endpoints.len();
            tracing::warn!(
                "etcd endpoint {} failed ({reason}); moving to {}",
                endpoints.endpoint(index),
                endpoints.endpoint(state.current)
            );
        }
    }
}

impl EtcdTowerStorage {
    /// Connects with mutual TLS as `config` says: one client per endpoint.
    /// Every endpoint is checked at once; this succeeds when at least one
    /// answers, and starts with the first of those. The others are kept and
    /// tried in turn later (their failure now is logged, for diagnosis).
    /// When none answers, the error names the first endpoint's cause.
    pub async fn connect(config: &EtcdConfig) -> Result<Self, StorageError> {
        let endpoints = Endpoints::new(config).map_err(StorageError::Connect)?;
        let mut clients = Vec::with_capacity(endpoints.len());
        let mut current = None;
        let mut first_error = None;
        for (index, checked) in endpoints.check_each().await.into_iter().enumerate() {
            let client = match checked {
                Ok(client) => {
                    current.get_or_insert(index);
                    client
                }
                Err(err) => {
                    if endpoints.len() > 1 {
                        tracing::warn!(
                            "etcd endpoint {} does not answer now; it will be tried again: {err}",
                            endpoints.endpoint(index)
                        );
                    }
                    first_error.get_or_insert(err);
                    endpoints
                        .client(index)
                        .await
                        .map_err(StorageError::Connect)?
                }
            };
            clients.push(client);
        }
        let Some(current) = current else {
            let err = first_error.expect("an endpoint failed if none answered");
            return Err(StorageError::Connect(err));
        };
        let pool = Pool {
            endpoints: Some(endpoints),
            state: Mutex::new(PoolState { clients, current }),
        };
        Ok(Self::with_pool(
            pool,
            config.key_prefix.clone(),
            config.request_timeout,
        ))
    }

    /// Uses an existing client; `timeout` bounds every request.
    pub fn new(client: Client, prefix: String, timeout: Duration) -> Self {
        Self::with_pool(Pool::single(client), prefix, timeout)
    }

    fn with_pool(pool: Pool, prefix: String, timeout: Duration) -> Self {
        let instance = InstanceRecord::for_this_process();
        Self {
            pool: Arc::new(pool),
            prefix,
            timeout,
            instance_bytes: instance.to_bytes(),
            instance,
        }
    }

    /// The same instance over another connection (another endpoint of the
    /// cluster): its writes compare against the same instance record.
    pub fn with_client(&self, client: Client) -> Self {
        Self {
            pool: Arc::new(Pool::single(client)),
            ..self.clone()
        }
    }

    /// The etcd key `<prefix><identity>/<name>`.
    pub fn key(&self, identity: &Pubkey, name: &str) -> String {
        format!("{}{identity}/{name}", self.prefix)
    }

    /// The deadline of each request.
    pub(crate) fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    /// The client of the endpoint in use, for tools that need plain reads
    /// and writes.
    pub fn client(&self) -> Client {
        self.pool.current().1
    }

    /// The endpoint the next request goes through (`HOST:PORT`).
    pub fn endpoint(&self) -> String {
        self.pool.name(self.pool.current().0)
    }

    /// The current fence holder of `identity`, if any ever took it.
    pub async fn holder(&self, identity: &Pubkey) -> Result<Option<InstanceRecord>, StorageError> {
        let key = self.key(identity, "instance");
        Ok(self
            .get(&key)
            .await?
            .map(|kv| InstanceRecord::from_bytes(kv.value())))
    }

    /// Takes the fence without reading or verifying the stored tower: for an
    /// operator who replaces a tower that cannot be read (`tower import
    /// --force`). Validators never use this.
    pub async fn force_takeover(&self, identity: &Pubkey) -> Result<FenceToken, StorageError> {
        let txn = Txn::new().and_then([TxnOp::put(
            self.key(identity, "instance"),
            self.instance_bytes.clone(),
            None,
        )]);
        let until = Instant::now() + self.timeout;
        // Sent again through another endpoint if unanswered: putting the
        // same record twice takes the fence all the same.
        let response = self
            .on_any("forced takeover", until, txn_request(txn))
            .await?;
        let revision = response.header().map(|h| h.revision()).unwrap_or_default();
        Ok(FenceToken::new(*identity, revision, &self.instance))
    }

    /// One attempt of `request` through the current endpoint, bounded by
    /// `deadline`. On `Unavailable` later requests go to the next endpoint.
    async fn attempt<T, F, Fut>(
        &self,
        what: &str,
        deadline: Duration,
        request: &F,
    ) -> Result<T, StorageError>
    where
        F: Fn(KvClient) -> Fut,
        Fut: Future<Output = Result<T, towerlock_etcd::etcd_client::Error>>,
    {
        let (index, client) = self.pool.current();
        let result = match tokio::time::timeout(deadline, request(client.kv_client())).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) if towerlock_etcd::is_outcome_unknown(&err) => {
                Err(StorageError::Unavailable {
                    reason: format!(
                        "{what} through {}: {}",
                        self.pool.name(index),
                        towerlock_etcd::describe_chain(&err)
                    ),
                })
            }
            Ok(Err(err)) => Err(StorageError::refused(what, &err)),
            Err(_) => Err(StorageError::Unavailable {
                reason: format!(
                    "{what} through {}: no answer within {deadline:?}",
                    self.pool.name(index)
                ),
            }),
        };
        if let Err(StorageError::Unavailable { reason }) = &result {
            self.pool.failed(index, reason).await;
        }
        result
    }

    /// A write sent once, through the current endpoint. When it goes
    /// unanswered (`Unavailable`), it is *not* sent again here, not even
    /// through another endpoint: its outcome is unknown, and it may still be
    /// applied later. The caller renews the fence (`TowerStorage::renew`)
    /// before its next write, which voids this one if it is still in flight;
    /// only the next request moves to the next endpoint.
    async fn once<T, F, Fut>(&self, what: &str, request: F) -> Result<T, StorageError>
    where
        F: Fn(KvClient) -> Fut,
        Fut: Future<Output = Result<T, towerlock_etcd::etcd_client::Error>>,
    {
        self.attempt(what, self.timeout, &request).await
    }

    /// A request that may be sent again: a read, or a takeover (whose
    /// compare does not depend on an earlier attempt of its own). When an
    /// endpoint does not answer, the next one is tried at once, each endpoint
    /// at most once, while `until` has not passed.
    pub(crate) async fn on_any<T, F, Fut>(
        &self,
        what: &str,
        until: Instant,
        request: F,
    ) -> Result<T, StorageError>
    where
        F: Fn(KvClient) -> Fut,
        Fut: Future<Output = Result<T, towerlock_etcd::etcd_client::Error>>,
    {
        let mut result = self.attempt(what, self.timeout, &request).await;
        for _ in 1..self.pool.len() {
            let left = until.saturating_duration_since(Instant::now());
            if !matches!(result, Err(StorageError::Unavailable { .. })) || left.is_zero() {
                break;
            }
            result = self.attempt(what, left, &request).await;
        }
        result
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        self.get_until(key, Instant::now() + self.timeout).await
    }

    async fn get_until(&self, key: &str, until: Instant) -> Result<Option<KeyValue>, StorageError> {
        let response = self
            .on_any(&format!("read {key}"), until, |mut kv: KvClient| {
                let key = key.to_string();
                async move { kv.get(key, None).await }
            })
            .await?;
        Ok(response.kvs().first().cloned())
    }

    /// One write transaction: take the fence only if the tower and the vote
    /// history are still the ones verified (`seen`: their mod revisions, 0
    /// when absent), and read the last fenced leader slot; otherwise read
    /// both records again.
    fn takeover_txn(&self, identity: &Pubkey, seen: Seen) -> Txn {
        let tower_key = self.key(identity, "tower");
        let history_key = self.key(identity, "vote_history");
        Txn::new()
            .when([
                Compare::mod_revision(tower_key.as_str(), CompareOp::Equal, seen.tower),
                Compare::mod_revision(history_key.as_str(), CompareOp::Equal, seen.history),
            ])
            .and_then([
                TxnOp::put(
                    self.key(identity, "instance"),
                    self.instance_bytes.clone(),
                    Some(PutOptions::new().with_prev_key()),
                ),
                TxnOp::get(self.key(identity, "leader"), None),
            ])
            .or_else([TxnOp::get(tower_key, None), TxnOp::get(history_key, None)])
    }

    /// The takeover that `response` (a transaction of
    /// [`Self::takeover_txn`] that succeeded) made.
    fn taken(
        &self,
        identity: &Pubkey,
        (tower, vote_history): Verified,
        response: &TxnResponse,
    ) -> Result<Takeover, StorageError> {
        let revision = response.header().map(|h| h.revision()).unwrap_or_default();
        let mut displaced = None;
        let mut last_leader_slot = None;
        for op in response.op_responses() {
            match op {
                TxnOpResponse::Put(put) => {
                    displaced = put
                        .prev_key()
                        .map(|kv| InstanceRecord::from_bytes(kv.value()))
                }
                TxnOpResponse::Get(get) => {
                    if let Some(kv) = get.kvs().first() {
                        last_leader_slot = Some(self.leader_slot(identity, kv.value())?);
                    }
                }
                _ => {}
            }
        }
        if let Some(previous) = &displaced {
            if *previous != self.instance {
                tracing::info!(%identity, displaced = %previous, "took over the tower fence");
            }
        }
        Ok(Takeover {
            token: FenceToken::new(*identity, revision, &self.instance),
            tower,
            displaced,
            last_leader_slot,
            vote_history,
        })
    }

    /// The last leader slot stored under `<identity>/leader`, or why it
    /// cannot be used.
    pub(crate) fn leader_slot(
        &self,
        identity: &Pubkey,
        bytes: &[u8],
    ) -> Result<Slot, StorageError> {
        let location = || format!("etcd key {}", self.key(identity, "leader"));
        crate::parse_leader_record(bytes).map_err(|err| match err {
            crate::RecordError::Unreadable(reason) => StorageError::Corrupt {
                identity: *identity,
                location: location(),
                reason,
            },
            newer => StorageError::NewerRecord {
                identity: *identity,
                location: location(),
                source: newer,
            },
        })
    }

    /// The records a takeover found, verified before the fence moves: a
    /// corrupt or foreign one stops it without displacing anyone.
    fn verify_seen(
        &self,
        identity: &Pubkey,
        tower: Option<&KeyValue>,
        history: Option<&KeyValue>,
    ) -> Result<(Seen, Verified), StorageError> {
        let seen = Seen {
            tower: tower.map_or(0, KeyValue::mod_revision),
            history: history.map_or(0, KeyValue::mod_revision),
        };
        let tower = tower
            .map(|kv| self.verify(identity, kv.value()))
            .transpose()?;
        let history = history
            .map(|kv| {
                verify_vote_history(
                    identity,
                    || format!("etcd key {}", self.key(identity, "vote_history")),
                    kv.value(),
                )
            })
            .transpose()?;
        Ok((seen, (tower, history)))
    }

    pub(crate) fn verify(
        &self,
        identity: &Pubkey,
        bytes: &[u8],
    ) -> Result<SavedTower, StorageError> {
        SavedTower::from_bytes(bytes, identity).map_err(|err| {
            StorageError::from_tower(
                *identity,
                format!("etcd key {}", self.key(identity, "tower")),
                err,
            )
        })
    }

    /// A write guarded by the fence: `then` runs only while `token` holds it.
    /// Returns the revision of the write.
    pub(crate) async fn fenced(
        &self,
        what: &str,
        token: &FenceToken,
        then: TxnOp,
    ) -> Result<i64, StorageError> {
        let instance_key = self.key(&token.identity, "instance");
        let txn = Txn::new()
            .when([
                Compare::mod_revision(instance_key.as_str(), CompareOp::Equal, token.revision),
                Compare::value(
                    instance_key.as_str(),
                    CompareOp::Equal,
                    if token.instance == self.instance {
                        self.instance_bytes.clone()
                    } else {
                        token.instance.to_bytes()
                    },
                ),
            ])
            .and_then([then])
            .or_else([TxnOp::get(instance_key.as_str(), None)]);
        let response = self.once(what, txn_request(txn)).await?;
        if response.succeeded() {
            let revision = response.header().map(|h| h.revision()).unwrap_or_default();
            return Ok(revision);
        }
        let by = response
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.value().to_vec()),
                _ => None,
            })
            .map(|bytes| InstanceRecord::from_bytes(&bytes))
            .unwrap_or_else(InstanceRecord::gone);
        Err(StorageError::LockLost {
            identity: token.identity,
            by: Box::new(by),
        })
    }
}

#[async_trait]
impl TowerStorage for EtcdTowerStorage {
    fn instance(&self) -> &InstanceRecord {
        &self.instance
    }

    async fn takeover(&self, identity: &Pubkey) -> Result<Takeover, StorageError> {
        let tower_key = self.key(identity, "tower");
        // A holder that keeps storing can make an attempt lose the race; try
        // again (each retry is one round trip) until the request deadline.
        let until = Instant::now() + self.timeout;
        // An unreadable last leader slot would disable the block fence: it
        // stops the takeover before the fence moves, like a corrupt tower.
        let leader_key = self.key(identity, "leader");
        if let Some(kv) = self.get_until(&leader_key, until).await? {
            self.leader_slot(identity, kv.value())?;
        }
        // So would a fence record of a newer release: this one may not
        // know what the newer one promised by it.
        let instance_key = self.key(identity, "instance");
        if let Some(kv) = self.get_until(&instance_key, until).await? {
            if let Err(err @ crate::RecordError::Newer { .. }) = InstanceRecord::parse(kv.value()) {
                return Err(StorageError::NewerRecord {
                    identity: *identity,
                    location: format!("etcd key {instance_key}"),
                    source: err,
                });
            }
        }
        let mut seen_tower = self.get_until(&tower_key, until).await?;
        let mut seen_history = self
            .get_until(&self.key(identity, "vote_history"), until)
            .await?;
        loop {
            // Verify both records before the fence moves: a corrupt or
            // foreign one stops us without displacing anyone.
            let (seen, verified) =
                self.verify_seen(identity, seen_tower.as_ref(), seen_history.as_ref())?;
            // Sent again through the next endpoint when unanswered: the
            // compare is on the records, not on an earlier attempt of ours,
            // and the token is the revision of the attempt that answered.
            // (Should an unanswered attempt land later still, it moves the
            // fence to our record again: stores under every earlier token
            // fail, ours included, until the next takeover; none slips
            // through.)
            let txn = self.takeover_txn(identity, seen);
            let response = self.on_any("takeover", until, txn_request(txn)).await?;
            if !response.succeeded() {
                let mut found = response.op_responses().into_iter().map(|op| match op {
                    TxnOpResponse::Get(get) => get.kvs().first().cloned(),
                    _ => None,
                });
                seen_tower = found.next().flatten();
                seen_history = found.next().flatten();
                if Instant::now() >= until {
                    return Err(StorageError::Busy {
                        identity: *identity,
                        waited: self.timeout,
                    });
                }
                continue;
            }
            return self.taken(identity, verified, &response);
        }
    }

    async fn store(
        &self,
        token: &FenceToken,
        tower: &SavedTower,
    ) -> Result<TowerStored, StorageError> {
        token.admits(tower)?;
        let key = self.key(&token.identity, "tower");
        let revision = self
            .fenced(
                "store tower",
                token,
                TxnOp::put(key, tower.to_bytes(), None),
            )
            .await?;
        Ok(TowerStored::new(token, tower, revision))
    }

    async fn fence_leader_slot(
        &self,
        token: &FenceToken,
        slot: Slot,
    ) -> Result<LeaderSlotFenced, StorageError> {
        let key = self.key(&token.identity, "leader");
        let revision = self
            .fenced(
                "fence leader slot",
                token,
                TxnOp::put(key, crate::leader_record(slot), None),
            )
            .await?;
        Ok(LeaderSlotFenced::new(token, slot, revision))
    }

    async fn renew(&self, token: &FenceToken) -> Result<FenceToken, StorageError> {
        let key = self.key(&token.identity, "instance");
        let revision = self
            .fenced(
                "renew the fence",
                token,
                TxnOp::put(key, self.instance_bytes.clone(), None),
            )
            .await?;
        Ok(token.renewed(revision))
    }

    /// Deletes the instance record if `token` still holds it.
    async fn release(&self, token: &FenceToken) -> Result<bool, StorageError> {
        let key = self.key(&token.identity, "instance");
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.as_str(),
                CompareOp::Equal,
                token.revision,
            )])
            .and_then([TxnOp::delete(key.as_str(), None)]);
        let response = self.once("release the fence", txn_request(txn)).await?;
        Ok(response.succeeded())
    }

    async fn load_unfenced(&self, identity: &Pubkey) -> Result<SavedTower, StorageError> {
        let kv = self
            .get(&self.key(identity, "tower"))
            .await?
            .ok_or(StorageError::NotFound {
                identity: *identity,
            })?;
        self.verify(identity, kv.value())
    }

    async fn store_vote_history(
        &self,
        token: &FenceToken,
        history: &SavedVoteHistory,
    ) -> Result<VoteHistoryStored, StorageError> {
        token.admits_history(history)?;
        let key = self.key(&token.identity, "vote_history");
        let revision = self
            .fenced(
                "store vote history",
                token,
                TxnOp::put(key, history.to_bytes(), None),
            )
            .await?;
        Ok(VoteHistoryStored::new(token, history, revision))
    }

    async fn load_vote_history_unfenced(
        &self,
        identity: &Pubkey,
    ) -> Result<SavedVoteHistory, StorageError> {
        let key = self.key(identity, "vote_history");
        let kv = self
            .get(&key)
            .await?
            .ok_or(StorageError::VoteHistoryNotFound {
                identity: *identity,
            })?;
        verify_vote_history(identity, || format!("etcd key {key}"), kv.value())
    }
}

/// The mod revisions of the records a takeover verified (0: absent).
#[derive(Debug, Clone, Copy)]
struct Seen {
    tower: i64,
    history: i64,
}

/// The records a takeover verified.
type Verified = (Option<SavedTower>, Option<SavedVoteHistory>);

/// What a request through one endpoint's client returns.
type Reply<T> = Pin<Box<dyn Future<Output = Result<T, towerlock_etcd::etcd_client::Error>> + Send>>;

/// `txn` as a request that can be sent through any endpoint's client.
pub(crate) fn txn_request(txn: Txn) -> impl Fn(KvClient) -> Reply<TxnResponse> {
    move |mut kv: KvClient| {
        let txn = txn.clone();
        Box::pin(async move { kv.txn(txn).await })
    }
}
