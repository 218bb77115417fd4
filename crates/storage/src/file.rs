//! agave's tower files, written durably and locked against a second process.

use std::{
    collections::HashMap,
    fs::{self, File, OpenOptions, TryLockError},
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use async_trait::async_trait;
use solana_pubkey::Pubkey;
use towerlock_tower::{SavedTower, SavedVoteHistory, Slot};

use crate::{
    vote_history::{read_vote_history_file, vote_history_file_name},
    FenceToken, InstanceRecord, LeaderSlotFenced, StorageError, Takeover, TowerStorage,
    TowerStored, VoteHistoryStored,
};

/// agave's name for a current tower file.
pub fn tower_file_name(identity: &Pubkey) -> String {
    format!("tower-1_9-{identity}.bin")
}

fn legacy_file_name(identity: &Pubkey) -> String {
    format!("tower-{identity}.bin")
}

/// What a tower file's name says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TowerFileName {
    pub identity: Pubkey,
    /// `tower-<pubkey>.bin`: a bare `SavedTower1_7_14`.
    pub legacy: bool,
}

/// Parses `tower-1_9-<pubkey>.bin` or `tower-<pubkey>.bin`.
pub fn parse_tower_file_name(name: &str) -> Option<TowerFileName> {
    let stem = name.strip_prefix("tower-")?.strip_suffix(".bin")?;
    let (key, legacy) = match stem.strip_prefix("1_9-") {
        Some(key) => (key, false),
        None => (stem, true),
    };
    Some(TowerFileName {
        identity: key.parse().ok()?,
        legacy,
    })
}

/// Towers (and Alpenglow vote histories) as files in one directory, named
/// as agave names them.
///
/// Writes go to `<name>.new`, are fsynced, renamed over the old file, and the
/// directory is fsynced: a crash leaves the old tower or the new one, never a
/// torn one. (agave skips both fsyncs; `without_fsync` does the same, for
/// measuring what they cost.)
pub struct FileTowerStorage {
    dir: PathBuf,
    fsync: bool,
    instance: InstanceRecord,
    /// Lock files held, with the revision of the takeover that took them.
    held: Mutex<HashMap<Pubkey, (File, i64)>>,
    revisions: Mutex<i64>,
}

impl FileTowerStorage {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            fsync: true,
            instance: InstanceRecord::for_this_process(),
            held: Mutex::default(),
            revisions: Mutex::new(0),
        }
    }

    /// agave's way: rename without fsync. Faster, not crash-safe.
    pub fn without_fsync(mut self) -> Self {
        self.fsync = false;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the current-format tower file for `identity`.
    pub fn path(&self, identity: &Pubkey) -> PathBuf {
        self.dir.join(tower_file_name(identity))
    }

    /// Reads the current file, else the legacy one; `None` if neither exists.
    /// Runs on the blocking pool: file IO must not stall the async runtime.
    async fn read(&self, identity: &Pubkey) -> Result<Option<SavedTower>, StorageError> {
        let (dir, identity) = (self.dir.clone(), *identity);
        blocking(move || read_tower(&dir, &identity)).await
    }

    async fn read_vote_history(
        &self,
        identity: &Pubkey,
    ) -> Result<Option<SavedVoteHistory>, StorageError> {
        let (dir, identity) = (self.dir.clone(), *identity);
        blocking(move || read_vote_history_file(&dir, &identity)).await
    }

    /// Writes `bytes` as `name` in the directory, durably (unless
    /// `without_fsync`), on the blocking pool.
    async fn write_durably(&self, name: String, bytes: Vec<u8>) -> Result<(), StorageError> {
        let (dir, fsync) = (self.dir.clone(), self.fsync);
        blocking(move || write_file(&dir, &name, &bytes, fsync)).await
    }

    fn check_fence(&self, token: &FenceToken) -> Result<(), StorageError> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match held.get(&token.identity) {
            Some((_, revision))
                if *revision == token.revision && token.instance == self.instance =>
            {
                Ok(())
            }
            // Only a newer takeover through this handle can move the fence:
            // the lock file keeps other processes out.
            _ => Err(StorageError::LockLost {
                identity: token.identity,
                by: Box::new(self.instance.clone()),
            }),
        }
    }

    fn next_revision(&self) -> i64 {
        let mut revision = self.revisions.lock().unwrap_or_else(|e| e.into_inner());
        *revision += 1;
        *revision
    }
}

