//! Alpenglow's Votor (SIMD-0326), the consensus of a cluster made with
//! `--consensus alpenglow`, without IO. A file per idea:
//!
//! - [`window`]: leader windows of four slots;
//! - [`certificate`]: the certificates and their thresholds of stake;
//! - [`pool`]: one slot's votes, the conflicts refused, the certificates
//!   formed, SafeToNotar and SafeToSkip;
//! - [`voter`]: a synthetic voter's state and the votes it casts;
//! - [`engine`]: [`Votor`], which ties them together: blocks, ParentReady,
//!   timeouts in slots of the cluster's clock, finalization.
//!
//! The cluster ([`crate::core::Cluster`]) owns the banks and the ledger;
//! it asks Votor what a leader builds on, hands it each block and each
//! validator's vote, and follows its finalizations with the root.

pub mod certificate;
pub mod engine;
pub mod pool;
pub mod voter;
pub mod window;

pub use certificate::{Certificate, CertificateKind};
pub use engine::{Voter, Votor, VotorEvent, VotorVoteError, POOL_KEPT_SLOTS, SKIP_GRACE_SLOTS};
pub use pool::{Added, Conflict};

#[cfg(test)]
mod tests;
