//! Persist before send, in types: a recorded vote becomes sendable only with
//! the receipt of a successful store, which only storage can make.

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_transaction::Transaction;
use towerlock_storage::Stored;
use towerlock_tower::{Slot, TowerSync};

/// A vote recorded in the tower whose tower has not been stored yet.
#[must_use = "a pending vote must be stored, then sent"]
#[derive(Debug)]
pub struct PendingVote {
    pub slot: Slot,
    tower_sync: TowerSync,
    blockhash: Hash,
}

/// A vote whose tower is stored: the only kind that can become a transaction.
#[derive(Debug)]
pub struct SendableVote {
    pub slot: Slot,
    tower_sync: TowerSync,
    blockhash: Hash,
}

impl PendingVote {
    pub fn new(slot: Slot, tower_sync: TowerSync, blockhash: Hash) -> Self {
        Self {
            slot,
            tower_sync,
            blockhash,
        }
    }

    /// The store succeeded: the vote may leave. (The receipt is the proof;
    /// only storage can make one.)
    pub fn stored(self, _receipt: Stored) -> SendableVote {
        SendableVote {
            slot: self.slot,
            tower_sync: self.tower_sync,
            blockhash: self.blockhash,
        }
    }
}

impl SendableVote {
    /// The TowerSync transaction, signed by the identity (fee payer) and the
    /// authorized voter.
    pub fn transaction(
        &self,
        identity: &Keypair,
        voter: &Keypair,
        vote_account: &Pubkey,
    ) -> Transaction {
        towerlock_wire::vote::vote_transaction(
            identity,
            voter,
            vote_account,
            self.tower_sync.clone(),
            self.blockhash,
        )
    }
}
