//! Who holds an identity's fence, and what is stored under it, read in one
//! etcd transaction (one consistent revision): `towerlock fence status`
//! and `towerlock status`.

use std::time::Instant;

use solana_pubkey::Pubkey;
use towerlock_etcd::etcd_client::{Txn, TxnOp, TxnOpResponse};
use towerlock_tower::{SavedTower, SavedVoteHistory, Slot};

use crate::{
    etcd::txn_request, vote_history::verify_vote_history, EtcdTowerStorage, InstanceRecord,
    StorageError,
};

/// The fence of one identity as etcd holds it.
#[derive(Debug)]
pub struct FenceStatus {
    pub identity: Pubkey,
    /// etcd's revision when it was read.
    pub revision: i64,
    /// `None`: nobody holds the fence (released by an orderly exit, or
    /// never taken).
    pub holder: Option<Holder>,
    /// `None`: no tower stored.
    pub tower: Option<Result<StoredTower, StorageError>>,
    /// `None`: no leader slot fenced.
    pub last_leader_slot: Option<Result<Slot, StorageError>>,
    /// `None`: no Alpenglow vote history stored.
    pub vote_history: Option<Result<StoredVoteHistory, StorageError>>,
}

/// The vote history stored under a fence.
#[derive(Debug)]
pub struct StoredVoteHistory {
    pub history: SavedVoteHistory,
    /// The revision of the store that wrote it.
    pub revision: i64,
}

/// The instance holding a fence.
#[derive(Debug)]
pub struct Holder {
    /// Who: host, pid, version, start time (or a record this release cannot
    /// read, saying so).
    pub record: InstanceRecord,
    /// The fence token: the revision of its takeover (or last renewal).
    pub token: i64,
}

/// The tower stored under a fence.
#[derive(Debug)]
pub struct StoredTower {
    pub tower: SavedTower,
    /// The revision of the store that wrote it.
    pub revision: i64,
}

impl EtcdTowerStorage {
    /// Reads the fence of `identity`: holder, tower, last leader slot and vote
    /// history at one revision. A record that cannot be read is reported
    /// in its place; only etcd itself failing is an error.
    pub async fn fence_status(&self, identity: &Pubkey) -> Result<FenceStatus, StorageError> {
        let keys =
            ["instance", "tower", "leader", "vote_history"].map(|name| self.key(identity, name));
        let txn = Txn::new().and_then(keys.clone().map(|key| TxnOp::get(key, None)));
        let until = Instant::now() + self.timeout();
        let response = self
            .on_any("read the fence", until, txn_request(txn))
            .await?;
        let revision = response.header().map(|h| h.revision()).unwrap_or_default();
        let mut found = response.op_responses().into_iter().map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().first().cloned(),
            _ => None,
        });
        let (instance, tower, leader, history) = (
            found.next().flatten(),
            found.next().flatten(),
            found.next().flatten(),
            found.next().flatten(),
        );
        Ok(FenceStatus {
            identity: *identity,
            revision,
            holder: instance.map(|kv| Holder {
                record: InstanceRecord::from_bytes(kv.value()),
                token: kv.mod_revision(),
            }),
            tower: tower.map(|kv| {
                self.verify(identity, kv.value()).map(|tower| StoredTower {
                    tower,
                    revision: kv.mod_revision(),
                })
            }),
            last_leader_slot: leader.map(|kv| self.leader_slot(identity, kv.value())),
            vote_history: history.map(|kv| {
                verify_vote_history(
                    identity,
                    || format!("etcd key {}", self.key(identity, "vote_history")),
                    kv.value(),
                )
                .map(|history| StoredVoteHistory {
                    history,
                    revision: kv.mod_revision(),
                })
            }),
        })
    }
}
