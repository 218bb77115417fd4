//! [`Votor`]: blocks, the vote pools of every undecided slot, the
//! synthetic voters, and finalization. Pure: the cluster calls it at each
//! slot's end ([`Votor::tick`], then [`Votor::on_block`]) and with each vote
//! a validator sends ([`Votor::receive`]); each call returns what happened,
//! in order, as [`VotorEvent`]s.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use towerlock_wire::votor::{VotorBlock, VotorVote, VotorVoteMessage, MAX_INSTANCE_LEN};

use super::certificate::{Certificate, CertificateKind};
use super::pool::{Added, Conflict, SlotPool};
use super::voter::SyntheticVoter;
use super::window::is_window_start;

/// A slot with no vote of a synthetic voter by the end of the slot plus
/// this many slots times out: it skips it.
pub const SKIP_GRACE_SLOTS: u64 = 1;
/// Pools are kept this many slots below the finalized slot, so that late
/// votes (a finalize after a fast finalization) still land.
pub const POOL_KEPT_SLOTS: u64 = 32;

/// A staked voter of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voter {
    pub identity: Pubkey,
    pub vote_account: Pubkey,
    pub stake: u64,
    /// Voted by the cluster itself (else by a validator, over RPC).
    pub synthetic: bool,
}

/// What happened, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VotorEvent {
    /// A leader's block arrived.
    Block(VotorBlock),
    /// A synthetic voter cast a vote (validators' votes are the caller's).
    SyntheticVote {
        voter: Pubkey,
        vote: VotorVote,
    },
    Certificate(Certificate),
    /// `slot`'s block was finalized, with its ancestors.
    Finalized {
        slot: u64,
        block_id: Hash,
        fast: bool,
    },
}

/// Why a validator's vote was not counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VotorVoteError {
    #[error("the signature does not verify against identity {identity}")]
    BadSignature { identity: Pubkey },
    #[error("{identity} is not a staked validator of this cluster")]
    UnknownIdentity { identity: Pubkey },
    #[error("{identity} votes with vote account {expected}, not {got}")]
    WrongVoteAccount {
        identity: Pubkey,
        expected: Pubkey,
        got: Pubkey,
    },
    #[error("instance id longer than {MAX_INSTANCE_LEN} bytes")]
    InstanceTooLong,
    #[error("slot {slot} is too old: slot {finalized} is finalized")]
    SlotTooOld { slot: u64, finalized: u64 },
    #[error("slot {slot} is too far ahead (current slot {current})")]
    SlotTooFar { slot: u64, current: u64 },
    #[error("conflicting vote: {0}")]
    Conflicting(#[from] Conflict),
    #[error(
        "the cluster runs TowerBFT; Votor votes need a cluster made with --consensus alpenglow"
    )]
    NotAlpenglow,
}

impl VotorVoteError {
    /// The name the audit trail records as the vote's result.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BadSignature { .. } => "BadSignature",
            Self::UnknownIdentity { .. } => "UnknownIdentity",
            Self::WrongVoteAccount { .. } => "WrongVoteAccount",
            Self::InstanceTooLong => "InstanceTooLong",
            Self::SlotTooOld { .. } => "SlotTooOld",
            Self::SlotTooFar { .. } => "SlotTooFar",
            Self::Conflicting(_) => "ConflictingVote",
            Self::NotAlpenglow => "NotAlpenglow",
        }
    }
}

/// Votor's whole state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Votor {
    voters: BTreeMap<Pubkey, Voter>,
    total_stake: u64,
    /// One block per slot, from the finalized one up.
    blocks: BTreeMap<u64, VotorBlock>,
    pools: BTreeMap<u64, SlotPool>,
    synthetic: Vec<SyntheticVoter>,
    finalized: (u64, Hash),
    /// Slots up to this one have been timed out.
    timed_out_through: u64,
    /// Votes further ahead than this many slots are refused.
    horizon: u64,
    /// The newest slot of a vote that landed, per validator identity: what
    /// a node taking an identity over checks its vote history against.
    landed: BTreeMap<Pubkey, u64>,
}

