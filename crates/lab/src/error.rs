//! What can go wrong in the lab, one variant per thing the caller does
//! about it, each with one sentence saying what to do.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Why the lab could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A read or write of the fenced storage failed.
    #[error("cannot {action}: {source}")]
    Storage {
        action: &'static str,
        #[source]
        source: towerlock_storage::StorageError,
    },
    /// The `etcd` binary is not on PATH.
    #[error("{}", crate::etcd::ETCD_MISSING)]
    EtcdMissing,
    /// etcd started but did not report healthy in time, or exited.
    #[error("etcd did not become healthy ({reason}): see its log below, or run 'towerlock etcd check'\n--- etcd log (tail) ---\n{log_tail}")]
    EtcdUnhealthy {
        /// What the health check saw last.
        reason: String,
        /// The end of etcd's log.
        log_tail: String,
    },
    /// The certificates for etcd could not be made or written.
    #[error("cannot make etcd's certificates in {}: {source}", dir.display())]
    Certs {
        /// Where they were to be written.
        dir: PathBuf,
        /// The reason.
        source: towerlock_certs::CertError,
    },
    /// A client could not connect to the lab's etcd.
    #[error("cannot connect to the lab's etcd at {endpoint}: {source}; is it still running?")]
    EtcdConnect {
        /// The client endpoint.
        endpoint: String,
        /// The reason.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The local cluster's folder could not be created.
    #[error("cannot create the cluster folder {}: {source}; give an empty, writable directory", dir.display())]
    ClusterInit {
        /// The cluster folder.
        dir: PathBuf,
        /// The reason.
        source: towerlock_cluster::genesis::GenesisError,
    },
    /// The local cluster could not be served.
    #[error("cannot start the cluster from {} on {addr}: {source}; check the folder and that the port is free", dir.display())]
    ClusterStart {
        /// The cluster folder.
        dir: PathBuf,
        /// The address it was to listen on.
        addr: std::net::SocketAddr,
        /// What failed.
        source: towerlock_cluster::server::ServerError,
    },
    /// A validator process exited while the lab waited on it.
    #[error("{name} exited with {status} while the lab waited on it: see its log below\n--- {name} log (tail) ---\n{log_tail}")]
    ValidatorExited {
        /// The node's name in the lab.
        name: String,
        /// How it exited.
        status: ExitStatus,
        /// The end of its log.
        log_tail: String,
    },
    /// A process the lab owns is not running (signal or restart refused).
    #[error("{what} is not running: start it first")]
    NotRunning {
        /// Which process.
        what: String,
    },
    /// An admin RPC call failed.
    #[error("admin call {method} to {name} failed: {source}")]
    Admin {
        /// The node's name in the lab.
        name: String,
        /// The admin method.
        method: &'static str,
        /// The reason.
        source: towerlock_validator::admin::client::ClientError,
    },
    /// Something awaited did not happen in time.
    #[error(
        "timed out after {waited:?} waiting for {what}: raise the deadline or look at the logs"
    )]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
    },
    /// A fault proxy could not listen on loopback.
    #[error("cannot start the fault proxy for {link}: {source}")]
    Proxy {
        /// The link's name.
        link: String,
        /// The reason.
        source: std::io::Error,
    },
    /// A file or process operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which file, directory or binary.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
}

impl LabError {
    /// An [`LabError::Io`] maker for `map_err`.
    pub(crate) fn storage(
        action: &'static str,
    ) -> impl FnOnce(towerlock_storage::StorageError) -> Self {
        move |source| Self::Storage { action, source }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
