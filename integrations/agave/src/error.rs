//! What can go wrong, one variant per branch agave's caller takes, and how
//! each reaches agave as its own `TowerError`.

use std::{fmt, io, time::Duration};

use solana_core::consensus::TowerError;
use solana_pubkey::Pubkey;

/// Why a load or a store through the fence did not succeed.
///
/// Reaches agave as `TowerError::IoError` (whose kind is `NotFound` only for
/// [`FenceError::NotFound`], the "no tower yet" that agave's start-up and
/// `--require-tower` understand), except the tower checks, which agave has
/// variants of its own for. [`FenceError::of`] finds it again in a
/// `TowerError`.
#[derive(thiserror::Error)]
pub enum FenceError {
    /// Another instance took the fence since our last load: this instance
    /// must stop voting. The sentence is agave's own.
    #[error("Lost etcd instance lock for {identity}: taken over by {by}")]
    LockLost { identity: Pubkey, by: String },

    /// etcd did not answer within the deadline, or the connection failed:
    /// the write may or may not have been applied, so the vote must not leave.
    #[error("tower storage unavailable, outcome unknown: {reason}")]
    Unavailable { reason: String },

    /// The tower kept changing under every takeover attempt: another
    /// instance keeps storing. The fence did not move.
    #[error("the tower of {identity} changed under every takeover attempt for {waited:?}: another instance keeps storing; the fence did not move")]
    Busy { identity: Pubkey, waited: Duration },

    /// A store for an identity this instance never loaded (took over): at
    /// start-up the load failed, or an identity change did not take over.
    #[error("no fence held for {identity}: its tower was not loaded through the fence (the takeover at start-up or set-identity failed), so nothing may be stored for it")]
    NoFence { identity: Pubkey },

    /// The fence was taken and no tower is stored yet for this identity.
    #[error("no saved tower for {identity} in etcd key {key}")]
    NotFound { identity: Pubkey, key: String },

    /// A record in etcd was written by a newer towerlock; left in place.
    #[error("etcd key {key} was written by a newer towerlock (record format {format}; this build reads formats up to {newest}): upgrade this node before it takes over")]
    NewerRecord {
        key: String,
        format: u32,
        newest: u32,
    },

    /// etcd's access control refused the request.
    #[error("etcd refused {what}: permission denied to this client certificate's user (its common name)")]
    PermissionDenied { what: String },

    /// etcd answered with an error that is not the fence and not a transport
    /// failure.
    #[error("etcd refused {what}: {reason}")]
    Etcd { what: String, reason: String },

    /// The endpoints or TLS files are wrong, or no endpoint answered at start.
    #[error(transparent)]
    Connect(towerlock_etcd::EtcdError),

    /// The runtime that carries the etcd requests could not be built or
    /// did not answer.
    #[error("tower storage runtime: {0}")]
    Runtime(String),
}

/// agave prints storage errors with `{:?}` (`Unable to save tower to storage:
/// {err:?}`): the sentence, not the structure.
impl fmt::Debug for FenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FenceError {
    /// The `FenceError` inside an error this crate returned to agave, if any.
    pub fn of(err: &TowerError) -> Option<&FenceError> {
        match err {
            TowerError::IoError(io) => io.get_ref()?.downcast_ref(),
            _ => None,
        }
    }

    /// Whether the outcome of the failed call is unknown.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, FenceError::Unavailable { .. })
    }

    /// A definite refusal from etcd of the request `what`.
    pub(crate) fn refused(what: &str, err: &towerlock_etcd::etcd_client::Error) -> Self {
        if towerlock_etcd::is_permission_denied(err) {
            return FenceError::PermissionDenied {
                what: what.to_string(),
            };
        }
        FenceError::Etcd {
            what: what.to_string(),
            reason: towerlock_etcd::describe_chain(err),
        }
    }
}

impl From<FenceError> for TowerError {
    fn from(err: FenceError) -> Self {
        let kind = match &err {
            FenceError::NotFound { .. } => io::ErrorKind::NotFound,
            FenceError::Unavailable { .. } => io::ErrorKind::TimedOut,
            FenceError::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        TowerError::IoError(io::Error::new(kind, err))
    }
}
