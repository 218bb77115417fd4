//! The cluster state machine: the fork tree of banks, our vote accounts per
//! bank, synthetic validators, blocks from our leaders, and gossip.
//!
//! # The fork model
//!
//! Synthetic leaders build on the *tip* (the head of the fork the cluster
//! builds on). With probability `fork_rate`, the first slot of a synthetic
//! leader's rotation builds on the tip's parent instead, as if the previous
//! block arrived too late: the old tip becomes a minor fork that nobody
//! extends, and it is pruned once the root passes it. A block from one of our
//! leaders becomes the tip when it builds on the tip; otherwise it is a minor
//! fork too. Synthetic validators vote on every new tip their lockouts allow;
//! the root is the highest slot rooted by two thirds of all stake, and the
//! confirmed slot the highest slot that two thirds voted on.
//!
//! # Votes
//!
//! A vote transaction is checked at once against the fork it votes on (the
//! tip when its last slot is an ancestor of the tip, else the newest bank
//! descending from that slot): the state it sees is that bank's, plus the
//! votes already accepted for the block that will extend it. Accepted votes
//! land in the next block built on that bank; if that bank is abandoned, they
//! never land (as on Solana).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_slot_history::SlotHistory;
use solana_transaction::Transaction;
use solana_vote_interface::state::VoteStateV4;
use towerlock_audit::event::{
    BankEvent, BlockEvent, CertificateEvent, ContactEvent, Event, FinalizedEvent, VoteEvent,
    VoteResult, VotorVoteEvent,
};
use towerlock_wire::api::{
    BankNotification, SignedContactInfo, SlotNotification, SubmitBlock, SubmitBlockResult,
    VoteAccountState,
};
use towerlock_wire::votor::{
    CertificateKind, VotorBlock, VotorNotification, VotorVote, VotorVoteMessage, VotorVoteResult,
};

use super::gossip::{GossipError, GossipTable};
use super::hashv;
use super::schedule::{EpochSchedule, LeaderSchedule, NUM_CONSECUTIVE_LEADER_SLOTS};
use super::synthetic::{stake_quantile, SyntheticValidator, SyntheticVotes};
use super::vote_program::{new_vote_state, process_tower_sync, InstructionFailure, VoteContext};
use super::vote_tx::{self, Rejection};
use super::votor::{Voter, Votor, VotorEvent, VotorVoteError};
use crate::genesis::{Consensus, Genesis};

mod alpenglow;

/// SlotHashes holds at most this many ancestors.
pub const MAX_SLOT_HASHES: usize = 512;
/// A recent blockhash is valid for this many blocks.
pub const MAX_BLOCKHASH_AGE: u64 = 150;
/// No vote landed in this many slots: delinquent.
pub const DELINQUENT_SLOT_DISTANCE: u64 = 128;
/// Probability that a synthetic validator votes on a given tip.
const SYNTHETIC_VOTE_PROBABILITY: f64 = 0.97;

/// A frozen block of some fork.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bank {
    pub slot: u64,
    /// Parent slot; the genesis bank is its own parent.
    pub parent: u64,
    pub hash: Hash,
    pub blockhash: Hash,
    pub block_id: Hash,
    pub leader: Pubkey,
    pub block_height: u64,
    pub transaction_count: u64,
    /// Our vote accounts' state in this bank.
    pub vote_accounts: BTreeMap<Pubkey, VoteStateV4>,
    /// When the bank was frozen (the block time), Unix milliseconds.
    pub time_ms: u64,
    /// The vote transactions of our validators that landed in this block.
    pub transactions: Vec<Transaction>,
    /// The synthetic validators' vote accounts in this bank (in the order
    /// of [`Cluster::synthetic`]).
    pub synthetic: Vec<SyntheticVotes>,
}

/// Votes accepted for the block that will extend a bank.
#[derive(Debug, Clone, Default)]
struct PendingVotes {
    /// The vote accounts' resulting states.
    states: BTreeMap<Pubkey, VoteStateV4>,
    transactions: Vec<Transaction>,
}

/// Something to push to subscribers.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    Slot(SlotNotification),
    /// The root moved to this slot.
    Root(u64),
    /// A vote transaction was accepted (Solana's `voteNotification`).
    Vote(VoteNotice),
    Bank(Box<BankNotification>),
    Contact(Box<SignedContactInfo>),
    /// Votor's stream (Alpenglow clusters): blocks, certificates,
    /// finalizations, the current slot.
    Votor(VotorNotification),
}

/// An accepted vote, as Solana's `voteSubscribe` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VoteNotice {
    pub vote_pubkey: String,
    pub slots: Vec<u64>,
    pub hash: String,
    pub timestamp: Option<i64>,
    pub signature: String,
}

/// What a call produced: audit events to append (in order) and notifications.
#[derive(Debug, Default)]
#[must_use]
pub struct Outputs {
    pub events: Vec<Event>,
    pub notifications: Vec<Notification>,
}

