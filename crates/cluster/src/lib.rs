//! A local cluster that stands in for the Solana network on one machine.
//!
//! It produces slots and forks, keeps vote accounts, checks every vote
//! transaction like the vote program, takes blocks from our leaders, gossips
//! contact infos, answers a subset of Solana's JSON-RPC, and writes an audit
//! trail of everything validators sent it.
//!
//! - [`core`] is the logic without IO (sans-IO): a [`core::Cluster`] state
//!   machine whose clock is the slot. It has no sockets, no tasks and reads
//!   no clock; tests drive it directly.
//! - [`rpc`] maps JSON-RPC requests onto the core (pure as well).
//! - [`server`] is the thin tokio layer: slot timer, HTTP + websocket, audit
//!   file, snapshots.
//! - The protocol validators share with the cluster (types, transport,
//!   client) is `towerlock-wire`'s; [`api`] and [`client`] re-export it for
//!   tools that still name it through the cluster.
//! - [`genesis`] creates a cluster folder (`genesis.json`, key files).
//!
//! Safety checks over the audit trail are left to `towerlock-audit`.

pub mod core;
pub mod genesis;
pub mod rpc;
pub mod server;

pub use towerlock_wire::{api, client};
