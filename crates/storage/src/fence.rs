//! Who holds the fence, and the proof of holding it.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use solana_pubkey::Pubkey;
use towerlock_tower::{SavedTower, SavedVoteHistory, Slot};

/// A random 128-bit id, fresh for every process: unlike agave's wall-clock
/// milliseconds, two starts can never share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct InstanceId([u8; 16]);

impl InstanceId {
    pub fn random() -> Self {
        let mut id = [0; 16];
        rand::thread_rng().fill_bytes(&mut id);
        Self(id)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl From<InstanceId> for String {
    fn from(id: InstanceId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for InstanceId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let bytes = hex::decode(&s).map_err(|e| format!("instance id {s:?}: {e}"))?;
        let id = bytes
            .try_into()
            .map_err(|_| format!("instance id {s:?} is not 16 bytes"))?;
        Ok(Self(id))
    }
}

/// What the `<identity>/instance` key holds: who took the fence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub id: InstanceId,
    pub host: String,
    pub pid: u32,
    pub version: String,
    /// Milliseconds since the Unix epoch when this instance started.
    pub started_at_ms: u64,
}

impl InstanceRecord {
    /// A record for this process with a fresh random id.
    pub fn for_this_process() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown-host".to_string());
        let started_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            id: InstanceId::random(),
            host,
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at_ms,
        }
    }

    /// The exact bytes stored in etcd (with the record format); fenced
    /// writes compare against them.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::record::to_bytes(self)
    }

    /// Parses a stored record of this release's format or an older one.
    pub fn parse(bytes: &[u8]) -> Result<Self, crate::RecordError> {
        crate::record::from_bytes(bytes)
    }

    /// Parses a stored record for showing: a foreign value (e.g. agave's
    /// 8-byte millisecond id) or a newer release's record becomes a record
    /// that says so.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self::parse(bytes).unwrap_or_else(|err| Self {
            id: InstanceId([0; 16]),
            host: match err {
                crate::RecordError::Newer { .. } => format!("instance record {err}"),
                crate::RecordError::Unreadable(_) => {
                    format!("foreign instance value {}", hex::encode(bytes))
                }
            },
            pid: 0,
            version: String::new(),
            started_at_ms: 0,
        })
    }
}

impl InstanceRecord {
    /// Stands for a fence holder whose instance key no longer exists (deleted
    /// by an operator or a tool); any token for it is void.
    pub fn gone() -> Self {
        Self {
            id: InstanceId([0; 16]),
            host: "(no instance: the key was deleted)".into(),
            pid: 0,
            version: String::new(),
            started_at_ms: 0,
        }
    }
}

impl fmt::Display for InstanceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "instance {} (host {}, pid {}, version {})",
            self.id, self.host, self.pid, self.version
        )
    }
}

/// Proof of holding the fence for one identity: the revision of the
/// takeover write and the record written by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceToken {
    pub identity: Pubkey,
    /// The storage's revision of the takeover write (etcd: the mod_revision
    /// of the instance key).
    pub revision: i64,
    pub instance: InstanceRecord,
}

impl FenceToken {
    /// The token of a takeover of `identity` by `instance` at `revision`.
    pub(crate) fn new(identity: Pubkey, revision: i64, instance: &InstanceRecord) -> Self {
        Self {
            identity,
            revision,
            instance: instance.clone(),
        }
    }

    /// The same holder's token after a renewal at `revision`: the old one
    /// is void.
    pub(crate) fn renewed(&self, revision: i64) -> Self {
        Self {
            revision,
            ..self.clone()
        }
    }

    /// Whether `tower` may be stored under this fence: only the fenced
    /// identity's own tower.
    pub fn admits(&self, tower: &SavedTower) -> Result<(), crate::StorageError> {
        if tower.node_pubkey() == self.identity {
            Ok(())
        } else {
            Err(crate::StorageError::IdentityMismatch {
                fenced: self.identity,
                tower: tower.node_pubkey(),
            })
        }
    }
}

