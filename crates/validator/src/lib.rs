//! The towerlock validator node: votes with a fenced tower, produces blocks in
//! its leader slots, and answers agave's admin RPC so that agave's operator
//! habits carry over.
//!
//! - `admin`: the admin RPC on `<ledger>/admin.rpc` (protocol, server, client).
//! - `restart_window`: when it is safe to restart or fail over.

pub mod admin;
pub mod metrics;
pub mod node;
pub mod restart_window;