impl Votor {
    /// A Votor whose genesis block (slot 0, `genesis_block_id`) is finalized.
    /// Votes more than `horizon` slots ahead are refused.
    pub fn new(voters: Vec<Voter>, genesis_block_id: Hash, horizon: u64) -> Self {
        let total_stake = voters.iter().map(|v| v.stake).sum();
        let synthetic = voters
            .iter()
            .filter(|v| v.synthetic)
            .map(|v| SyntheticVoter::new(v.identity))
            .collect();
        let genesis = VotorBlock {
            slot: 0,
            block_id: genesis_block_id,
            parent_slot: 0,
            parent_block_id: genesis_block_id,
            leader: Pubkey::default(),
        };
        Self {
            voters: voters.into_iter().map(|v| (v.identity, v)).collect(),
            total_stake,
            blocks: BTreeMap::from([(0, genesis)]),
            pools: BTreeMap::new(),
            synthetic,
            finalized: (0, genesis_block_id),
            timed_out_through: 0,
            horizon,
            landed: BTreeMap::new(),
        }
    }

    // ----- views -------------------------------------------------------------

    /// The newest slot in which a vote of `identity` landed, if any.
    pub fn last_landed(&self, identity: &Pubkey) -> Option<u64> {
        self.landed.get(identity).copied()
    }