#[async_trait]
impl TowerStorage for FileTowerStorage {
    fn instance(&self) -> &InstanceRecord {
        &self.instance
    }

    async fn takeover(&self, identity: &Pubkey) -> Result<Takeover, StorageError> {
        fs::create_dir_all(&self.dir).map_err(io_error("cannot create", &self.dir))?;
        let lock_path = self.dir.join(format!("tower-{identity}.lock"));
        {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            if !held.contains_key(identity) {
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .map_err(io_error("cannot open lock file", &lock_path))?;
                match file.try_lock() {
                    Ok(()) => {}
                    Err(TryLockError::WouldBlock) => {
                        return Err(StorageError::Locked {
                            identity: *identity,
                            path: lock_path,
                        })
                    }
                    Err(TryLockError::Error(err)) => {
                        return Err(io_error("cannot lock", &lock_path)(err))
                    }
                }
                held.insert(*identity, (file, 0));
            }
        }
        // The tower and the vote history are verified before the fence
        // moves (the lock file keeps other processes from writing meanwhile).
        let tower = self.read(identity).await?;
        let vote_history = self.read_vote_history(identity).await?;
        let revision = self.next_revision();
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let displaced = held
            .get_mut(identity)
            .map(|entry| std::mem::replace(&mut entry.1, revision))
            .filter(|previous| *previous != 0)
            .map(|_| self.instance.clone());
        Ok(Takeover {
            token: FenceToken::new(*identity, revision, &self.instance),
            tower,
            displaced,
            // One host, one process (the lock file): the process itself
            // remembers what it produced.
            last_leader_slot: None,
            vote_history,
        })
    }

    async fn store(
        &self,
        token: &FenceToken,
        tower: &SavedTower,
    ) -> Result<TowerStored, StorageError> {
        token.admits(tower)?;
        self.check_fence(token)?;
        self.write_durably(tower_file_name(&token.identity), tower.to_bytes())
            .await?;
        Ok(TowerStored::new(token, tower, self.next_revision()))
    }

    async fn fence_leader_slot(
        &self,
        token: &FenceToken,
        slot: Slot,
    ) -> Result<LeaderSlotFenced, StorageError> {
        // The lock file already keeps other processes out; within the process
        // the fence check is all a leader slot needs.
        self.check_fence(token)?;
        Ok(LeaderSlotFenced::new(token, slot, self.next_revision()))
    }

    async fn renew(&self, token: &FenceToken) -> Result<FenceToken, StorageError> {
        self.check_fence(token)?;
        let revision = self.next_revision();
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, held_revision)) = held.get_mut(&token.identity) {
            *held_revision = revision;
        }
        Ok(token.renewed(revision))
    }

    /// Unlocks the lock file, so another process on this host may take
    /// the fence.
    async fn release(&self, token: &FenceToken) -> Result<bool, StorageError> {
        if self.check_fence(token).is_err() {
            return Ok(false);
        }
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        // Dropping the file closes it, and the lock goes with it.
        Ok(held.remove(&token.identity).is_some())
    }

    async fn load_unfenced(&self, identity: &Pubkey) -> Result<SavedTower, StorageError> {
        self.read(identity).await?.ok_or(StorageError::NotFound {
            identity: *identity,
        })
    }

    async fn store_vote_history(
        &self,
        token: &FenceToken,
        history: &SavedVoteHistory,
    ) -> Result<VoteHistoryStored, StorageError> {
        token.admits_history(history)?;
        self.check_fence(token)?;
        self.write_durably(vote_history_file_name(&token.identity), history.to_bytes())
            .await?;
        Ok(VoteHistoryStored::new(token, history, self.next_revision()))
    }

    async fn load_vote_history_unfenced(
        &self,
        identity: &Pubkey,
    ) -> Result<SavedVoteHistory, StorageError> {
        self.read_vote_history(identity)
            .await?
            .ok_or(StorageError::VoteHistoryNotFound {
                identity: *identity,
            })
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io {
        action,
        path,
        source,
    }
}

