//! A test harness for the Votor machine: the storage is the in-memory
//! backend (the etcd fence semantics), the history is signed with the
//! identity's keypair as the caller would, time is a number, and each store
//! is carried out when the test says so.

use std::{
    collections::VecDeque,
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_storage::{
    FenceToken, MemoryTowerStorage, StorageError, TowerStorage, VoteHistoryStored,
};
use towerlock_tower::SavedVoteHistory;

use super::*;

/// The protocol delays of every test.
pub const TIMING: Timing = Timing {
    timeout_ms: 1_000,
    block_ms: 400,
};

/// The time every harness starts at.
pub const START_MS: u64 = 1_000_000;

/// Runs a call of the memory backend, which never waits.
pub fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the memory backend answers at once"),
    }
}

/// A block id named by a small number.
pub fn id(n: u8) -> Hash {
    Hash::new_from_array([n; 32])
}

/// The block of `slot` named `n`.
pub fn block(slot: Slot, n: u8) -> Block {
    Block {
        slot,
        block_id: id(n),
    }
}

/// The chain's first block: every harness starts from it.
pub fn genesis() -> Block {
    block(0, 0)
}

/// A store the machine asked for.
#[derive(Debug)]
pub struct StoreRequest {
    pub op: OpId,
    pub history: VoteHistory,
}

pub struct Harness {
    pub machine: VotorMachine,
    pub keypair: Keypair,
    pub storage: MemoryTowerStorage,
    pub token: FenceToken,
    pub now: u64,
    /// Every vote sent, in order.
    pub sent: Vec<VotePayload>,
    pub exit: Option<VotorExit>,
    /// Stores asked for and not yet answered.
    pub stores: VecDeque<StoreRequest>,
    /// The history of the last store answered `Ok`.
    pub acknowledged: Option<VoteHistory>,
}

impl Harness {
    /// A machine holding the fence of a fresh identity, its history not yet
    /// loaded.
    pub fn new(unavailable: UnavailablePolicy) -> Self {
        let keypair = Keypair::new();
        let storage = MemoryTowerStorage::new();
        Self::on(keypair, storage, unavailable)
    }

    /// A machine for `keypair` on `storage` (a failover: a new instance),
    /// holding the fence, its history not yet loaded.
    pub fn on(
        keypair: Keypair,
        storage: MemoryTowerStorage,
        unavailable: UnavailablePolicy,
    ) -> Self {
        let token = ready(storage.takeover(&keypair.pubkey()))
            .expect("takeover")
            .token;
        let machine = VotorMachine::new(VotorConfig {
            identity: keypair.pubkey(),
            genesis: genesis(),
            timing: TIMING,
            unavailable,
        });
        Self {
            machine,
            keypair,
            storage,
            token,
            now: START_MS,
            sent: Vec::new(),
            exit: None,
            stores: VecDeque::new(),
            acknowledged: None,
        }
    }

    /// [`Self::new`] with the exit policy, loaded with no history.
    pub fn voting() -> Self {
        let mut h = Self::new(UnavailablePolicy::Exit);
        h.handle(Event::Loaded {
            history: None,
            landed: None,
        });
        h
    }

    pub fn handle(&mut self, event: Event) {
        self.machine.handle(self.now, event);
        while let Some(action) = self.machine.poll_action() {
            match action {
                Action::StoreVoteHistory { op, history } => {
                    assert!(self.stores.is_empty(), "one store in flight at a time");
                    self.stores.push_back(StoreRequest { op, history });
                }
                Action::SendVote(vote) => {
                    assert_eq!(vote.identity(), self.keypair.pubkey());
                    self.sent.push(*vote.payload());
                }
                Action::Exit(reason) => {
                    assert!(self.exit.is_none(), "one exit");
                    self.exit = Some(reason);
                }
            }
        }
    }

    pub fn block(&mut self, slot: Slot, n: u8, parent: Option<Block>) {
        self.handle(Event::Block {
            slot,
            block_id: id(n),
            parent,
        });
    }

    pub fn certificate(&mut self, certificate: Certificate) {
        self.handle(Event::Certificate(certificate));
    }

    /// Time passes to `START_MS + at_ms`.
    pub fn tick_at(&mut self, at_ms: u64) {
        self.now = START_MS + at_ms;
        self.handle(Event::Tick);
    }

    /// Signs and stores `history` under this harness's fence.
    pub fn store(&self, history: &VoteHistory) -> Result<VoteHistoryStored, StorageError> {
        let saved = SavedVoteHistory::new(history, &self.keypair).expect("our own history");
        ready(self.storage.store_vote_history(&self.token, &saved))
    }

    /// The oldest store asked for, carried out, its answer not yet given.
    pub fn take_store(&mut self) -> StoreRequest {
        self.stores.pop_front().expect("a store was asked for")
    }

    /// Carries out the store in flight and answers it.
    pub fn store_ok(&mut self) {
        let request = self.take_store();
        let result = self.store(&request.history);
        if result.is_ok() {
            self.acknowledged = Some(request.history);
        }
        self.answer(request.op, result);
    }

    pub fn answer(&mut self, op: OpId, result: Result<VoteHistoryStored, StorageError>) {
        self.handle(Event::Stored { op, result });
    }

    /// The stored history, as a takeover reads it.
    pub fn stored_history(&self) -> Option<VoteHistory> {
        match ready(
            self.storage
                .load_vote_history_unfenced(&self.keypair.pubkey()),
        ) {
            Ok(saved) => Some(saved.into_history()),
            Err(StorageError::VoteHistoryNotFound { .. }) => None,
            Err(err) => panic!("unreadable vote history: {err}"),
        }
    }
}

/// An unknown outcome.
pub fn unavailable() -> StorageError {
    StorageError::Unavailable {
        reason: "no answer in time".into(),
    }
}

pub fn notar(slot: Slot, n: u8) -> VotePayload {
    VotePayload::Notar {
        block: block(slot, n),
        shred_version: 0,
    }
}

pub fn skip(slot: Slot) -> VotePayload {
    VotePayload::Skip {
        slot,
        shred_version: 0,
    }
}

pub fn finalize(slot: Slot) -> VotePayload {
    VotePayload::Finalize {
        slot,
        shred_version: 0,
    }
}
