//! TowerBFT for one validator, and agave's saved-tower byte format.
//!
//! This crate promises no IO: no files, no network, no clock, no runtime.
//! Time enters as arguments (the slot is the clock, a Unix timestamp is passed
//! in when a vote is recorded); storage and transport belong to other crates.
//!
//! - [`Tower`]: the lockout stack and the decisions made on it
//!   ([`Tower::record_vote`], [`Tower::is_locked_out`],
//!   [`Tower::check_vote_stake_threshold`]).
//! - [`SavedTower`]: a tower signed by its node, encoded byte for byte as agave
//!   writes `tower-1_9-<pubkey>.bin` (and reading the older `tower-<pubkey>.bin`).
//! - [`vote_history`]: Alpenglow's vote history, signed by its node, as agave
//!   4.x writes `vote_history-<pubkey>.bin`.

mod error;
mod layout;
mod saved;
mod tower;
pub mod vote_history;

pub use error::TowerError;
pub use layout::VoteTransaction;
pub use saved::{SavedTower, SavedTowerFormat, MAX_SAVED_TOWER_BYTES};
pub use tower::{
    Recorded, ThresholdDecision, Tower, VoteRecorded, VOTE_THRESHOLD_DEPTH, VOTE_THRESHOLD_SIZE,
};
pub use vote_history::{SavedVoteHistory, VoteHistory, VoteHistoryError};

pub use solana_vote_interface::state::{BlockTimestamp, Lockout, TowerSync, MAX_LOCKOUT_HISTORY};

/// A slot number, the cluster's logical clock.
pub type Slot = u64;
/// Seconds since the Unix epoch, as carried in vote timestamps.
pub type UnixTimestamp = i64;
