//! Persist before send, in types: a recorded vote becomes sendable only with
//! the receipt of a successful store of a tower that contains it, which only
//! storage can make.

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_transaction::Transaction;
use towerlock_storage::TowerStored;
use towerlock_tower::{Slot, TowerSync};

/// A vote recorded in the tower whose tower has not been stored yet.
#[must_use = "a pending vote must be stored, then sent"]
#[derive(Debug)]
pub struct PendingVote {
    identity: Pubkey,
    slot: Slot,
    tower_sync: TowerSync,
    blockhash: Hash,
}

/// A vote whose tower is stored: the only kind that can become a transaction.
#[derive(Debug)]
pub struct SendableVote {
    slot: Slot,
    tower_sync: TowerSync,
    blockhash: Hash,
}

/// A receipt that does not cover the vote it was to release.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the receipt covers {stored_identity} up to {stored_vote:?}, not the vote of {identity} at {slot}")]
pub struct ReceiptMismatch {
    pub identity: Pubkey,
    pub slot: Slot,
    pub stored_identity: Pubkey,
    pub stored_vote: Option<Slot>,
}

impl PendingVote {
    /// Only the node machine records votes (right after `Tower::record_vote`).
    pub(crate) fn new(
        identity: Pubkey,
        slot: Slot,
        tower_sync: TowerSync,
        blockhash: Hash,
    ) -> Self {
        Self {
            identity,
            slot,
            tower_sync,
            blockhash,
        }
    }

    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// The store succeeded: the vote may leave, if the receipt is for this
    /// identity's tower and that tower's last vote is this one.
    pub fn stored(self, receipt: TowerStored) -> Result<SendableVote, ReceiptMismatch> {
        if receipt.identity() != self.identity || receipt.last_vote() != Some(self.slot) {
            return Err(ReceiptMismatch {
                identity: self.identity,
                slot: self.slot,
                stored_identity: receipt.identity(),
                stored_vote: receipt.last_vote(),
            });
        }
        Ok(SendableVote {
            slot: self.slot,
            tower_sync: self.tower_sync,
            blockhash: self.blockhash,
        })
    }
}

impl SendableVote {
    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// The TowerSync transaction, signed by the identity (fee payer) and the
    /// authorized voter.
    pub fn transaction(
        self,
        identity: &Keypair,
        voter: &Keypair,
        vote_account: &Pubkey,
    ) -> Transaction {
        towerlock_wire::vote::vote_transaction(
            identity,
            voter,
            vote_account,
            self.tower_sync,
            self.blockhash,
        )
    }
}
