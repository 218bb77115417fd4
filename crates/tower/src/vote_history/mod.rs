//! Alpenglow's vote history: agave's `vote_history-<pubkey>.bin`, byte for byte.
//!
//! Under Alpenglow (agave 4.x, "Votor") a validator persists its vote history
//! before every vote, and refuses `set-identity` to a staked identity that has
//! cast Alpenglow votes without it. Unlike a tower it cannot be rebuilt from
//! the chain. This module reads and writes it exactly as agave does
//! (docs/vote-history.md), with no dependency on agave: the layout is
//! reproduced from `agave-votor`'s source.
//!
//! - `model.rs`: [`VoteHistory`] and the types it holds.
//! - `codec.rs`: the wincode primitives; `layout.rs`: the history's bytes.
//! - `saved.rs`: [`SavedVoteHistory`], the signed file.
//! - `error.rs`: [`VoteHistoryError`].

mod codec;
mod error;
mod layout;
mod model;
mod saved;

pub use error::VoteHistoryError;
pub use model::{Block, VoteHistory, VotePayload};
pub use saved::{SavedVoteHistory, MAX_SAVED_VOTE_HISTORY_BYTES};