/// The verdict on a received vote transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteVerdict {
    /// The transaction's first signature.
    pub signature: Signature,
    pub result: Result<(), Rejection>,
}

/// Why a block submission was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The signature does not verify against the named leader.
    #[error("block signature does not verify")]
    BadSignature,
    /// The signer does not lead that slot.
    #[error("{leader} is not the leader of slot {slot}")]
    NotLeader { slot: u64, leader: Pubkey },
    /// The slot is over (recorded in the audit trail all the same).
    #[error("slot {slot} has ended (current slot {current})")]
    SlotEnded { slot: u64, current: u64 },
    /// The slot is more than an epoch ahead.
    #[error("slot {slot} is too far ahead (current slot {current})")]
    TooEarly { slot: u64, current: u64 },
    /// The parent is not a live bank older than the slot.
    #[error("parent {parent} is not a live bank older than slot {slot}")]
    BadParent { slot: u64, parent: u64 },
    /// The instance id is longer than 64 bytes.
    #[error("instance id longer than 64 bytes")]
    InstanceTooLong,
}

/// Counters for forks and skips.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkStats {
    /// Minor forks started by synthetic leaders.
    pub forks_started: u64,
    pub banks_created: u64,
    /// Banks removed because the root passed them on another fork.
    pub banks_pruned_off_fork: u64,
    pub skipped_slots: u64,
}

/// One of our validators, from genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurValidator {
    pub identity: Pubkey,
    pub vote_account: Pubkey,
    pub stake: u64,
}

#[derive(Debug, Clone)]
struct SubmittedBlock {
    parent: u64,
    block_id: Hash,
    instance: String,
    received_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    genesis_hash: Hash,
    next_slot: u64,
    root: u64,
    tip: u64,
    confirmed: u64,
    banks: Vec<Bank>,
    synthetic: Vec<SyntheticValidator>,
    stats: ForkStats,
    frozen_blocks: Vec<(u64, Vec<(u64, Hash)>)>,
    rooted_history: SlotHistory,
}

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("snapshot does not decode (written by another version? remove it to start the cluster from genesis): {0}")]
    Decode(#[from] bincode::Error),
    #[error("snapshot belongs to another genesis")]
    OtherGenesis,
    #[error("snapshot has no root bank")]
    NoRoot,
}

/// The local cluster's whole state.
pub struct Cluster {
    genesis: Genesis,
    genesis_hash: Hash,
    seed: Vec<u8>,
    epochs: EpochSchedule,
    stakes: Vec<(Pubkey, u64)>,
    total_stake: u64,
    ours: Vec<OurValidator>,
    synthetic: Vec<SyntheticValidator>,
    schedules: BTreeMap<u64, LeaderSchedule>,
    banks: BTreeMap<u64, Bank>,
    root: u64,
    tip: u64,
    confirmed: u64,
    next_slot: u64,
    /// Votes accepted for the block that will extend a bank, per bank.
    pending_votes: BTreeMap<u64, PendingVotes>,
    /// Every rooted slot (agave's SlotHistory of the root bank).
    rooted_history: SlotHistory,
    pending_blocks: BTreeMap<u64, Vec<SubmittedBlock>>,
    /// Every (parent, block id) seen for our leaders' slots.
    frozen_blocks: BTreeMap<u64, Vec<(u64, Hash)>>,
    gossip: GossipTable,
    stats: ForkStats,
    /// The slot hashes of the last vote target. Every vote of a slot
    /// targets the same bank (the tip), so they are walked once per slot,
    /// not once per vote; banks change only when a slot ends, which clears it.
    slot_hashes_memo: Option<(u64, SlotHashes)>,
    /// Votor, on a cluster made with `--consensus alpenglow`.
    votor: Option<Votor>,
}

/// A bank's ancestors with their hashes, newest first (the SlotHashes sysvar).
type SlotHashes = Arc<[(u64, Hash)]>;

fn b58<T: ToString>(x: &T) -> String {
    x.to_string()
}

impl Cluster {
    /// A new cluster at slot 0; the outputs hold the genesis bank's line.
    pub fn new(genesis: Genesis, now_ms: u64) -> (Self, Outputs) {
        let mut cluster = Self::empty(genesis);
        let vote_accounts = cluster
            .genesis
            .validators
            .iter()
            .map(|v| {
                (
                    v.vote_account,
                    new_vote_state(
                        &v.vote_account,
                        v.identity,
                        v.authorized_voter,
                        v.authorized_withdrawer,
                        v.commission,
                    ),
                )
            })
            .collect();
        let genesis_hash = cluster.genesis_hash;
        let bank = Bank {
            slot: 0,
            parent: 0,
            hash: genesis_hash,
            blockhash: hashv(&[b"blockhash", genesis_hash.as_ref()]),
            block_id: genesis_hash,
            leader: cluster.leader_of(0),
            block_height: 0,
            transaction_count: 0,
            vote_accounts,
            time_ms: now_ms,
            transactions: vec![],
            synthetic: cluster.synthetic.iter().map(|v| v.votes()).collect(),
        };
        let mut out = Outputs::default();
        out.events.push(bank_event(&bank, now_ms));
        cluster.banks.insert(0, bank);
        (cluster, out)
    }