    /// The finalized slot and its block.
    pub fn finalized(&self) -> (u64, Hash) {
        self.finalized
    }
    /// The kept blocks, from the finalized one up.
    pub fn blocks(&self) -> &BTreeMap<u64, VotorBlock> {
        &self.blocks
    }
    pub fn block(&self, slot: u64) -> Option<&VotorBlock> {
        self.blocks.get(&slot)
    }
    pub fn total_stake(&self) -> u64 {
        self.total_stake
    }
    /// Every certificate formed in the kept slots, slot by slot.
    pub fn certificates(&self) -> impl Iterator<Item = Certificate> + '_ {
        self.pools
            .iter()
            .flat_map(|(slot, pool)| pool.certificates(*slot))
    }
    /// Whether `kind` formed in `slot` (for `block`, when the kind names one).
    pub fn has_certificate(&self, kind: CertificateKind, slot: u64, block: Option<Hash>) -> bool {
        self.pools.get(&slot).is_some_and(|p| p.has(kind, block))
    }

    /// The block a window's first slot `slot` may build on (ParentReady): the
    /// newest block with a notarize-fallback certificate (or the finalized
    /// one) such that every slot between it and `slot` has a skip
    /// certificate.
    pub fn parent_ready(&self, slot: u64) -> Option<(u64, Hash)> {
        let (finalized, finalized_block) = self.finalized;
        let mut parent = slot.checked_sub(1)?;
        loop {
            if parent < finalized {
                return None;
            }
            if parent == finalized {
                return Some((finalized, finalized_block));
            }
            let pool = self.pools.get(&parent);
            if let Some(block) = pool.and_then(SlotPool::certified_block) {
                return Some((parent, block));
            }
            if !pool.is_some_and(|p| p.has(CertificateKind::Skip, None)) {
                return None;
            }
            parent -= 1;
        }
    }

    /// The parent a leader builds `slot` on: a ready parent for a window's
    /// first slot; else its own block of the previous slot (or the
    /// finalized block there, as genesis is for the first window). `None`: it has
    /// nothing to build on, and the slot goes without a block.
    pub fn leader_parent(&self, slot: u64, leader: &Pubkey) -> Option<(u64, Hash)> {
        if is_window_start(slot) {
            return self.parent_ready(slot);
        }
        let previous = self.blocks.get(&(slot - 1))?;
        let own = previous.leader == *leader || previous.slot == self.finalized.0;
        own.then_some((previous.slot, previous.block_id))
    }

    // ----- events --------------------------------------------------------------

    /// The clock is ending `slot`: every slot up to `slot - SKIP_GRACE_SLOTS`
    /// a synthetic voter has not voted in times out.
    pub fn tick(&mut self, slot: u64) -> Vec<VotorEvent> {
        let through = slot.saturating_sub(SKIP_GRACE_SLOTS);
        let mut casts = VecDeque::new();
        let from = (self.timed_out_through + 1).max(self.finalized.0 + 1);
        for timed_out in from..=through {
            for voter in &mut self.synthetic {
                if let Some(vote) = voter.timeout(timed_out) {
                    casts.push_back((voter.identity, vote));
                }
            }
        }
        self.timed_out_through = self.timed_out_through.max(through);
        let mut events = vec![];
        self.run(casts, &mut events);
        events
    }

    /// A leader's block, taken at the end of its slot. One block per slot:
    /// a second is ignored.
    pub fn on_block(&mut self, block: VotorBlock) -> Vec<VotorEvent> {
        let mut events = vec![];
        if block.slot <= self.finalized.0 || self.blocks.contains_key(&block.slot) {
            return events;
        }
        self.blocks.insert(block.slot, block);
        events.push(VotorEvent::Block(block));
        let casts = self.try_notarize_all();
        self.run(casts, &mut events);
        events
    }

    /// A validator's signed vote: checked (signature, staked identity, its
    /// vote account, the slot, conflicts), then counted.
    pub fn receive(
        &mut self,
        message: &VotorVoteMessage,
        current_slot: u64,
    ) -> (Result<Added, VotorVoteError>, Vec<VotorEvent>) {
        let mut events = vec![];
        let result = self.check(message, current_slot).and_then(|()| {
            let slot = message.vote.slot();
            let added = self
                .pools
                .entry(slot)
                .or_default()
                .add(message.identity, &message.vote)?;
            let newest = self.landed.entry(message.identity).or_insert(slot);
            *newest = (*newest).max(slot);
            if added == Added::New {
                let mut casts = VecDeque::new();
                self.after_vote(slot, &mut casts, &mut events);
                self.run(casts, &mut events);
            }
            Ok(added)
        });
        (result, events)
    }

    fn check(&self, message: &VotorVoteMessage, current_slot: u64) -> Result<(), VotorVoteError> {
        if message.instance.len() > MAX_INSTANCE_LEN {
            return Err(VotorVoteError::InstanceTooLong);
        }
        let identity = message.identity;
        if !message.verify() {
            return Err(VotorVoteError::BadSignature { identity });
        }
        let voter = self
            .voters
            .get(&identity)
            .filter(|v| v.stake > 0 && !v.synthetic)
            .ok_or(VotorVoteError::UnknownIdentity { identity })?;
        if voter.vote_account != message.vote_account {
            return Err(VotorVoteError::WrongVoteAccount {
                identity,
                expected: voter.vote_account,
                got: message.vote_account,
            });
        }
        let slot = message.vote.slot();
        let finalized = self.finalized.0;
        if slot + POOL_KEPT_SLOTS < finalized || slot == 0 {
            return Err(VotorVoteError::SlotTooOld { slot, finalized });
        }
        if slot > current_slot + self.horizon {
            return Err(VotorVoteError::SlotTooFar {
                slot,
                current: current_slot,
            });
        }
        Ok(())
    }

    // ----- the cascade ---------------------------------------------------------

    /// Adds synthetic votes one by one, and everything they lead to.
    fn run(&mut self, mut casts: VecDeque<(Pubkey, VotorVote)>, events: &mut Vec<VotorEvent>) {
        while let Some((voter, vote)) = casts.pop_front() {
            let slot = vote.slot();
            if slot + POOL_KEPT_SLOTS < self.finalized.0 {
                continue;
            }
            let added = self.pools.entry(slot).or_default().add(voter, &vote);
            if added != Ok(Added::New) {
                continue;
            }
            events.push(VotorEvent::SyntheticVote { voter, vote });
            self.after_vote(slot, &mut casts, events);
        }
    }

    /// A vote counted in `slot`: new certificates, what synthetic voters do
    /// about them and about the pool's new tallies.
    fn after_vote(
        &mut self,
        slot: u64,
        casts: &mut VecDeque<(Pubkey, VotorVote)>,
        events: &mut Vec<VotorEvent>,
    ) {
        let voters = &self.voters;
        let stake = |v: &Pubkey| voters.get(v).map_or(0, |v| v.stake);
        let total = self.total_stake;
        let Some(pool) = self.pools.get_mut(&slot) else {
            return;
        };
        let formed = pool.new_certificates(slot, total, &stake);
        let safe_to_notar = pool.safe_to_notar(total, &stake);
        let safe_to_skip = pool.safe_to_skip(total, &stake);
        for voter in &mut self.synthetic {
            for block in &safe_to_notar {
                casts.extend(
                    voter
                        .safe_to_notar(slot, *block)
                        .map(|v| (voter.identity, v)),
                );
            }
            if safe_to_skip {
                casts.extend(voter.safe_to_skip(slot).map(|v| (voter.identity, v)));
            }
        }
        let mut readies = false;
        for certificate in formed {
            events.push(VotorEvent::Certificate(certificate));
            match certificate.kind {
                CertificateKind::Notarization => {
                    let block = certificate.block_id.expect("names its block");
                    for voter in &mut self.synthetic {
                        casts.extend(voter.try_finalize(slot, block).map(|v| (voter.identity, v)));
                    }
                    if self.has_certificate(CertificateKind::Finalization, slot, None) {
                        self.finalize(slot, block, false, events);
                    }
                    readies = true;
                }
                CertificateKind::FastFinalization => {
                    let block = certificate.block_id.expect("names its block");
                    self.finalize(slot, block, true, events);
                }
                CertificateKind::Finalization => {
                    if let Some(block) = self.pools.get(&slot).and_then(SlotPool::notarized) {
                        self.finalize(slot, block, false, events);
                    }
                }
                CertificateKind::NotarizeFallback | CertificateKind::Skip => readies = true,
            }
        }
        if readies {
            casts.extend(self.try_notarize_all());
        }
    }

    /// TryNotar for every kept block above the finalized slot.
    fn try_notarize_all(&mut self) -> VecDeque<(Pubkey, VotorVote)> {
        let mut casts = VecDeque::new();
        let blocks: Vec<VotorBlock> = self
            .blocks
            .range(self.finalized.0 + 1..)
            .map(|(_, b)| *b)
            .collect();
        let finalized = self.finalized;
        for block in blocks {
            let ready = is_window_start(block.slot)
                .then(|| self.parent_ready(block.slot))
                .flatten();
            for voter in &mut self.synthetic {
                let parent_valid = if is_window_start(block.slot) {
                    ready == Some((block.parent_slot, block.parent_block_id))
                } else {
                    block.parent_slot + 1 == block.slot
                        && (voter.notarized(block.parent_slot) == Some(block.parent_block_id)
                            || (block.parent_slot, block.parent_block_id) == finalized)
                };
                casts.extend(
                    voter
                        .try_notarize(block.slot, block.block_id, parent_valid)
                        .map(|v| (voter.identity, v)),
                );
            }
        }
        casts
    }

    /// `slot`'s block is final, and so are its ancestors: state below it is
    /// decided and pruned (pools kept a little longer for late votes).
    fn finalize(&mut self, slot: u64, block_id: Hash, fast: bool, events: &mut Vec<VotorEvent>) {
        if slot <= self.finalized.0 {
            return;
        }
        self.finalized = (slot, block_id);
        events.push(VotorEvent::Finalized {
            slot,
            block_id,
            fast,
        });
        self.blocks = self.blocks.split_off(&slot);
        self.pools = self.pools.split_off(&slot.saturating_sub(POOL_KEPT_SLOTS));
        for voter in &mut self.synthetic {
            voter.prune_below(slot);
        }
    }
}
