//! Shared helpers: a cluster made by `genesis::init` in a temporary folder,
//! driven without IO.
#![allow(dead_code)]

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use towerlock_audit::{Event, VoteResult};
use towerlock_cluster::core::{Cluster, Outputs};
use towerlock_cluster::genesis::{self, InitOptions, ValidatorKeys};
use towerlock_wire::vote::{self, Transaction};

/// A JSON-RPC response's result; panics on an error.
pub fn result(answer: &serde_json::Value) -> &serde_json::Value {
    assert!(answer.get("error").is_none(), "{answer}");
    &answer["result"]
}

pub struct Fixture {
    pub cluster: Cluster,
    pub keys: ValidatorKeys,
    pub events: Vec<Event>,
    pub now_ms: u64,
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(options: InitOptions) -> Self {
        Self::with_consensus(options, genesis::Consensus::Tower)
    }

    /// A cluster running `consensus`.
    pub fn with_consensus(options: InitOptions, consensus: genesis::Consensus) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (genesis, mut keys) =
            genesis::init_with(dir.path(), &options, consensus, 1_000).unwrap();
        let (cluster, outputs) = Cluster::new(genesis, 1_000);
        let mut fixture = Self {
            cluster,
            keys: keys.remove(0),
            events: vec![],
            now_ms: 1_000,
            _dir: dir,
        };
        fixture.absorb(outputs);
        fixture
    }

    pub fn default_options() -> InitOptions {
        InitOptions {
            slots_per_epoch: 256,
            fork_rate: 0.0,
            synthetic: 10,
            ..InitOptions::default()
        }
    }

    /// A cluster where one vote of ours landed and was finalized; returns
    /// the vote and the slot of the block it landed in.
    pub fn with_landed_vote() -> (Self, Transaction, u64) {
        let mut f = Self::new(Self::default_options());
        f.step(40);
        let identity = f.keys.identity.insecure_clone();
        let tip = f.cluster.tip();
        let vote = f.vote(&identity, &identity, &[(tip, 1)], None);
        assert_eq!(f.send(&vote), VoteResult::Accepted);
        let landed = f.step_until_new_tip(tip);
        f.step(80);
        assert!(f.cluster.root() > landed, "finalized");
        (f, vote, landed)
    }

    /// One JSON-RPC call through the cluster's RPC; the whole response.
    pub fn rpc(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let body =
            serde_json::json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}).to_string();
        let (response, outputs) =
            towerlock_cluster::rpc::handle_body(&mut self.cluster, body.as_bytes(), self.now_ms);
        self.absorb(outputs);
        response
    }

    pub fn absorb(&mut self, outputs: Outputs) {
        self.events.extend(outputs.events);
    }

    /// Ends `n` slots.
    pub fn step(&mut self, n: u64) {
        for _ in 0..n {
            self.now_ms += 20;
            let outputs = self.cluster.end_slot(self.now_ms);
            self.absorb(outputs);
        }
    }

    /// Steps until the root reaches `slot`.
    pub fn step_until_root(&mut self, slot: u64) {
        for _ in 0..10 * slot + 1000 {
            if self.cluster.root() >= slot {
                return;
            }
            self.step(1);
        }
        panic!("the root never reached {slot}");
    }

    /// Steps until the tip is a bank of a synthetic leader newer than `after`.
    pub fn step_until_new_tip(&mut self, after: u64) -> u64 {
        for _ in 0..1000 {
            self.step(1);
            if self.cluster.tip() > after {
                return self.cluster.tip();
            }
        }
        panic!("the tip never moved past {after}");
    }

    pub fn vote_account(&self) -> Pubkey {
        self.keys.vote_account.pubkey()
    }

    /// A vote signed by `identity` (fee payer) and `voter`, naming the hash of
    /// the last slot's bank (or `hash` when given).
    pub fn vote(
        &self,
        identity: &Keypair,
        voter: &Keypair,
        lockouts: &[(u64, u32)],
        root: Option<u64>,
    ) -> Transaction {
        let last = lockouts.last().unwrap().0;
        let (hash, block_id) = match self.cluster.bank(last) {
            Some(bank) => (bank.hash, bank.block_id),
            None => (
                Hash::new_from_array(Pubkey::new_unique().to_bytes()),
                Hash::new_from_array(Pubkey::new_unique().to_bytes()),
            ),
        };
        let tower_sync = vote::tower_sync(lockouts, root, hash, block_id);
        let blockhash = self.cluster.bank(self.cluster.tip()).unwrap().blockhash;
        vote::vote_transaction(identity, voter, &self.vote_account(), tower_sync, blockhash)
    }

    /// Sends a vote by the staked identity; returns the recorded verdict.
    pub fn send(&mut self, tx: &Transaction) -> VoteResult {
        let (verdict, outputs) =
            self.cluster
                .receive_vote(tx, Some("test-instance".into()), self.now_ms);
        self.absorb(outputs);
        let recorded = self.last_vote_event().result.clone();
        match verdict.result {
            Ok(()) => assert_eq!(recorded, VoteResult::Accepted),
            Err(e) => assert_eq!(recorded, VoteResult::Rejected(e.name())),
        }
        recorded
    }

    pub fn last_vote_event(&self) -> &towerlock_audit::event::VoteEvent {
        self.events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Vote(v) => Some(v),
                _ => None,
            })
            .expect("a vote line")
    }

    /// Our vote account's last landed vote in the tip bank.
    pub fn landed_last_vote(&self) -> Option<u64> {
        let bank = self.cluster.bank(self.cluster.tip()).unwrap();
        bank.vote_accounts[&self.vote_account()]
            .votes
            .back()
            .map(|v| v.slot())
    }
}