    fn empty(genesis: Genesis) -> Self {
        let genesis_hash = genesis.hash();
        let seed = genesis.seed_bytes();
        let synthetic: Vec<SyntheticValidator> = genesis
            .synthetic()
            .into_iter()
            .map(|(id, vote, stake)| SyntheticValidator::new(id, vote, stake))
            .collect();
        let ours: Vec<OurValidator> = genesis
            .validators
            .iter()
            .map(|v| OurValidator {
                identity: v.identity,
                vote_account: v.vote_account,
                stake: v.stake,
            })
            .collect();
        let mut stakes: Vec<(Pubkey, u64)> = ours.iter().map(|v| (v.identity, v.stake)).collect();
        stakes.extend(synthetic.iter().map(|v| (v.identity, v.stake)));
        let total_stake = stakes.iter().map(|(_, s)| s).sum();
        let votor = (genesis.consensus == Consensus::Alpenglow).then(|| {
            let voters = ours
                .iter()
                .map(|v| Voter {
                    identity: v.identity,
                    vote_account: v.vote_account,
                    stake: v.stake,
                    synthetic: false,
                })
                .chain(synthetic.iter().map(|v| Voter {
                    identity: v.identity,
                    vote_account: v.vote_account,
                    stake: v.stake,
                    synthetic: true,
                }))
                .collect();
            // The genesis bank's block id is the genesis hash.
            Votor::new(voters, genesis_hash, genesis.slots_per_epoch)
        });
        Self {
            epochs: EpochSchedule::new(genesis.slots_per_epoch),
            genesis,
            genesis_hash,
            seed,
            stakes,
            total_stake,
            ours,
            synthetic,
            schedules: BTreeMap::new(),
            banks: BTreeMap::new(),
            root: 0,
            tip: 0,
            confirmed: 0,
            next_slot: 1,
            pending_votes: BTreeMap::new(),
            rooted_history: SlotHistory::default(),
            pending_blocks: BTreeMap::new(),
            frozen_blocks: BTreeMap::new(),
            gossip: GossipTable::default(),
            stats: ForkStats::default(),
            slot_hashes_memo: None,
            votor,
        }
    }

