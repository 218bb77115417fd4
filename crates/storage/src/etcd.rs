//! The tower in etcd, fenced by the revision of the takeover write
//! (docs/architecture.md §2).
//!
//! Keys (agave's names, under an optional prefix):
//! `<identity>/instance` holds the [`InstanceRecord`] of the fence holder,
//! `<identity>/tower` the saved tower (the same bytes as agave's file),
//! `<identity>/leader` the last leader slot produced.
//!
//! etcd's Lock and Election APIs are never used: their safety depends on
//! leases and clocks. Every write is a plain transaction whose compare is the
//! fence.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use solana_pubkey::Pubkey;
use towerlock_etcd::{
    etcd_client::{
        Client, Compare, CompareOp, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse, TxnResponse,
    },
    EtcdConfig,
};
use towerlock_tower::{SavedTower, Slot};

use crate::{
    FenceToken, InstanceRecord, LeaderSlotFenced, StorageError, Takeover, TowerStorage, TowerStored,
};

/// Fenced tower storage in etcd.
#[derive(Clone)]
pub struct EtcdTowerStorage {
    client: Client,
    prefix: String,
    timeout: Duration,
    instance: InstanceRecord,
    /// `instance` as stored: every fenced write compares against it.
    instance_bytes: Vec<u8>,
}

impl EtcdTowerStorage {
    /// Connects with mutual TLS as `config` says.
    pub async fn connect(config: &EtcdConfig) -> Result<Self, StorageError> {
        let client = towerlock_etcd::connect(config)
            .await
            .map_err(StorageError::Connect)?;
        Ok(Self::new(
            client,
            config.key_prefix.clone(),
            config.request_timeout,
        ))
    }

    /// Uses an existing client; `timeout` bounds every request.
    pub fn new(client: Client, prefix: String, timeout: Duration) -> Self {
        let instance = InstanceRecord::for_this_process();
        Self {
            client,
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
            client,
            ..self.clone()
        }
    }

    /// The etcd key `<prefix><identity>/<name>`.
    pub fn key(&self, identity: &Pubkey, name: &str) -> String {
        format!("{}{identity}/{name}", self.prefix)
    }

    /// The client, for tools that need plain reads and writes.
    pub fn client(&self) -> &Client {
        &self.client
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
        let response = self.txn("forced takeover", txn).await?;
        Ok(FenceToken {
            identity: *identity,
            revision: response.header().map(|h| h.revision()).unwrap_or_default(),
            instance: self.instance.clone(),
        })
    }

    /// Gives the fence up: deletes the instance record if `token` still
    /// holds it. For tools that take the fence for one write (`tower
    /// import`) and must not look like a running validator afterwards.
    pub async fn release(&self, token: &FenceToken) -> Result<bool, StorageError> {
        let key = self.key(&token.identity, "instance");
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.as_str(),
                CompareOp::Equal,
                token.revision,
            )])
            .and_then([TxnOp::delete(key.as_str(), None)]);
        Ok(self.txn("release the fence", txn).await?.succeeded())
    }

    async fn deadline<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, towerlock_etcd::etcd_client::Error>>,
    ) -> Result<T, StorageError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) if towerlock_etcd::is_outcome_unknown(&err) => {
                Err(StorageError::Unavailable {
                    reason: format!("{what}: {}", towerlock_etcd::describe_chain(&err)),
                })
            }
            Ok(Err(err)) => Err(StorageError::Etcd {
                reason: format!("{what}: {}", towerlock_etcd::describe_chain(&err)),
            }),
            Err(_) => Err(StorageError::Unavailable {
                reason: format!("{what}: no answer within {:?}", self.timeout),
            }),
        }
    }

    async fn txn(&self, what: &str, txn: Txn) -> Result<TxnResponse, StorageError> {
        let mut kv = self.client.kv_client();
        self.deadline(what, kv.txn(txn)).await
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let mut kv = self.client.kv_client();
        let response = self.deadline("read", kv.get(key, None)).await?;
        Ok(response.kvs().first().cloned())
    }

    fn verify(&self, identity: &Pubkey, bytes: &[u8]) -> Result<SavedTower, StorageError> {
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
    async fn fenced(
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
        let response = self.txn(what, txn).await?;
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
        let instance_key = self.key(identity, "instance");
        let tower_key = self.key(identity, "tower");
        let leader_key = self.key(identity, "leader");
        // A holder that keeps storing can make an attempt lose the race; try
        // again (each retry is one round trip) until the request deadline.
        let until = Instant::now() + self.timeout;
        let mut seen = self.get(&tower_key).await?;
        loop {
            // Verify the tower before the fence moves: a corrupt or foreign
            // tower stops us without displacing anyone.
            let (seen_revision, tower) = match &seen {
                Some(kv) => (kv.mod_revision(), Some(self.verify(identity, kv.value())?)),
                None => (0, None),
            };
            // One write transaction: take the fence only if the tower is
            // still the one just verified; otherwise read the new one.
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    tower_key.as_str(),
                    CompareOp::Equal,
                    seen_revision,
                )])
                .and_then([
                    TxnOp::put(
                        instance_key.as_str(),
                        self.instance_bytes.clone(),
                        Some(PutOptions::new().with_prev_key()),
                    ),
                    TxnOp::get(leader_key.as_str(), None),
                ])
                .or_else([TxnOp::get(tower_key.as_str(), None)]);
            let response = self.txn("takeover", txn).await?;
            if !response.succeeded() {
                seen = response.op_responses().into_iter().find_map(|op| match op {
                    TxnOpResponse::Get(get) => get.kvs().first().cloned(),
                    _ => None,
                });
                if Instant::now() >= until {
                    return Err(StorageError::Busy {
                        identity: *identity,
                        waited: self.timeout,
                    });
                }
                continue;
            }
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
                        last_leader_slot = get
                            .kvs()
                            .first()
                            .and_then(|kv| std::str::from_utf8(kv.value()).ok())
                            .and_then(|v| v.parse().ok());
                    }
                    _ => {}
                }
            }
            if let Some(previous) = &displaced {
                if *previous != self.instance {
                    tracing::info!(%identity, displaced = %previous, "took over the tower fence");
                }
            }
            return Ok(Takeover {
                token: FenceToken {
                    identity: *identity,
                    revision,
                    instance: self.instance.clone(),
                },
                tower,
                displaced,
                last_leader_slot,
            });
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
                TxnOp::put(key, slot.to_string(), None),
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
        Ok(FenceToken {
            revision,
            ..token.clone()
        })
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
}
