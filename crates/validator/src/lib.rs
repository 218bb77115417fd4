//! The towerlock validator node: votes with a fenced tower, produces blocks in
//! its leader slots, and answers agave's admin RPC so that agave's operator
//! habits carry over.
//!
//! - `node`: the vote driver and the pure decisions it acts on (fork view,
//!   what to vote for, who may vote, duplicate instances), the node's RPC.
//! - `admin`: the admin RPC on `<ledger>/admin.rpc` (protocol, server, client).
//! - `restart_window`: when it is safe to restart or fail over.
//! - `metrics`: Prometheus text for `--metrics-addr`.
//! - `log_file`: `--log FILE`, reopened on SIGUSR1.
//!
//! The invariant everything else serves: a vote leaves the process only
//! after the tower holding it was stored behind the fence
//! (`node::vote::PendingVote::stored` needs the storage's receipt), and a
//! block only after its leader slot was fenced.

pub mod admin;
pub mod cert_expiry;
pub mod health;
pub mod log_file;
pub mod metrics;
pub mod node;
pub mod restart_window;
pub mod service;
