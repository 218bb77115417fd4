//! What can stop the sentinel: one variant per cause, one sentence each.

use std::path::PathBuf;

/// Why the sentinel cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SentinelError {
    /// The staked identity's keypair file cannot be used.
    #[error("cannot use the identity keypair {}: {reason}", path.display())]
    Identity { path: PathBuf, reason: String },
    /// No vote account names the identity as its node.
    #[error("no vote account names {identity} as its node: give --vote-account")]
    NoVoteAccount { identity: String },
    /// The cluster's RPC did not answer at start-up.
    #[error("the cluster's RPC at {url} does not answer: {reason} (check --cluster-rpc-url)")]
    ClusterRpc { url: String, reason: String },
    /// The local node's RPC address is unknown.
    #[error(
        "cannot find the local node's RPC: {reason} (give --local-rpc-url, or check --ledger)"
    )]
    LocalRpc { reason: String },
    /// etcd could not be reached with the flags given.
    #[error("cannot read the fence in etcd: {reason}")]
    Etcd { reason: String },
    /// The timeline file cannot be written.
    #[error("cannot write the timeline {}: {source}", path.display())]
    Timeline {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The metrics address cannot be bound.
    #[error("cannot serve metrics on {addr}: {source} (check --metrics-addr)")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Why one promotion failed (it is retried with backoff).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PromotionError {
    /// The `--fence-command` did not exit 0: the old node may still run.
    #[error("the fence command did not exit 0 ({outcome}): not promoting while the old node may still vote")]
    FenceCommand { outcome: String },
    /// The local node refused or failed `setIdentity`.
    #[error("setIdentity on the local node failed: {reason}")]
    SetIdentity { reason: String },
    /// The local node did not answer `setIdentity` in time.
    #[error("setIdentity got no answer within {secs} s: the fence may have moved; the next check will tell")]
    Timeout { secs: u64 },
}
