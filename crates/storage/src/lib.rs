//! Where a validator's tower lives, behind a fence.
//!
//! A [`TowerStorage`] has three backends with one contract:
//! - [`EtcdTowerStorage`]: agave's keys in etcd (mutual TLS), fenced by the
//!   revision of the takeover write plus a random instance id (docs/architecture.md §2);
//! - [`FileTowerStorage`]: agave's `tower-1_9-<pubkey>.bin` files, written
//!   durably, fenced within one host by a lock file;
//! - [`MemoryTowerStorage`]: the same semantics in memory, for tests of callers.
//!
//! The contract: [`TowerStorage::takeover`] acquires the fence and reads the
//! tower in one atomic step and returns a [`FenceToken`]; every
//! [`TowerStorage::store`] is conditional on that token and either returns a
//! [`TowerStored`] receipt (and every leader-slot fence a [`LeaderSlotFenced`]), or [`StorageError::LockLost`] naming who took over, or
//! [`StorageError::Unavailable`] when the outcome is unknown. A caller sends a
//! vote only with a receipt in hand.
//!
//! This crate owns no runtime and never blocks one: every call is async and
//! every etcd request has a deadline.

mod error;
mod etcd;
mod fence;
mod file;
mod memory;
mod record;
mod status;
mod vote_history;

pub use error::StorageError;
pub use etcd::EtcdTowerStorage;
pub use fence::{
    FenceToken, InstanceId, InstanceRecord, LeaderSlotFenced, Takeover, TowerStored,
    VoteHistoryStored,
};
pub use file::{
    parse_tower_file_name, tower_file_name, write_tower_file, FileTowerStorage, TowerFileName,
};
pub use memory::MemoryTowerStorage;
pub use record::{leader_record, parse_leader_record, RecordError, RECORD_FORMAT};
pub use status::{FenceStatus, Holder, StoredTower};
pub use vote_history::{
    parse_vote_history_file_name, vote_history_file_name, write_vote_history_file,
};

use async_trait::async_trait;
use solana_pubkey::Pubkey;
use towerlock_tower::{SavedTower, Slot};

/// A place to keep towers, fenced so that one instance at a time may write.
#[async_trait]
pub trait TowerStorage: Send + Sync {
    /// The record that names this instance to others.
    fn instance(&self) -> &InstanceRecord;

    /// Takes the fence for `identity` and reads its tower, atomically: no
    /// store by a previous holder can land between the two. A tower that
    /// cannot be read or verified is an error and is left as it is.
    async fn takeover(&self, identity: &Pubkey) -> Result<Takeover, StorageError>;

    /// Stores `tower` if `token` still holds the fence.
    async fn store(
        &self,
        token: &FenceToken,
        tower: &SavedTower,
    ) -> Result<TowerStored, StorageError>;

    /// Records `slot` as the last leader slot produced, under the same fence;
    /// called before producing a block so a fenced-out node cannot produce.
    async fn fence_leader_slot(
        &self,
        token: &FenceToken,
        slot: Slot,
    ) -> Result<LeaderSlotFenced, StorageError>;

    /// Moves the fence forward while `token` still holds it: a new token
    /// whose revision voids every write made under the old one that has not
    /// landed yet. Called after a write whose outcome is unknown, so that it
    /// cannot take effect after a later write. `LockLost` when another
    /// instance holds the fence.
    async fn renew(&self, token: &FenceToken) -> Result<FenceToken, StorageError>;

    /// Gives the fence up if `token` still holds it (an orderly exit, a
    /// tool that took it for one write): the next instance then finds
    /// nobody holding it. `false` when the fence had already moved. The
    /// stored tower and the last fenced leader slot stay.
    async fn release(&self, token: &FenceToken) -> Result<bool, StorageError>;

    /// Reads the tower without taking the fence, for inspection and export.
    async fn load_unfenced(&self, identity: &Pubkey) -> Result<SavedTower, StorageError>;
}