/// What a takeover found.
#[derive(Debug)]
pub struct Takeover {
    pub token: FenceToken,
    /// The stored tower, verified to be the identity's; `None` if none exists.
    pub tower: Option<SavedTower>,
    /// The instance that held the fence before, if any.
    pub displaced: Option<InstanceRecord>,
    /// The last leader slot any holder fenced before this takeover. Read in
    /// the same transaction, so no earlier holder can add to it: the new
    /// holder must not produce this slot or an older one again.
    pub last_leader_slot: Option<u64>,
}

/// Receipt of a successful fenced tower store: which identity's tower, up
/// to which vote, at which storage revision.
///
/// Only storage can make one (its fields are private to this crate), and it
/// cannot be copied, so a vote built from it was persisted first — and only
/// a vote the stored tower contains can be built from it. Forging one does
/// not compile:
///
/// ```compile_fail
/// use towerlock_storage::TowerStored;
/// let forged = TowerStored { identity: Default::default(), last_vote: Some(7), revision: 1 };
/// ```
#[must_use = "a store receipt is what lets the vote leave"]
#[derive(Debug, PartialEq, Eq)]
pub struct TowerStored {
    identity: Pubkey,
    last_vote: Option<Slot>,
    revision: i64,
}

impl TowerStored {
    pub(crate) fn new(token: &FenceToken, tower: &SavedTower, revision: i64) -> Self {
        Self {
            identity: token.identity,
            last_vote: tower.tower().last_voted_slot(),
            revision,
        }
    }

    /// The identity whose tower was stored.
    pub fn identity(&self) -> Pubkey {
        self.identity
    }

    /// The last vote of the stored tower.
    pub fn last_vote(&self) -> Option<Slot> {
        self.last_vote
    }

    /// The storage revision of the write.
    pub fn revision(&self) -> i64 {
        self.revision
    }
}

/// Receipt of a successful leader-slot fence: this identity may produce this
/// slot. Distinct from [`TowerStored`], so neither can stand for the other.
///
/// ```compile_fail
/// use towerlock_storage::LeaderSlotFenced;
/// let forged = LeaderSlotFenced { identity: Default::default(), slot: 7, revision: 1 };
/// ```
#[must_use = "a fence receipt is what lets the block be produced"]
#[derive(Debug, PartialEq, Eq)]
pub struct LeaderSlotFenced {
    identity: Pubkey,
    slot: Slot,
    revision: i64,
}

impl LeaderSlotFenced {
    pub(crate) fn new(token: &FenceToken, slot: Slot, revision: i64) -> Self {
        Self {
            identity: token.identity,
            slot,
            revision,
        }
    }

    /// The identity that may produce [`Self::slot`].
    pub fn identity(&self) -> Pubkey {
        self.identity
    }

    /// The leader slot fenced.
    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// The storage revision of the write.
    pub fn revision(&self) -> i64 {
        self.revision
    }
}

/// Receipt of a successful fenced store of a vote history: whose history,
/// its newest voted slot and how many votes it holds, at which revision.
///
/// An Alpenglow vote may be for a slot older than the history's newest (a
/// finalize or fallback vote), so the newest slot alone does not say that a
/// vote is in the stored history; with the count of votes it names one
/// history of the identity's single, growing record. Like [`TowerStored`],
/// only storage makes one and it cannot be copied:
///
/// ```compile_fail
/// use towerlock_storage::VoteHistoryStored;
/// let forged = VoteHistoryStored { identity: Default::default(), newest_vote: Some(7), votes: 1, revision: 1 };
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct VoteHistoryStored {
    identity: Pubkey,
    newest_vote: Option<Slot>,
    votes: usize,
    revision: i64,
}

impl VoteHistoryStored {
    pub(crate) fn new(token: &FenceToken, history: &SavedVoteHistory, revision: i64) -> Self {
        Self {
            identity: token.identity,
            newest_vote: history.history().last_voted_slot(),
            votes: history.history().votes().count(),
            revision,
        }
    }

    /// The identity whose vote history was stored.
    pub fn identity(&self) -> Pubkey {
        self.identity
    }

    /// The newest slot the stored history voted in.
    pub fn newest_vote(&self) -> Option<Slot> {
        self.newest_vote
    }

    /// How many votes the stored history holds (`votes_cast`, all slots).
    pub fn votes(&self) -> usize {
        self.votes
    }

    /// The storage revision of the write.
    pub fn revision(&self) -> i64 {
        self.revision
    }
}