    /// The state to resume from (banks, vote accounts, synthetic towers;
    /// Votor's state follows on an Alpenglow cluster, so that a TowerBFT
    /// snapshot keeps its bytes).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut bytes = bincode::serialize(&Snapshot {
            genesis_hash: self.genesis_hash,
            next_slot: self.next_slot,
            root: self.root,
            tip: self.tip,
            confirmed: self.confirmed,
            banks: self.banks.values().cloned().collect(),
            synthetic: self.synthetic.clone(),
            stats: self.stats.clone(),
            frozen_blocks: self
                .frozen_blocks
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            rooted_history: self.rooted_history.clone(),
        })
        .expect("snapshot serializes");
        if let Some(votor) = &self.votor {
            bytes.extend(bincode::serialize(votor).expect("Votor serializes"));
        }
        bytes
    }

    /// Resumes from [`Cluster::snapshot`] bytes.
    pub fn restore(genesis: Genesis, bytes: &[u8]) -> Result<Self, RestoreError> {
        let mut rest = bytes;
        let snapshot: Snapshot = bincode::deserialize_from(&mut rest)?;
        let mut cluster = Self::empty(genesis);
        if cluster.votor.is_some() && !rest.is_empty() {
            cluster.votor = Some(bincode::deserialize(rest)?);
        }
        if snapshot.genesis_hash != cluster.genesis_hash {
            return Err(RestoreError::OtherGenesis);
        }
        cluster.banks = snapshot.banks.into_iter().map(|b| (b.slot, b)).collect();
        if !cluster.banks.contains_key(&snapshot.root) || !cluster.banks.contains_key(&snapshot.tip)
        {
            return Err(RestoreError::NoRoot);
        }
        cluster.next_slot = snapshot.next_slot;
        cluster.root = snapshot.root;
        cluster.tip = snapshot.tip;
        cluster.confirmed = snapshot.confirmed;
        cluster.synthetic = snapshot.synthetic;
        cluster.stats = snapshot.stats;
        cluster.frozen_blocks = snapshot.frozen_blocks.into_iter().collect();
        cluster.rooted_history = snapshot.rooted_history;
        Ok(cluster)
    }

    // ----- accessors -------------------------------------------------------

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }
    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }
    pub fn epoch_schedule(&self) -> EpochSchedule {
        self.epochs
    }
    /// The slot being produced now (the clock).
    pub fn current_slot(&self) -> u64 {
        self.next_slot
    }
    pub fn root(&self) -> u64 {
        self.root
    }
    pub fn tip(&self) -> u64 {
        self.tip
    }
    pub fn confirmed(&self) -> u64 {
        self.confirmed
    }
    pub fn bank(&self, slot: u64) -> Option<&Bank> {
        self.banks.get(&slot)
    }
    /// Live banks (and the root's recent ancestors), by slot.
    pub fn banks(&self) -> &BTreeMap<u64, Bank> {
        &self.banks
    }
    pub fn stats(&self) -> &ForkStats {
        &self.stats
    }
    pub fn gossip(&self) -> &GossipTable {
        &self.gossip
    }
    pub fn ours(&self) -> &[OurValidator] {
        &self.ours
    }
    pub fn synthetic(&self) -> &[SyntheticValidator] {
        &self.synthetic
    }
    pub fn total_stake(&self) -> u64 {
        self.total_stake
    }
    /// The consensus the cluster runs.
    pub fn consensus(&self) -> Consensus {
        self.genesis.consensus
    }
    /// Votor's state, on an Alpenglow cluster.
    pub fn votor(&self) -> Option<&Votor> {
        self.votor.as_ref()
    }
    /// Every rooted slot so far.
    pub fn rooted_history(&self) -> &SlotHistory {
        &self.rooted_history
    }

    /// The schedule of `epoch` (computed once, then cached).
    pub fn leader_schedule(&mut self, epoch: u64) -> &LeaderSchedule {
        if !self.schedules.contains_key(&epoch) {
            let schedule =
                LeaderSchedule::new(&self.stakes, epoch, self.epochs.slots_per_epoch, &self.seed);
            self.schedules.insert(epoch, schedule);
            while self.schedules.len() > 4 {
                self.schedules.pop_first();
            }
        }
        &self.schedules[&epoch]
    }

    pub fn leader_of(&mut self, slot: u64) -> Pubkey {
        let epoch = self.epochs.epoch(slot);
        let index = self.epochs.slot_index(slot);
        self.leader_schedule(epoch).leader_at(index)
    }

    /// Whether `ancestor` is `slot` or one of its ancestors (among kept banks).
    pub fn is_ancestor_or_equal(&self, ancestor: u64, mut slot: u64) -> bool {
        loop {
            if slot == ancestor {
                return true;
            }
            if slot < ancestor {
                return false;
            }
            match self.banks.get(&slot) {
                Some(bank) if bank.parent != bank.slot => slot = bank.parent,
                _ => return false,
            }
        }
    }

    /// SlotHashes of a bank built on `slot`: `slot` and its ancestors, newest first.
    pub fn slot_hashes(&self, mut slot: u64) -> Vec<(u64, Hash)> {
        let mut hashes = Vec::new();
        while let Some(bank) = self.banks.get(&slot) {
            hashes.push((slot, bank.hash));
            if bank.parent == bank.slot || hashes.len() == MAX_SLOT_HASHES {
                break;
            }
            slot = bank.parent;
        }
        hashes
    }

    /// [`Cluster::slot_hashes`] of a vote target, memoized until the slot ends.
    fn target_slot_hashes(&mut self, target: u64) -> SlotHashes {
        if let Some((slot, hashes)) = &self.slot_hashes_memo {
            if *slot == target {
                return hashes.clone();
            }
        }
        let hashes: SlotHashes = self.slot_hashes(target).into();
        self.slot_hashes_memo = Some((target, hashes.clone()));
        hashes
    }

    fn rng(&self, tag: &[u8], slot: u64) -> StdRng {
        StdRng::from_seed(hashv(&[tag, &self.seed, &slot.to_le_bytes()]).to_bytes())
    }

    // ----- the slot clock ---------------------------------------------------

    /// Ends the current slot: its block (if any) becomes a bank.
    pub fn end_slot(&mut self, now_ms: u64) -> Outputs {
        if self.votor.is_some() {
            return self.end_slot_votor(now_ms);
        }
        self.slot_hashes_memo = None;
        let slot = self.next_slot;
        self.next_slot += 1;
        let leader = self.leader_of(slot);
        let mut out = Outputs::default();
        let ours = self.ours.iter().any(|v| v.identity == leader);
        let produced = if ours {
            self.take_our_block(slot, leader, now_ms, &mut out)
        } else {
            let mut parent = self.tip;
            let fork_rate = self.genesis.fork_rate;
            if slot.is_multiple_of(NUM_CONSECUTIVE_LEADER_SLOTS)
                && fork_rate > 0.0
                && self.tip != self.root
            {
                let mut rng = self.rng(b"fork", slot);
                if rng.gen_bool(fork_rate.min(1.0)) {
                    parent = self.banks[&self.tip].parent;
                    self.stats.forks_started += 1;
                }
            }
            let block_id = hashv(&[
                b"synthetic-block",
                &self.seed,
                &slot.to_le_bytes(),
                &parent.to_le_bytes(),
            ]);
            Some((parent, block_id, true))
        };
        self.pending_blocks.retain(|s, _| *s > slot);
        match produced {
            Some((parent, block_id, becomes_tip)) => self.freeze(
                slot,
                parent,
                block_id,
                leader,
                becomes_tip,
                now_ms,
                &mut out,
            ),
            None => self.stats.skipped_slots += 1,
        }
        out
    }

    fn take_our_block(
        &mut self,
        slot: u64,
        leader: Pubkey,
        now_ms: u64,
        out: &mut Outputs,
    ) -> Option<(u64, Hash, bool)> {
        let _ = now_ms;
        let submitted = self.pending_blocks.remove(&slot).unwrap_or_default();
        let distinct: Vec<(u64, Hash)> = submitted.iter().map(|b| (b.parent, b.block_id)).collect();
        let duplicate = distinct.len() > 1;
        for block in &submitted {
            out.events.push(Event::Block(BlockEvent {
                slot,
                leader: b58(&leader),
                hash: b58(&self.block_hash(slot, block.parent, &block.block_id)),
                instance: block.instance.clone(),
                ts_ms: block.received_ms,
                duplicate,
            }));
        }
        if !distinct.is_empty() {
            self.frozen_blocks.insert(slot, distinct);
        }
        submitted
            .into_iter()
            .find(|b| self.banks.contains_key(&b.parent) && b.parent >= self.root)
            .map(|b| (b.parent, b.block_id, b.parent == self.tip))
    }

    /// The bank hash a block would get (its block id when the parent is unknown).
    fn block_hash(&self, slot: u64, parent: u64, block_id: &Hash) -> Hash {
        match self.banks.get(&parent) {
            Some(parent_bank) => bank_hash(&parent_bank.hash, slot, &blockhash_of(block_id)),
            None => *block_id,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn freeze(
        &mut self,
        slot: u64,
        parent: u64,
        block_id: Hash,
        leader: Pubkey,
        becomes_tip: bool,
        now_ms: u64,
        out: &mut Outputs,
    ) {
        // The synthetic validators voted on the tip when it froze; those
        // votes land in a block built on it.
        let synthetic = if parent == self.tip {
            self.synthetic.iter().map(|v| v.votes()).collect()
        } else {
            self.banks[&parent].synthetic.clone()
        };
        let parent_bank = &self.banks[&parent];
        let blockhash = blockhash_of(&block_id);
        let mut vote_accounts = parent_bank.vote_accounts.clone();
        let pending = self.pending_votes.remove(&parent).unwrap_or_default();
        vote_accounts.extend(pending.states);
        let landed = pending.transactions.len() as u64;
        let bank = Bank {
            slot,
            parent,
            hash: bank_hash(&parent_bank.hash, slot, &blockhash),
            blockhash,
            block_id,
            leader,
            block_height: parent_bank.block_height + 1,
            transaction_count: parent_bank.transaction_count + landed,
            vote_accounts,
            time_ms: now_ms,
            transactions: pending.transactions,
            synthetic,
        };
        self.stats.banks_created += 1;
        out.events.push(bank_event(&bank, now_ms));
        self.banks.insert(slot, bank);
        if becomes_tip && self.votor.is_some() {
            // Votor decides finality; the synthetic validators vote there.
            self.tip = slot;
        } else if becomes_tip {
            self.tip = slot;
            let root = self.root;
            let votes = self.synthetic_votes(slot);
            if self.root != root {
                out.notifications.push(Notification::Root(self.root));
            }
            if let Some(bank) = self.banks.get_mut(&slot) {
                bank.transaction_count += votes;
            }
        }
        out.notifications.push(Notification::Slot(SlotNotification {
            parent,
            root: self.root,
            slot,
        }));
        let notification = self.bank_notification(&self.banks[&slot]);
        out.notifications
            .push(Notification::Bank(Box::new(notification)));
    }

    /// Synthetic validators vote on the new tip; the root and the confirmed
    /// slot follow their towers. Returns how many voted.
    fn synthetic_votes(&mut self, tip: u64) -> u64 {
        let oldest = self
            .synthetic
            .iter()
            .filter_map(|v| v.tower.front().map(|l| l.slot()))
            .min()
            .unwrap_or(tip);
        let mut ancestors = HashSet::new();
        let mut slot = tip;
        while let Some(bank) = self.banks.get(&slot) {
            ancestors.insert(slot);
            if bank.parent == slot || slot < oldest {
                break;
            }
            slot = bank.parent;
        }
        let epoch = self.epochs.epoch(tip);
        let time_s = (self.banks[&tip].time_ms / 1000) as i64;
        let mut rng = self.rng(b"votes", tip);
        let mut voted = 0;
        for v in &mut self.synthetic {
            if rng.gen_bool(SYNTHETIC_VOTE_PROBABILITY) && v.can_vote(tip, &ancestors) {
                v.record_vote(tip, epoch, time_s);
                voted += 1;
            }
        }
        let roots = self
            .synthetic
            .iter()
            .map(|v| (v.root.unwrap_or(0), v.stake));
        if let Some(root) = stake_quantile(roots, self.total_stake, 2.0 / 3.0) {
            if root > self.root
                && self.banks.contains_key(&root)
                && self.is_ancestor_or_equal(root, tip)
            {
                self.set_root(root);
            }
        }
        let tip_bank = &self.banks[&tip];
        let mut last_votes: Vec<(u64, u64)> = self
            .synthetic
            .iter()
            .filter_map(|v| v.last_vote().map(|s| (s, v.stake)))
            .collect();
        for v in &self.ours {
            if let Some(last) = tip_bank
                .vote_accounts
                .get(&v.vote_account)
                .and_then(|s| s.votes.back())
            {
                last_votes.push((last.slot(), v.stake));
            }
        }
        last_votes.retain(|(s, _)| ancestors.contains(s));
        if let Some(confirmed) = stake_quantile(last_votes, self.total_stake, 2.0 / 3.0) {
            self.confirmed = self.confirmed.max(confirmed).max(self.root);
        }
        if !self.is_ancestor_or_equal(self.confirmed, tip) {
            self.confirmed = self.root;
        }
        voted
    }

    /// Moves the root and prunes every bank that is neither an ancestor
    /// (the last [`MAX_SLOT_HASHES`]) nor a descendant of it.
    fn set_root(&mut self, root: u64) {
        let mut newly_rooted = vec![];
        let mut slot = root;
        while slot > self.root {
            newly_rooted.push(slot);
            match self.banks.get(&slot) {
                Some(bank) if bank.parent != slot => slot = bank.parent,
                _ => break,
            }
        }
        for slot in newly_rooted.into_iter().rev() {
            self.rooted_history.add(slot);
        }
        self.root = root;
        let mut keep = HashSet::new();
        let mut slot = root;
        let mut oldest_ancestor = root;
        while let Some(bank) = self.banks.get(&slot) {
            keep.insert(slot);
            oldest_ancestor = slot;
            if bank.parent == slot || keep.len() == MAX_SLOT_HASHES {
                break;
            }
            slot = bank.parent;
        }
        for (slot, bank) in self.banks.range(root + 1..) {
            if bank.parent >= root && keep.contains(&bank.parent) {
                keep.insert(*slot);
            }
        }
        let mut pruned_off_fork = 0;
        self.banks.retain(|slot, _| {
            let kept = keep.contains(slot);
            if !kept && *slot > oldest_ancestor {
                pruned_off_fork += 1;
            }
            kept
        });
        self.stats.banks_pruned_off_fork += pruned_off_fork;
        let banks = &self.banks;
        self.pending_votes
            .retain(|slot, _| banks.contains_key(slot));
        self.frozen_blocks
            .retain(|slot, _| *slot + 2 * MAX_SLOT_HASHES as u64 > root);
    }

    // ----- votes ------------------------------------------------------------

    /// Checks a vote transaction like the vote program, queues it to land if
    /// accepted, and records it (with the verdict) in the audit trail.
    pub fn receive_vote(
        &mut self,
        tx: &Transaction,
        instance: Option<String>,
        now_ms: u64,
    ) -> (VoteVerdict, Outputs) {
        self.receive_parsed_vote(tx, vote_tx::parse(tx), instance, now_ms)
    }

    /// [`Cluster::receive_vote`] with the transaction already parsed by
    /// [`vote_tx::parse`], which needs no cluster state: the RPC server
    /// parses (and verifies the signatures) before it takes the cluster.
    pub fn receive_parsed_vote(
        &mut self,
        tx: &Transaction,
        parsed: Result<vote_tx::VoteTransaction, Rejection>,
        instance: Option<String>,
        now_ms: u64,
    ) -> (VoteVerdict, Outputs) {
        let mut out = Outputs::default();
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(rejection) => {
                // Recorded too: the trail holds every vote transaction
                // received, even one that is not a well-formed vote. What
                // the message names is kept; the rest stays empty.
                let keys = &tx.message.account_keys;
                let signature = tx.signatures.first().copied().unwrap_or_default();
                out.events.push(Event::Vote(VoteEvent {
                    ts_ms: now_ms,
                    vote_account: tx
                        .message
                        .instructions
                        .first()
                        .and_then(|ix| ix.accounts.first())
                        .and_then(|&i| keys.get(usize::from(i)))
                        .map(b58)
                        .unwrap_or_default(),
                    voter: String::new(),
                    identity: keys.first().map(b58).unwrap_or_default(),
                    instance: instance.unwrap_or_default(),
                    signature: b58(&signature),
                    lockouts: vec![],
                    root: None,
                    hash: String::new(),
                    result: VoteResult::Rejected(rejection.name()),
                }));
                let verdict = VoteVerdict {
                    signature,
                    result: Err(rejection),
                };
                return (verdict, out);
            }
        };
        let result = self.check_vote(tx, &parsed);
        let instance = instance
            .or_else(|| {
                self.gossip
                    .newest_instance(&parsed.identity)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let (lockouts, root, hash) = match &parsed.tower_sync {
            Ok(t) => (
                t.lockouts
                    .iter()
                    .map(|l| (l.slot(), l.confirmation_count()))
                    .collect(),
                t.root,
                b58(&t.hash),
            ),
            Err(_) => (vec![], None, String::new()),
        };
        if let (Ok(()), Ok(t)) = (&result, &parsed.tower_sync) {
            out.notifications.push(Notification::Vote(VoteNotice {
                vote_pubkey: b58(&parsed.vote_account),
                slots: t.lockouts.iter().map(|l| l.slot()).collect(),
                hash: b58(&t.hash),
                timestamp: t.timestamp,
                signature: b58(&parsed.signature),
            }));
        }
        out.events.push(Event::Vote(VoteEvent {
            ts_ms: now_ms,
            vote_account: b58(&parsed.vote_account),
            voter: b58(&parsed.voter),
            identity: b58(&parsed.identity),
            instance,
            signature: b58(&parsed.signature),
            lockouts,
            root,
            hash,
            result: match &result {
                Ok(()) => VoteResult::Accepted,
                Err(rejection) => VoteResult::Rejected(rejection.name()),
            },
        }));
        let verdict = VoteVerdict {
            signature: parsed.signature,
            result,
        };
        (verdict, out)
    }

    fn blockhash_is_recent(&self, blockhash: &Hash) -> bool {
        let tip_height = self.banks[&self.tip].block_height;
        self.banks.values().any(|b| {
            b.blockhash == *blockhash
                && tip_height.saturating_sub(b.block_height) <= MAX_BLOCKHASH_AGE
        })
    }

    /// The bank a vote on `slot` lands after: the tip when `slot` is on the
    /// tip's fork, else the newest bank descending from `slot`.
    fn vote_target(&self, slot: u64) -> u64 {
        if !self.banks.contains_key(&slot) || self.is_ancestor_or_equal(slot, self.tip) {
            return self.tip;
        }
        let mut descendants = HashSet::from([slot]);
        let mut newest = slot;
        for (s, bank) in self.banks.range(slot + 1..) {
            if descendants.contains(&bank.parent) {
                descendants.insert(*s);
                newest = *s;
            }
        }
        newest
    }

    fn check_vote(
        &mut self,
        tx: &Transaction,
        vote: &vote_tx::VoteTransaction,
    ) -> Result<(), Rejection> {
        if !vote.signatures_ok {
            return Err(Rejection::SignatureFailure);
        }
        if !self.blockhash_is_recent(&vote.recent_blockhash) {
            return Err(Rejection::BlockhashNotFound);
        }
        let fail = |failure| Rejection::Instruction {
            index: vote.instruction_index,
            failure,
        };
        let tower_sync = vote.tower_sync.clone().map_err(fail)?;
        if !self
            .ours
            .iter()
            .any(|v| v.vote_account == vote.vote_account)
        {
            // Synthetic vote accounts exist, but nobody holds their voters' keys.
            let synthetic = self
                .synthetic
                .iter()
                .any(|v| v.vote_account == vote.vote_account);
            return Err(fail(if synthetic {
                InstructionFailure::MissingRequiredSignature
            } else {
                InstructionFailure::InvalidAccountOwner
            }));
        }
        if !vote.vote_account_writable {
            return Err(fail(InstructionFailure::ReadonlyDataModified));
        }
        let target = tower_sync
            .lockouts
            .back()
            .map_or(self.tip, |l| self.vote_target(l.slot()));
        let slot_hashes = self.target_slot_hashes(target);
        let state = self
            .pending_votes
            .get(&target)
            .and_then(|pending| pending.states.get(&vote.vote_account))
            .or_else(|| self.banks[&target].vote_accounts.get(&vote.vote_account))
            .expect("every bank holds our vote accounts");
        // Only the voter's signature counts as the vote authority's (account 1
        // must be a signer).
        let signers: Vec<Pubkey> = vote
            .signers
            .iter()
            .copied()
            .filter(|s| *s != vote.voter || vote.voter_signed)
            .collect();
        let ctx = VoteContext {
            slot_hashes: &slot_hashes,
            epoch: self.epochs.epoch(self.next_slot),
            slot: self.next_slot,
        };
        let new_state = process_tower_sync(state, &tower_sync, &signers, ctx).map_err(fail)?;
        let entry = self.pending_votes.entry(target).or_default();
        entry.states.insert(vote.vote_account, new_state);
        entry.transactions.push(tx.clone());
        Ok(())
    }

    // ----- blocks -----------------------------------------------------------

    /// A block from one of our leaders. In time, it is queued for its slot
    /// (recorded when the slot ends); late, it is recorded at once and refused.
    pub fn submit_block(
        &mut self,
        block: &SubmitBlock,
        now_ms: u64,
    ) -> (Result<SubmitBlockResult, BlockError>, Outputs) {
        let mut out = Outputs::default();
        let result = self.submit_block_inner(block, now_ms, &mut out);
        (result, out)
    }

    fn submit_block_inner(
        &mut self,
        block: &SubmitBlock,
        now_ms: u64,
        out: &mut Outputs,
    ) -> Result<SubmitBlockResult, BlockError> {
        let (leader, block_id) = block.verify().ok_or(BlockError::BadSignature)?;
        if block.instance.len() > 64 {
            return Err(BlockError::InstanceTooLong);
        }
        let (slot, current) = (block.slot, self.next_slot);
        if slot > current + self.epochs.slots_per_epoch {
            return Err(BlockError::TooEarly { slot, current });
        }
        if self.leader_of(slot) != leader {
            return Err(BlockError::NotLeader { slot, leader });
        }
        let this = (block.parent, block_id);
        if slot < current {
            let seen = self.frozen_blocks.entry(slot).or_default();
            if !seen.contains(&this) {
                let duplicate = !seen.is_empty();
                seen.push(this);
                out.events.push(Event::Block(BlockEvent {
                    slot,
                    leader: b58(&leader),
                    hash: b58(&self.block_hash(slot, block.parent, &block_id)),
                    instance: block.instance.clone(),
                    ts_ms: now_ms,
                    duplicate,
                }));
            }
            return Err(BlockError::SlotEnded { slot, current });
        }
        if block.parent >= slot
            || block.parent < self.root
            || !self.banks.contains_key(&block.parent)
        {
            return Err(BlockError::BadParent {
                slot,
                parent: block.parent,
            });
        }
        let submitted = self.pending_blocks.entry(slot).or_default();
        if !submitted.iter().any(|b| (b.parent, b.block_id) == this) {
            submitted.push(SubmittedBlock {
                parent: block.parent,
                block_id,
                instance: block.instance.clone(),
                received_ms: now_ms,
            });
        }
        Ok(SubmitBlockResult {
            slot,
            duplicate: submitted.len() > 1,
        })
    }

    // ----- gossip -----------------------------------------------------------

    /// A signed contact info; pushed to subscribers when it changed anything.
    pub fn publish_contact(
        &mut self,
        contact: SignedContactInfo,
        now_ms: u64,
    ) -> (Result<bool, GossipError>, Outputs) {
        let mut out = Outputs::default();
        let result = self.gossip.insert(contact.clone());
        if result == Ok(true) {
            out.events.push(Event::Contact(ContactEvent {
                ts_ms: now_ms,
                pubkey: b58(&contact.info.pubkey),
                outset: contact.info.outset,
                instance: contact.info.instance.clone(),
            }));
            out.notifications
                .push(Notification::Contact(Box::new(contact)));
        }
        (result, out)
    }

    // ----- views ------------------------------------------------------------

    /// The stream's view of one bank.
    pub fn bank_notification(&self, bank: &Bank) -> BankNotification {
        let epoch = self.epochs.epoch(bank.slot);
        BankNotification {
            slot: bank.slot,
            parent: bank.parent,
            hash: bank.hash,
            block_id: bank.block_id,
            blockhash: bank.blockhash,
            leader: bank.leader,
            block_height: bank.block_height,
            root: self.root,
            confirmed: self.confirmed,
            tip: self.tip,
            vote_accounts: bank
                .vote_accounts
                .iter()
                .map(|(pubkey, state)| VoteAccountState {
                    vote_pubkey: *pubkey,
                    node_pubkey: state.node_pubkey,
                    // A vote state always has a voter for the current epoch;
                    // the zero key stands for none.
                    authorized_voter: state
                        .authorized_voters
                        .get_authorized_voter(epoch)
                        .unwrap_or_default(),
                    lockouts: state
                        .votes
                        .iter()
                        .map(|v| (v.slot(), v.confirmation_count()))
                        .collect(),
                    root_slot: state.root_slot,
                    last_vote: state.votes.back().map(|v| v.slot()),
                    credits: state.epoch_credits.last().map_or(0, |c| c.1),
                    activated_stake: self.stake_of_vote_account(pubkey),
                })
                .collect(),
        }
    }

    /// Every live bank (the root and its descendants), oldest first.
    pub fn live_banks(&self) -> impl Iterator<Item = &Bank> {
        self.banks.range(self.root..).map(|(_, b)| b)
    }

    pub fn stake_of_vote_account(&self, vote_account: &Pubkey) -> u64 {
        self.ours
            .iter()
            .find(|v| v.vote_account == *vote_account)
            .map(|v| v.stake)
            .or_else(|| {
                self.synthetic
                    .iter()
                    .find(|v| v.vote_account == *vote_account)
                    .map(|v| v.stake)
            })
            .unwrap_or(0)
    }
}

fn blockhash_of(block_id: &Hash) -> Hash {
    hashv(&[b"blockhash", block_id.as_ref()])
}

fn bank_hash(parent_hash: &Hash, slot: u64, blockhash: &Hash) -> Hash {
    hashv(&[
        parent_hash.as_ref(),
        &slot.to_le_bytes(),
        blockhash.as_ref(),
    ])
}

fn bank_event(bank: &Bank, now_ms: u64) -> Event {
    Event::Bank(BankEvent {
        slot: bank.slot,
        parent: bank.parent,
        hash: b58(&bank.hash),
        leader: b58(&bank.leader),
        ts_ms: now_ms,
    })
}
