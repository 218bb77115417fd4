//! Accounts as the chain stores them: every vote account (ours and the
//! synthetic validators'), the validators' identity accounts, and the
//! SlotHistory sysvar. Built on demand from the banks and the synthetic
//! towers, so the state and its account view never disagree.

use solana_pubkey::Pubkey;
use solana_slot_history::SlotHistory;
use solana_vote_interface::authorized_voters::AuthorizedVoters;
use solana_vote_interface::state::{BlockTimestamp, LandedVote, VoteStateV4, VoteStateVersions};

use super::cluster::Cluster;
use super::synthetic::{SyntheticValidator, SyntheticVotes};

/// Lamports that make a vote account rent exempt (3 762 bytes).
pub const VOTE_ACCOUNT_LAMPORTS: u64 = 27_074_400;
/// Lamports that make the SlotHistory sysvar rent exempt (131 097 bytes).
pub const SLOT_HISTORY_LAMPORTS: u64 = 913_326_000;
/// What each validator identity holds (it pays its votes' fees).
pub const IDENTITY_LAMPORTS: u64 = 1_000_000_000_000;
/// The SlotHistory sysvar's address.
pub const SLOT_HISTORY_ID: Pubkey =
    Pubkey::from_str_const("SysvarS1otHistory11111111111111111111111111");
/// The owner of every sysvar.
pub const SYSVAR_OWNER: Pubkey =
    Pubkey::from_str_const("Sysvar1111111111111111111111111111111111111");
/// The System program, owner of identity accounts.
pub const SYSTEM_PROGRAM: Pubkey = Pubkey::from_str_const("11111111111111111111111111111111");

/// One account as `getAccountInfo` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub lamports: u64,
    pub data: Vec<u8>,
    pub owner: Pubkey,
}

impl Account {
    /// Whether this is a vote account (so `jsonParsed` can decode it).
    pub fn is_vote_account(&self) -> bool {
        self.owner == solana_vote_interface::program::id()
    }
}

/// A vote account's data as the vote program stores it:
/// `VoteStateVersions::V4`, zero-padded to the account's size.
pub fn vote_account_data(state: &VoteStateV4) -> Vec<u8> {
    let mut data = bincode::serialize(&VoteStateVersions::V4(Box::new(state.clone())))
        .expect("vote state serializes");
    data.resize(VoteStateV4::size_of().max(data.len()), 0);
    data
}

/// A synthetic validator's vote state from what a bank holds of it: its
/// identity is its voter and withdrawer; every vote landed in the next block
/// (latency 1).
pub fn synthetic_vote_state(v: &SyntheticValidator, votes: &SyntheticVotes) -> VoteStateV4 {
    let (slot, timestamp) = votes.last_timestamp;
    VoteStateV4 {
        node_pubkey: v.identity,
        authorized_withdrawer: v.identity,
        inflation_rewards_collector: v.vote_account,
        block_revenue_collector: v.identity,
        inflation_rewards_commission_bps: 0,
        block_revenue_commission_bps: 10_000,
        authorized_voters: AuthorizedVoters::new(0, v.identity),
        votes: votes
            .tower
            .iter()
            .map(|l| LandedVote {
                latency: 1,
                lockout: *l,
            })
            .collect(),
        root_slot: votes.root,
        epoch_credits: votes.epoch_credits.clone(),
        last_timestamp: BlockTimestamp { slot, timestamp },
        ..VoteStateV4::default()
    }
}

impl Cluster {
    /// The vote state of `vote_account` as of bank `slot` (ours from the
    /// bank, a synthetic validator's from its tower).
    pub fn vote_state(&self, vote_account: &Pubkey, slot: u64) -> Option<VoteStateV4> {
        if let Some(state) = self
            .bank(slot)
            .and_then(|bank| bank.vote_accounts.get(vote_account))
        {
            return Some(state.clone());
        }
        let bank = self.bank(slot)?;
        self.synthetic()
            .iter()
            .zip(&bank.synthetic)
            .find(|(v, _)| v.vote_account == *vote_account)
            .map(|(v, votes)| synthetic_vote_state(v, votes))
    }

    /// The SlotHistory sysvar of bank `slot`: every rooted slot, then the
    /// bank's ancestors above the root and the bank itself (as agave adds
    /// each bank's slot when the bank is created).
    pub fn slot_history(&self, slot: u64) -> SlotHistory {
        let mut history = self.rooted_history().clone();
        let mut chain = vec![];
        let mut current = slot;
        while current > self.root() {
            chain.push(current);
            match self.bank(current) {
                Some(bank) if bank.parent != current => current = bank.parent,
                _ => break,
            }
        }
        for s in chain.into_iter().rev() {
            history.add(s);
        }
        history
    }

    /// The account at `pubkey` in bank `slot`, if it exists.
    pub fn account(&self, pubkey: &Pubkey, slot: u64) -> Option<Account> {
        if let Some(state) = self.vote_state(pubkey, slot) {
            return Some(Account {
                lamports: VOTE_ACCOUNT_LAMPORTS,
                data: vote_account_data(&state),
                owner: solana_vote_interface::program::id(),
            });
        }
        if *pubkey == SLOT_HISTORY_ID {
            return Some(Account {
                lamports: SLOT_HISTORY_LAMPORTS,
                data: bincode::serialize(&self.slot_history(slot)).expect("serializes"),
                owner: SYSVAR_OWNER,
            });
        }
        let is_identity = self
            .genesis()
            .validators
            .iter()
            .any(|v| v.identity == *pubkey || v.secondary_identity == *pubkey)
            || self.synthetic().iter().any(|v| v.identity == *pubkey);
        is_identity.then(|| Account {
            lamports: IDENTITY_LAMPORTS,
            data: vec![],
            owner: SYSTEM_PROGRAM,
        })
    }
}