fn read_tower(dir: &Path, identity: &Pubkey) -> Result<Option<SavedTower>, StorageError> {
    for (name, legacy) in [
        (tower_file_name(identity), false),
        (legacy_file_name(identity), true),
    ] {
        let path = dir.join(name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == ErrorKind::NotFound => continue,
            Err(err) => return Err(io_error("cannot read", &path)(err)),
        };
        let decoded = if legacy {
            SavedTower::from_legacy_bytes(&bytes, identity)
        } else {
            SavedTower::from_bytes(&bytes, identity)
        };
        return decoded
            .map(Some)
            .map_err(|err| StorageError::from_tower(*identity, path.display().to_string(), err));
    }
    Ok(None)
}

/// Writes `bytes` as the tower file of `identity` in `dir`, durably: to a
/// temporary file of a name no other writer uses, fsynced, renamed into
/// place, the directory fsynced. A failure leaves the old file whole.
pub fn write_tower_file(dir: &Path, identity: &Pubkey, bytes: &[u8]) -> Result<(), StorageError> {
    write_file(dir, &tower_file_name(identity), bytes, true)
}

/// Writes `bytes` as `dir/name`: to a temporary file of a name no other
/// writer uses, fsynced (unless `fsync` is off), renamed into place, the
/// directory fsynced.
pub(crate) fn write_file(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    fsync: bool,
) -> Result<(), StorageError> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let path = dir.join(name);
    let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Unique per process and write: two writers never share a temporary file.
    let new_path = path.with_extension(format!("bin.new.{}.{write}", std::process::id()));
    let mut file = File::create(&new_path).map_err(io_error("cannot create", &new_path))?;
    file.write_all(bytes)
        .map_err(io_error("cannot write", &new_path))?;
    if fsync {
        file.sync_all()
            .map_err(io_error("cannot fsync", &new_path))?;
    }
    drop(file);
    fs::rename(&new_path, &path).map_err(io_error("cannot rename onto", &path))?;
    if fsync {
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("cannot fsync directory", dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_writes_use_their_own_temporary_files_and_leave_none() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Pubkey::new_unique();
        // Two writers of the same tower (threads here, processes in life)
        // never write into one temporary file.
        std::thread::scope(|scope| {
            for byte in [1u8, 2] {
                let dir = dir.path();
                scope.spawn(move || {
                    for _ in 0..50 {
                        write_tower_file(dir, &identity, &[byte; 300]).unwrap();
                    }
                });
            }
        });
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [tower_file_name(&identity)]);
        let bytes = fs::read(dir.path().join(tower_file_name(&identity))).unwrap();
        assert!(
            bytes == [1; 300] || bytes == [2; 300],
            "a whole tower, never a mix"
        );
    }

    #[test]
    fn file_names_parse_both_formats() {
        let key = Pubkey::new_unique();
        assert_eq!(
            parse_tower_file_name(&tower_file_name(&key)),
            Some(TowerFileName {
                identity: key,
                legacy: false
            })
        );
        assert_eq!(
            parse_tower_file_name(&legacy_file_name(&key)),
            Some(TowerFileName {
                identity: key,
                legacy: true
            })
        );
        assert_eq!(parse_tower_file_name("tower-1_9-notakey.bin"), None);
        assert_eq!(parse_tower_file_name("vote.bin"), None);
    }
}
