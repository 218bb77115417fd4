//! Vote histories for tests.

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_tower::{
    vote_history::{Block, VotePayload},
    SavedVoteHistory, VoteHistory,
};

/// A history of `keypair` that notarized and finalized slots `1..=votes`
/// (block ids `[slot; 32]`), signed: two votes per slot.
pub fn notarized_history(keypair: &Keypair, votes: u64) -> SavedVoteHistory {
    let mut history = VoteHistory::new(keypair.pubkey(), 0);
    for slot in 1..=votes {
        let block = Block {
            slot,
            block_id: Hash::new_from_array([slot as u8; 32]),
        };
        history.voted.insert(slot);
        history.voted_notar.insert(slot, block.block_id);
        history.its_over.insert(slot);
        history.notarized_blocks.insert(block);
        history.votes_cast.insert(
            slot,
            vec![
                VotePayload::Notar {
                    block,
                    shred_version: 0,
                },
                VotePayload::Finalize {
                    slot,
                    shred_version: 0,
                },
            ],
        );
    }
    SavedVoteHistory::new(&history, keypair).expect("a history signs")
}
