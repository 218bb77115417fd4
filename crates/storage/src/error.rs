use std::path::PathBuf;

use solana_pubkey::Pubkey;
use towerlock_tower::TowerError;

use crate::InstanceRecord;

/// Why a storage operation did not succeed. One variant per branch a caller
/// takes.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Another instance took the fence: stop voting at once.
    #[error("Lost etcd instance lock for {identity}: taken over by {by}")]
    LockLost {
        identity: Pubkey,
        by: Box<InstanceRecord>,
    },

    /// The storage did not answer in time or the connection failed: the
    /// write may or may not have happened, so the vote must not be sent.
    #[error("tower storage unavailable: {reason}")]
    Unavailable { reason: String },

    /// The tower kept changing under every takeover attempt (another
    /// instance stores continuously); the fence did not move.
    #[error("the tower of {identity} changed under every takeover attempt for {waited:?}: another instance keeps storing; the fence did not move")]
    Busy {
        identity: Pubkey,
        waited: std::time::Duration,
    },

    /// No tower is stored for this identity.
    #[error("no saved tower for {identity}")]
    NotFound { identity: Pubkey },

    /// The stored bytes are not a tower (or a tower that breaks its
    /// invariants). They are left in place.
    #[error("saved tower for {identity} at {location} is corrupt: {reason}")]
    Corrupt {
        identity: Pubkey,
        location: String,
        reason: String,
    },

    /// A record (the fence holder's, the last leader slot) was written by
    /// a newer release; it is left in place.
    #[error("{location} for {identity} was {source}: upgrade this node before it takes over")]
    NewerRecord {
        identity: Pubkey,
        location: String,
        source: crate::RecordError,
    },

    /// The stored tower's signature does not verify for this identity.
    #[error("saved tower for {identity} at {location} has an invalid signature")]
    InvalidSignature { identity: Pubkey, location: String },

    /// The stored tower belongs to another node.
    #[error("saved tower at {location} belongs to {found}, not to {identity}")]
    WrongTower {
        identity: Pubkey,
        found: Pubkey,
        location: String,
    },

    /// No vote history is stored for this identity.
    #[error("no saved vote history for {identity}")]
    VoteHistoryNotFound { identity: Pubkey },

    /// The stored vote history is corrupt, badly signed or another node's.
    /// It is left in place.
    #[error("vote history for {identity} at {location} is refused: {source}")]
    VoteHistory {
        identity: Pubkey,
        location: String,
        source: Box<towerlock_tower::VoteHistoryError>,
    },

    /// The tower (or vote history) handed to a store is not the fenced
    /// identity's.
    #[error("refusing to store a record of {tower} under the fence of {fenced}")]
    IdentityMismatch { fenced: Pubkey, tower: Pubkey },

    /// Another process on this host holds the tower's lock file.
    #[error("tower for {identity} is locked by another process ({path})")]
    Locked { identity: Pubkey, path: PathBuf },

    /// Connecting to etcd failed: etcd is down or did not answer in time
    /// (`EtcdError::is_unreachable`, worth a retry), or the certificates, TLS
    /// or endpoints are wrong (fix the flags).
    #[error(transparent)]
    Connect(towerlock_etcd::EtcdError),

    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// etcd's access control refused the request: the user of the client
    /// certificate (its common name) may not touch these keys.
    #[error(
        "etcd refused the request ({what}): permission denied to this client certificate's user (its \
         common name); with access control on, an identity's certificate \
         (validator-<PUBKEY>.pem) reaches only that identity's keys and the reader's may only read"
    )]
    PermissionDenied { what: String },

    /// etcd answered with an error that is not a transport failure.
    #[error("etcd refused the request: {reason}")]
    Etcd { reason: String },
}

impl StorageError {
    /// Maps a tower decoding error to the storage error for `identity` read
    /// from `location`.
    pub(crate) fn from_tower(identity: Pubkey, location: String, err: TowerError) -> Self {
        match err {
            TowerError::Corrupt { reason } | TowerError::Unencodable { reason } => {
                StorageError::Corrupt {
                    identity,
                    location,
                    reason,
                }
            }
            TowerError::InvalidSignature { .. } => {
                StorageError::InvalidSignature { identity, location }
            }
            TowerError::WrongTower { found, .. } => StorageError::WrongTower {
                identity,
                found,
                location,
            },
        }
    }

    /// A definite refusal from etcd of the request `what`.
    pub(crate) fn refused(what: &str, err: &towerlock_etcd::etcd_client::Error) -> Self {
        if towerlock_etcd::is_permission_denied(err) {
            return StorageError::PermissionDenied {
                what: what.to_string(),
            };
        }
        StorageError::Etcd {
            reason: format!("{what}: {}", towerlock_etcd::describe_chain(err)),
        }
    }

    /// Whether the outcome of the failed call is unknown (retry later)
    /// rather than a definite refusal.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable { .. })
    }
}
