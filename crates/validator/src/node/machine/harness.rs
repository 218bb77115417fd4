//! A test harness for the machine: the storage is the in-memory backend
//! (its fence semantics are the etcd backend's, checked by the storage
//! conformance suite), the cluster is hand-made banks, and time is a
//! number. Actions are carried out only when the test says so, so the test
//! decides what happens between a request and its answer.

use std::collections::{BTreeSet, VecDeque};

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_slot_history::SlotHistory;
use towerlock_storage::{MemoryTowerStorage, StorageError, TowerStorage};
use towerlock_tower::{Slot, VoteHistory};
use towerlock_wire::{
    api::{BankNotification, SignedContactInfo, SubmitBlock, VoteAccountState},
    votor::{CertificateKind, VotorBlock, VotorCertificate, VotorNotification, VotorVote},
};

use super::*;
use crate::admin::AdminError;

/// The fixture: a primary identity (the vote account's node and voter), a
/// secondary identity, and a vote account.
pub struct Keys {
    pub primary: Keypair,
    pub secondary: Keypair,
    pub vote_account: Pubkey,
}

impl Keys {
    pub fn new() -> Self {
        Self {
            primary: Keypair::new(),
            secondary: Keypair::new(),
            vote_account: Pubkey::new_unique(),
        }
    }
}

/// What the machine did, as the cluster and the operator saw it.
#[derive(Default)]
pub struct Seen {
    /// `(slot, fee payer)` of every vote sent.
    pub votes: Vec<(Slot, Pubkey)>,
    /// Every Votor vote sent (Alpenglow), with the vote history stored when
    /// it left.
    pub votor_votes: Vec<(VotorVote, Option<VoteHistory>)>,
    pub blocks: Vec<SubmitBlock>,
    pub replies: Vec<(RequestId, Result<(), AdminError>)>,
    pub contacts: Vec<SignedContactInfo>,
    pub reopened: Vec<Stream>,
    pub exit: Option<Result<(), NodeExit>>,
    /// What became of each release of the fence.
    pub released: Vec<bool>,
}

pub struct Harness {
    pub machine: NodeMachine,
    pub storage: MemoryTowerStorage,
    pub vote_account: Pubkey,
    /// The vote account's node and authorized voter, in every bank.
    pub node: Pubkey,
    pub leader_slots: BTreeSet<Slot>,
    /// What `FetchSlotHistory` answers (none: the fetch fails).
    pub slot_history: Option<SlotHistory>,
    /// What `getVotorLastVote` answers for every identity (Alpenglow).
    pub votor_landed: Option<Slot>,
    /// Why `getVotorLastVote` fails, while it does.
    pub votor_rpc_down: Option<String>,
    pub now: Now,
    pub seen: Seen,
    /// Actions taken from the machine, not yet carried out.
    pub pending: VecDeque<Action>,
    next_request: u64,
    runtime: tokio::runtime::Runtime,
}

impl Harness {
    /// A machine running as `identity` with `voters`, on fresh storage.
    pub fn new(keys: &Keys, identity: &Keypair, voters: &[&Keypair]) -> Self {
        Self::with(
            keys,
            identity,
            voters,
            MemoryTowerStorage::new(),
            UnavailablePolicy::Exit,
        )
    }

    pub fn with(
        keys: &Keys,
        identity: &Keypair,
        voters: &[&Keypair],
        storage: MemoryTowerStorage,
        unavailable: UnavailablePolicy,
    ) -> Self {
        Self::started(keys, identity, voters, storage, unavailable, false)
    }

    /// [`Self::with`], choosing `--start-as-hot-spare`.
    pub fn started(
        keys: &Keys,
        identity: &Keypair,
        voters: &[&Keypair],
        storage: MemoryTowerStorage,
        unavailable: UnavailablePolicy,
        start_as_hot_spare: bool,
    ) -> Self {
        Self::build(
            keys,
            identity,
            voters,
            (storage, unavailable),
            start_as_hot_spare,
            Consensus::TowerBft,
        )
    }

    /// A machine on an Alpenglow cluster, on `storage`; it needs Votor's
    /// first block ([`Self::votor_genesis`]) before it settles its role.
    pub fn alpenglow(
        keys: &Keys,
        identity: &Keypair,
        voters: &[&Keypair],
        storage: MemoryTowerStorage,
        unavailable: UnavailablePolicy,
        require_vote_history: bool,
    ) -> Self {
        let alpenglow = Alpenglow {
            timing: crate::node::votor::Timing {
                timeout_ms: 1_000,
                block_ms: 400,
            },
            require_vote_history,
        };
        Self::build(
            keys,
            identity,
            voters,
            (storage, unavailable),
            false,
            Consensus::Alpenglow(alpenglow),
        )
    }

