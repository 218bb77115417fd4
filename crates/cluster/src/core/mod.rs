//! The cluster's logic, without IO (sans-IO): a [`Cluster`] is a state
//! machine driven by the slot clock ([`Cluster::end_slot`]) and by what
//! validators send ([`Cluster::receive_vote`], [`Cluster::submit_block`],
//! [`Cluster::publish_contact`]). Time is passed in; each call returns
//! [`Outputs`]: audit events to append and notifications to push.

pub mod accounts;
pub mod cluster;
pub mod gossip;
pub mod schedule;
pub mod synthetic;
pub mod vote_program;
pub mod vote_tx;
pub mod votor;

use sha2::{Digest, Sha256};
use solana_hash::Hash;

pub use cluster::{BlockError, Cluster, ForkStats, Notification, Outputs, VoteVerdict};

/// SHA-256 over the concatenation of `parts`.
pub fn hashv(parts: &[&[u8]]) -> Hash {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    Hash::new_from_array(hasher.finalize().into())
}
