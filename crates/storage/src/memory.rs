//! Fenced storage in memory: the etcd semantics without etcd, for unit tests
//! of code that drives a [`TowerStorage`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use solana_pubkey::Pubkey;
use towerlock_tower::{SavedTower, SavedVoteHistory, Slot};

use crate::{
    FenceToken, InstanceRecord, LeaderSlotFenced, StorageError, Takeover, TowerStorage,
    TowerStored, VoteHistoryStored,
};

#[derive(Default)]
struct Shared {
    revision: i64,
    unavailable: bool,
    identities: HashMap<Pubkey, Entry>,
}

#[derive(Default)]
struct Entry {
    /// (mod revision, holder) of the instance key.
    instance: Option<(i64, InstanceRecord)>,
    tower: Option<Vec<u8>>,
    vote_history: Option<Vec<u8>>,
    leader_slot: Option<Slot>,
}

/// One instance's handle on a shared in-memory store. Clone the store with
/// [`MemoryTowerStorage::new_instance`] to get a second instance on the same
/// data.
pub struct MemoryTowerStorage {
    shared: Arc<Mutex<Shared>>,
    instance: InstanceRecord,
}

impl Default for MemoryTowerStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTowerStorage {
    pub fn new() -> Self {
        Self {
            shared: Arc::default(),
            instance: InstanceRecord::for_this_process(),
        }
    }

