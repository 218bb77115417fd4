//! `--tower-storage etcd` for agave: agave's `TowerStorage` on towerlock's
//! fence.
//!
//! agave's voting service stores the tower before it sends each vote and
//! exits (`Unable to save tower to storage`) when the store fails; start-up
//! and `set-identity` load the tower. [`EtcdTowerStorage`] makes the load a
//! fenced takeover of the identity (returning its tower, verified by agave's
//! signature and owner checks before the fence moved) and the store a write
//! conditional on that fence. A lost fence or an unknown outcome is an
//! error, so the vote never leaves.
//!
//! The keys, records and transactions are towerlock's (docs/architecture.md
//! §2): `<identity>/instance`, `<identity>/tower` (agave's saved-tower bytes,
//! identical to its tower file). agave's trait is synchronous; the storage
//! owns a small runtime and bounds every call with towerlock's etcd deadline.
//!
//! [`cli`] holds agave's old flags and the storage they select, for the patch
//! to agave's validator (docs/agave.md).

// agave 3.1 marks its consensus types deprecated until the
// `agave-unstable-api` feature is requested (required from agave 4.0 on:
// docs/agave.md, "agave 4.x"); they are the interface this crate implements.
#![allow(deprecated)]

pub mod cli;
mod error;
pub mod fence;
mod record;
pub mod saved;
mod storage;

pub use error::FenceError;
pub use record::{InstanceRecord, RECORD_FORMAT};
pub use storage::EtcdTowerStorage;
pub use towerlock_etcd::EtcdConfig;