    fn build(
        keys: &Keys,
        identity: &Keypair,
        voters: &[&Keypair],
        (storage, unavailable): (MemoryTowerStorage, UnavailablePolicy),
        start_as_hot_spare: bool,
        consensus: Consensus,
    ) -> Self {
        let now = Now::from_micros(1_000_000_000);
        let machine = NodeMachine::new(
            MachineConfig {
                identity: identity.insecure_clone(),
                vote_account: keys.vote_account,
                authorized_voters: voters.iter().map(|k| k.insecure_clone()).collect(),
                instance: storage.instance().id,
                unavailable,
                catchup_slots: 8,
                start_slot: 0,
                rpc_addr: None,
                allow_tower_rebuild: false,
                start_as_hot_spare,
                consensus,
            },
            now,
        );
        Self {
            machine,
            storage,
            vote_account: keys.vote_account,
            node: keys.primary.pubkey(),
            leader_slots: BTreeSet::new(),
            slot_history: None,
            votor_landed: None,
            votor_rpc_down: None,
            now,
            seen: Seen::default(),
            pending: VecDeque::new(),
            next_request: 0,
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime"),
        }
    }

    /// A bank of the vote account's fork view: `slot` on `parent`, the
    /// cluster's tip at `slot`, its parent confirmed.
    pub fn bank(&self, slot: Slot, parent: Slot) -> BankNotification {
        let hash = |tag: u8| {
            let mut bytes = [tag; 32];
            bytes[..8].copy_from_slice(&slot.to_le_bytes());
            Hash::new_from_array(bytes)
        };
        BankNotification {
            slot,
            parent,
            hash: hash(1),
            block_id: hash(2),
            blockhash: hash(3),
            leader: Pubkey::new_from_array([9; 32]),
            block_height: slot,
            root: 0,
            confirmed: parent,
            tip: slot,
            vote_accounts: vec![VoteAccountState {
                vote_pubkey: self.vote_account,
                node_pubkey: self.node,
                authorized_voter: self.node,
                lockouts: vec![],
                root_slot: None,
                last_vote: None,
                credits: 0,
                activated_stake: 100,
            }],
        }
    }

    /// The id of the Votor block of `slot` (one block per slot).
    pub fn votor_block_id(slot: Slot) -> Hash {
        let mut bytes = [7; 32];
        bytes[..8].copy_from_slice(&slot.to_le_bytes());
        Hash::new_from_array(bytes)
    }

    /// Votor's block of `slot` on `parent`, as the stream brings it.
    pub fn votor_block_event(slot: Slot, parent: Slot) -> Event {
        Event::Votor(VotorNotification::Block(VotorBlock {
            slot,
            block_id: Self::votor_block_id(slot),
            parent_slot: parent,
            parent_block_id: Self::votor_block_id(parent),
            leader: Pubkey::new_from_array([9; 32]),
        }))
    }

    /// Votor's block of `slot` on `parent`, carried out to the end.
    pub fn votor_block(&mut self, slot: Slot, parent: Slot) {
        self.step(Self::votor_block_event(slot, parent));
        self.settle();
    }

    /// The cluster's notarization certificate of our block in `slot`,
    /// carried out to the end.
    pub fn votor_notarized(&mut self, slot: Slot) {
        let certificate = VotorCertificate {
            kind: CertificateKind::Notarization,
            slot,
            block_id: Some(Self::votor_block_id(slot)),
        };
        self.step(Event::Votor(VotorNotification::Certificate(certificate)));
        self.settle();
    }

    /// Votor's first block, and a bank at the cluster's tip: the node
    /// settles its role.
    pub fn votor_genesis(&mut self) {
        self.votor_block(0, 0);
        self.replay(0, 0);
    }

    /// Hands an event to the machine and takes the actions it produced.
    pub fn step(&mut self, event: Event) {
        self.now.unix_micros += 1_000;
        self.machine.handle(self.now, event);
        while let Some(action) = self.machine.poll_action() {
            self.pending.push_back(action);
        }
    }

    /// Carries out every pending action (and those they lead to).
    pub fn settle(&mut self) {
        while let Some(action) = self.pending.pop_front() {
            if let Some(event) = self.execute(action) {
                self.step(event);
            }
        }
    }

    /// A bank on `parent`, carried out to the end.
    pub fn replay(&mut self, slot: Slot, parent: Slot) {
        let bank = self.bank(slot, parent);
        self.step(Event::Bank(bank));
        self.settle();
    }

    /// Banks `from..=to`, each on the one before.
    pub fn replay_chain(&mut self, from: Slot, to: Slot) {
        for slot in from..=to {
            self.replay(slot, slot.saturating_sub(1));
        }
    }

    /// A bank on `parent` whose vote asks for a store: the store, not carried
    /// out (the test answers it).
    pub fn bank_until_store(
        &mut self,
        slot: Slot,
        parent: Slot,
    ) -> (
        OpId,
        towerlock_storage::FenceToken,
        towerlock_tower::SavedTower,
    ) {
        let bank = self.bank(slot, parent);
        self.step(Event::Bank(bank));
        match self.pending.pop_front() {
            Some(Action::Store { op, token, tower }) => (op, token, tower),
            other => panic!("expected a store, got {other:?}"),
        }
    }

    /// Answers the store `op` with `err`.
    pub fn fail_store(&mut self, op: OpId, err: StorageError) {
        self.step(Event::Stored {
            op,
            result: Err(err),
            elapsed: Default::default(),
        });
    }

