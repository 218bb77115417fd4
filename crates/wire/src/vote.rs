//! The vote transaction validators send and the cluster checks.
//!
//! The cluster decodes and verifies votes itself (it needs nothing from
//! here but the shape). [`vote_transaction`] *builds* one: in the validator
//! its only caller must be the persist-before-send type
//! (`towerlock_validator::node::vote::SendableVote`), which exists only
//! after the tower was stored; tests and tools that stand in for a
//! validator may call it directly.

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
pub use solana_transaction::Transaction;
pub use solana_vote_interface::state::TowerSync;

/// A TowerSync vote as the vote program expects it: instruction accounts
/// `[vote_account (writable), voter (signer)]`, fee payer the node identity,
/// signed by the identity and the voter (once when they are the same key).
pub fn vote_transaction(
    identity: &Keypair,
    voter: &Keypair,
    vote_account: &Pubkey,
    tower_sync: TowerSync,
    recent_blockhash: Hash,
) -> Transaction {
    let instruction =
        solana_vote_interface::instruction::tower_sync(vote_account, &voter.pubkey(), tower_sync);
    let payer = identity.pubkey();
    if identity.pubkey() == voter.pubkey() {
        Transaction::new_signed_with_payer(
            &[instruction],
            Some(&payer),
            &[identity],
            recent_blockhash,
        )
    } else {
        Transaction::new_signed_with_payer(
            &[instruction],
            Some(&payer),
            &[identity, voter],
            recent_blockhash,
        )
    }
}

/// A TowerSync from `[slot, confirmation_count]` pairs (oldest first), a root,
/// and the voted bank's hash and block id (as [`crate::api::BankNotification`]
/// carries them).
pub fn tower_sync(
    lockouts: &[(u64, u32)],
    root: Option<u64>,
    bank_hash: Hash,
    block_id: Hash,
) -> TowerSync {
    let mut tower_sync = TowerSync::from(lockouts.to_vec());
    tower_sync.root = root;
    tower_sync.hash = bank_hash;
    tower_sync.block_id = block_id;
    tower_sync
}
