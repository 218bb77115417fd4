//! What validators and the local cluster exchange, in one place.
//!
//! - [`api`]: the protocol types (bank and slot notifications, block
//!   submission, gossip contact infos, `sendTransaction`'s extra config) and
//!   the method names, with the transport documented. Pubkeys, hashes and
//!   signatures are typed and travel as base-58 strings, so a malformed one
//!   is refused once, when a message is decoded.
//! - [`client`]: a small JSON-RPC/websocket client for the cluster.
//! - [`vote`]: the TowerSync vote transaction both sides agree on.
//! - [`votor`]: Alpenglow's Votor: the signed vote message and the
//!   `votorSubscribe` stream of a cluster started with `--consensus alpenglow`.
//!
//! The cluster's logic (`towerlock-cluster`) and the validator's
//! (`towerlock-validator`) each depend on this crate, not on one another.
//! It holds no state and makes no decisions.

pub mod api;
mod b58;
pub mod client;
pub mod vote;
pub mod votor;