    /// Another instance (with its own random id) on the same data.
    pub fn new_instance(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            instance: InstanceRecord::for_this_process(),
        }
    }

    /// Makes every call fail with `Unavailable` (or work again).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.lock().unavailable = unavailable;
    }

    /// Replaces the stored tower bytes, unfenced (to plant bad data in tests).
    pub fn put_raw_tower(&self, identity: &Pubkey, bytes: Vec<u8>) {
        let mut shared = self.lock();
        shared.revision += 1;
        shared.identities.entry(*identity).or_default().tower = Some(bytes);
    }

    /// The stored tower bytes, if any.
    pub fn raw_tower(&self, identity: &Pubkey) -> Option<Vec<u8>> {
        self.lock()
            .identities
            .get(identity)
            .and_then(|e| e.tower.clone())
    }

    /// Stores `history` if `token` still holds the fence, as
    /// `EtcdTowerStorage::store_vote_history` does (the same conditional
    /// write as a tower store).
    pub fn store_vote_history(
        &self,
        token: &FenceToken,
        history: &SavedVoteHistory,
    ) -> Result<VoteHistoryStored, StorageError> {
        if history.node_pubkey() != token.identity {
            return Err(StorageError::IdentityMismatch {
                fenced: token.identity,
                tower: history.node_pubkey(),
            });
        }
        let bytes = history.to_bytes();
        let revision = self.fenced(token, |entry, _| entry.vote_history = Some(bytes))?;
        Ok(VoteHistoryStored::new(token, history, revision))
    }

    /// Reads and verifies the stored vote history of `identity`, unfenced;
    /// `None` if none was stored.
    pub fn load_vote_history(
        &self,
        identity: &Pubkey,
    ) -> Result<Option<SavedVoteHistory>, StorageError> {
        let shared = self.lock();
        Self::available(&shared)?;
        let Some(bytes) = shared
            .identities
            .get(identity)
            .and_then(|e| e.vote_history.clone())
        else {
            return Ok(None);
        };
        SavedVoteHistory::from_bytes(&bytes, identity)
            .map(Some)
            .map_err(|source| StorageError::VoteHistory {
                identity: *identity,
                location: "memory".into(),
                source: Box::new(source),
            })
    }

    /// The instance holding the fence of `identity`, if any.
    pub fn holder(&self, identity: &Pubkey) -> Option<InstanceRecord> {
        self.lock()
            .identities
            .get(identity)
            .and_then(|e| e.instance.as_ref().map(|(_, holder)| holder.clone()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn available(shared: &Shared) -> Result<(), StorageError> {
        if shared.unavailable {
            Err(StorageError::Unavailable {
                reason: "memory storage set unavailable".into(),
            })
        } else {
            Ok(())
        }
    }

    /// The fence check shared by every fenced write.
    fn fenced<T>(
        &self,
        token: &FenceToken,
        write: impl FnOnce(&mut Entry, i64) -> T,
    ) -> Result<i64, StorageError> {
        let mut shared = self.lock();
        Self::available(&shared)?;
        let revision = shared.revision + 1;
        let entry = shared.identities.entry(token.identity).or_default();
        match &entry.instance {
            Some((rev, holder)) if *rev == token.revision && *holder == token.instance => {
                write(entry, revision);
                shared.revision = revision;
                Ok(revision)
            }
            other => Err(StorageError::LockLost {
                identity: token.identity,
                by: Box::new(
                    other
                        .as_ref()
                        .map(|(_, holder)| holder.clone())
                        .unwrap_or_else(InstanceRecord::gone),
                ),
            }),
        }
    }
}

#[async_trait]
impl TowerStorage for MemoryTowerStorage {
    fn instance(&self) -> &InstanceRecord {
        &self.instance
    }

    async fn takeover(&self, identity: &Pubkey) -> Result<Takeover, StorageError> {
        let mut shared = self.lock();
        Self::available(&shared)?;
        let bytes = shared
            .identities
            .get(identity)
            .and_then(|e| e.tower.clone());
        let tower = bytes
            .map(|bytes| {
                SavedTower::from_bytes(&bytes, identity)
                    .map_err(|err| StorageError::from_tower(*identity, "memory".into(), err))
            })
            .transpose()?;
        shared.revision += 1;
        let revision = shared.revision;
        let entry = shared.identities.entry(*identity).or_default();
        let displaced = entry
            .instance
            .replace((revision, self.instance.clone()))
            .map(|(_, holder)| holder);
        let last_leader_slot = entry.leader_slot;
        Ok(Takeover {
            token: FenceToken::new(*identity, revision, &self.instance),
            tower,
            displaced,
            last_leader_slot,
        })
    }

    async fn store(
        &self,
        token: &FenceToken,
        tower: &SavedTower,
    ) -> Result<TowerStored, StorageError> {
        token.admits(tower)?;
        let bytes = tower.to_bytes();
        let revision = self.fenced(token, |entry, _| entry.tower = Some(bytes))?;
        Ok(TowerStored::new(token, tower, revision))
    }

    async fn fence_leader_slot(
        &self,
        token: &FenceToken,
        slot: Slot,
    ) -> Result<LeaderSlotFenced, StorageError> {
        let revision = self.fenced(token, |entry, _| entry.leader_slot = Some(slot))?;
        Ok(LeaderSlotFenced::new(token, slot, revision))
    }

    async fn renew(&self, token: &FenceToken) -> Result<FenceToken, StorageError> {
        let instance = token.instance.clone();
        let revision = self.fenced(token, |entry, revision| {
            entry.instance = Some((revision, instance))
        })?;
        Ok(token.renewed(revision))
    }

    async fn release(&self, token: &FenceToken) -> Result<bool, StorageError> {
        let mut shared = self.lock();
        Self::available(&shared)?;
        let Some(entry) = shared.identities.get_mut(&token.identity) else {
            return Ok(false);
        };
        let holds = matches!(&entry.instance,
            Some((rev, holder)) if *rev == token.revision && *holder == token.instance);
        if holds {
            entry.instance = None;
            shared.revision += 1;
        }
        Ok(holds)
    }

    async fn load_unfenced(&self, identity: &Pubkey) -> Result<SavedTower, StorageError> {
        let shared = self.lock();
        Self::available(&shared)?;
        let bytes = shared
            .identities
            .get(identity)
            .and_then(|e| e.tower.clone())
            .ok_or(StorageError::NotFound {
                identity: *identity,
            })?;
        SavedTower::from_bytes(&bytes, identity)
            .map_err(|err| StorageError::from_tower(*identity, "memory".into(), err))
    }
}
