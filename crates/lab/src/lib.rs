//! The lab: the whole towerlock system on one machine, for `towerlock
//! drill`, the benchmarks, the chaos harness and end-to-end tests.
//!
//! What it promises:
//! - real processes, never mocks: [`EtcdProcess`] runs the `etcd` binary
//!   (temporary data dir, free loopback ports, the seed's mutual TLS),
//!   [`ValidatorProcess`] runs `towerlock-validator` with a command line it
//!   can restart; [`LabCluster`] serves the local cluster in this process on
//!   a thread and runtime of its own ([`ClusterServer`]);
//! - faults on demand: pause (SIGSTOP), resume, kill (SIGKILL), restart;
//! - every owned process is killed, and every temporary directory removed,
//!   when its guard drops;
//! - waits observe events — the node's status over its admin RPC, new
//!   lines of the audit trail ([`AuditTrail`], read incrementally), process
//!   exits — through one helper, [`wait_until`], with a deadline; never a
//!   fixed sleep, never log scraping;
//! - no panics: every failure is a [`LabError`] with one sentence saying
//!   what to do (etcd missing: how to install it).
//!
//! What it leaves to others: judging safety (`towerlock-audit`), what the
//! node does (`towerlock-validator`), and the tests' panicking conveniences
//! (`towerlock-testsupport`).

mod cluster;
mod error;
pub mod etcd;
mod etcd_cluster;
mod lab;
mod process;
pub mod proxy;
pub mod trail;
mod validator;
mod vote_history;
mod wait;

pub use cluster::{ClusterServer, LabCluster};
pub use error::LabError;
pub use etcd::{
    etcd_binary, free_port, free_ports, metrics_text, EtcdOptions, EtcdProcess, ETCD_MISSING,
};
pub use etcd_cluster::EtcdCluster;
pub use lab::{consensus_flags, Lab};
pub use process::log_tail;
pub use proxy::{Direction, Fault, FaultProxy, ProxyStats};
pub use trail::{as_landed, banks_between, now_ms, voted_slot, AuditTrail, LandedVote};
pub use validator::ValidatorProcess;
pub use vote_history::{audited_history, stored_vote_history, votes_missing_from_etcd};
pub use wait::{wait_until, POLL};

pub use towerlock_validator::admin::{NodeStatus, Role};