    /// An admin request, carried out to the end; returns its reply.
    pub fn admin(&mut self, command: Command) -> Result<(), AdminError> {
        self.next_request += 1;
        let request = RequestId(self.next_request);
        self.step(Event::Admin { request, command });
        self.settle();
        let index = self
            .seen
            .replies
            .iter()
            .position(|(r, _)| *r == request)
            .expect("every admin request is answered");
        self.seen.replies.remove(index).1
    }

    /// Carries out one action as the driver would, recording what leaves
    /// the node; returns the answer to feed back.
    pub fn execute(&mut self, action: Action) -> Option<Event> {
        let storage = &self.storage;
        match action {
            Action::TakeOver { op, identity } => Some(Event::TakenOver {
                op,
                result: self.runtime.block_on(storage.takeover(&identity)),
            }),
            Action::CheckVoteHistory { op, identity } => Some(Event::VoteHistoryChecked {
                op,
                result: crate::node::executor::stored_reach(
                    self.runtime
                        .block_on(storage.load_vote_history_unfenced(&identity)),
                )
                .map(|covered| VoteHistoryCheck {
                    covered,
                    landed: self.votor_landed,
                })
                .map_err(VoteHistoryCheckFailed::Storage)
                .and_then(|check| match &self.votor_rpc_down {
                    Some(reason) => Err(VoteHistoryCheckFailed::Cluster(reason.clone())),
                    None => Ok(check),
                }),
            }),
            Action::StoreVoteHistory { op, token, history } => Some(Event::VoteHistoryStored {
                op,
                result: self
                    .runtime
                    .block_on(storage.store_vote_history(&token, &history)),
            }),
            Action::CheckTower { op, identity } => Some(Event::TowerChecked {
                op,
                result: crate::node::executor::stored_last_vote(
                    self.runtime.block_on(storage.load_unfenced(&identity)),
                ),
            }),
            Action::Renew { op, token } => Some(Event::Renewed {
                op,
                result: self.runtime.block_on(storage.renew(&token)),
            }),
            Action::Store { op, token, tower } => Some(Event::Stored {
                op,
                result: self.runtime.block_on(storage.store(&token, &tower)),
                elapsed: std::time::Duration::from_micros(300),
            }),
            Action::FenceLeaderSlot { op, token, slot } => Some(Event::LeaderFenced {
                op,
                result: self
                    .runtime
                    .block_on(storage.fence_leader_slot(&token, slot)),
            }),
            Action::Release { token } => {
                let released = self.runtime.block_on(storage.release(&token));
                self.seen
                    .released
                    .push(released.expect("memory storage answers"));
                None
            }
            action => self.deliver(action),
        }
    }

    fn deliver(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::SendVotorVote(message) => {
                assert!(message.verify(), "a vote leaves signed");
                let stored = self
                    .runtime
                    .block_on(self.storage.load_vote_history_unfenced(&message.identity))
                    .ok()
                    .map(|saved| saved.into_history());
                let slot = message.vote.slot();
                self.seen.votor_votes.push((message.vote, stored));
                Some(Event::VotorVoteSent {
                    slot,
                    accepted: true,
                })
            }
            Action::SendVote { slot, transaction } => {
                assert!(transaction.verify().is_ok(), "a vote leaves signed");
                let payer = transaction.message.account_keys[0];
                self.seen.votes.push((slot, payer));
                Some(Event::VoteSent {
                    slot,
                    accepted: true,
                })
            }
            Action::SubmitBlock(block) => {
                let slot = block.slot;
                self.seen.blocks.push(block);
                Some(Event::BlockSubmitted {
                    slot,
                    accepted: true,
                })
            }
            Action::FetchLeaderSchedule { identity, .. } => {
                let slots = if identity == self.node {
                    self.leader_slots.clone()
                } else {
                    BTreeSet::new()
                };
                Some(Event::LeaderSchedule(Ok(LeaderSchedule {
                    identity,
                    first_slot: 0,
                    end_slot: Slot::MAX,
                    slots,
                })))
            }
            Action::FetchSlotHistory => Some(Event::SlotHistory(
                self.slot_history
                    .clone()
                    .map(Box::new)
                    .ok_or_else(|| "no SlotHistory".to_string()),
            )),
            Action::PublishContact(contact) => {
                self.seen.contacts.push(contact);
                None
            }
            Action::Reopen(stream) => {
                self.seen.reopened.push(stream);
                None
            }
            Action::Reply { request, result } => {
                self.seen.replies.push((request, result));
                None
            }
            Action::Exit(result) => {
                self.seen.exit = Some(result);
                None
            }
            action => self.execute(action),
        }
    }

    /// Another process of the same storage, e.g. the secondary.
    pub fn other_instance(&self) -> MemoryTowerStorage {
        self.storage.new_instance()
    }

    pub fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// The answer storage gives while it does not answer.
    pub fn unavailable() -> StorageError {
        StorageError::Unavailable {
            reason: "no answer within 2s".into(),
        }
    }

    pub fn voted_slots(&self) -> Vec<Slot> {
        self.seen.votes.iter().map(|(slot, _)| *slot).collect()
    }
}
