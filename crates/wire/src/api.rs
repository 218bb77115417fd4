//! What validators exchange with the cluster besides Solana's own JSON-RPC:
//! the streaming notifications, block submission and gossip contact infos.
//!
//! Shared by the cluster (server) and its clients, so the protocol lives in
//! one place. Every type serializes as camelCase JSON, like Solana's RPC;
//! pubkeys, hashes and signatures as base-58 strings.
//!
//! # Transport
//!
//! One HTTP port serves everything:
//!
//! - `POST /` — JSON-RPC 2.0 (Solana's methods, plus [`SUBMIT_BLOCK`] and
//!   [`PUBLISH_CONTACT_INFO`], which take one positional parameter each).
//! - `GET /` with a websocket upgrade — JSON-RPC subscriptions: Solana's
//!   `slotSubscribe`, plus [`BANK_SUBSCRIBE`] and [`GOSSIP_SUBSCRIBE`]. A
//!   subscription answers `{"result": <id>}` and then sends
//!   `{"jsonrpc":"2.0","method":"<kind>Notification","params":{"result":…,"subscription":<id>}}`.
//!   `bankSubscribe` first replays every live bank (the root and all its
//!   descendants, in slot order), then streams each bank as it freezes.
//!   `gossipSubscribe` first replays the table, then pushes every accepted
//!   contact info at once. `*Unsubscribe [id]` answers `true`.
//!   A subscriber that falls more than 4096 notifications behind is
//!   disconnected (it would miss banks); it reconnects and gets a new replay.
//! - `GET /health` — `ok`.
//!
//! Unlike agave, the websocket shares the RPC port (agave uses port + 1).
//!
//! # Clock and forks
//!
//! The slot is the clock: a bank freezes at the end of its slot. Our
//! leaders' slots get their block from [`SUBMIT_BLOCK`] (queued until the slot
//! ends; nothing submitted → the slot is skipped); see
//! `towerlock_cluster::core::cluster` for the fork model. After a restart the cluster
//! resumes at the slot it stopped at, whatever the wall clock says.
//!
//! # Votes
//!
//! Votes are real Solana transactions sent with `sendTransaction`
//! (base64 or base58; a TowerSync vote instruction signed by the node identity
//! as fee payer and the authorized voter). The config object may carry one
//! extra key, `"instance"` (see [`SendTransactionConfig`]), naming the sending
//! instance so that the audit trail can tell a primary from a secondary that
//! share one identity; agave ignores unknown keys, so a validator may always
//! send it.

use serde::{Deserialize, Serialize};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;

/// The agave version the RPC claims to be (shapes follow it).
pub const SOLANA_CORE_VERSION: &str = "2.2.16";
/// The `feature-set` number `getVersion` reports.
pub const FEATURE_SET: u32 = 3_294_202_862;

/// JSON-RPC method: submit a block for a leader slot; param: [`SubmitBlock`];
/// result: [`SubmitBlockResult`].
pub const SUBMIT_BLOCK: &str = "submitBlock";
/// JSON-RPC method: publish a contact info; param: [`SignedContactInfo`];
/// result: `true` when the hub took it (also for a repeat).
pub const PUBLISH_CONTACT_INFO: &str = "publishContactInfo";
/// Websocket: frozen banks ([`BankNotification`], method `bankNotification`).
pub const BANK_SUBSCRIBE: &str = "bankSubscribe";
/// Websocket: gossip ([`SignedContactInfo`], method `gossipNotification`).
pub const GOSSIP_SUBSCRIBE: &str = "gossipSubscribe";
/// Websocket: Solana's slot notifications ([`SlotNotification`]).
pub const SLOT_SUBSCRIBE: &str = "slotSubscribe";

/// Extra key in `sendTransaction`'s config object (besides Solana's own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendTransactionConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(default)]
    pub skip_preflight: bool,
    /// The sending validator instance's id (free text, at most 64 bytes),
    /// recorded in the audit trail's vote line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// Solana's `slotNotification` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotNotification {
    pub parent: u64,
    pub root: u64,
    pub slot: u64,
}

/// A bank froze: one block of some fork, with the cluster's view at that
/// moment and the landed state of our vote accounts in this bank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BankNotification {
    pub slot: u64,
    /// The parent bank's slot (`0` for the genesis bank, whose parent is itself).
    pub parent: u64,
    /// Bank hash: what a TowerSync's `hash` must name.
    #[serde(with = "crate::b58")]
    pub hash: Hash,
    /// Block id: what a TowerSync's `block_id` should name.
    #[serde(with = "crate::b58")]
    pub block_id: Hash,
    /// Blockhash usable as a transaction's recent blockhash.
    #[serde(with = "crate::b58")]
    pub blockhash: Hash,
    /// The leader's identity.
    #[serde(with = "crate::b58")]
    pub leader: Pubkey,
    pub block_height: u64,
    /// The cluster's root when this bank froze.
    pub root: u64,
    /// The cluster's highest optimistically confirmed slot (≥ 2/3 stake voted).
    pub confirmed: u64,
    /// The head of the fork the cluster builds on (the heaviest fork).
    pub tip: u64,
    /// Our vote accounts as they are in this bank.
    pub vote_accounts: Vec<VoteAccountState>,
}

/// A vote account's landed state in one bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoteAccountState {
    #[serde(with = "crate::b58")]
    pub vote_pubkey: Pubkey,
    #[serde(with = "crate::b58")]
    pub node_pubkey: Pubkey,
    /// The authorized voter for the bank's epoch.
    #[serde(with = "crate::b58")]
    pub authorized_voter: Pubkey,
    /// `[slot, confirmation_count]`, oldest first.
    pub lockouts: Vec<(u64, u32)>,
    pub root_slot: Option<u64>,
    pub last_vote: Option<u64>,
    /// Cumulative credits (the last `epochCredits` entry).
    pub credits: u64,
    pub activated_stake: u64,
}

/// The addresses a node advertises (`"ip:port"`), all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactAddresses {
    pub gossip: Option<String>,
    pub tpu: Option<String>,
    pub tpu_vote: Option<String>,
    pub rpc: Option<String>,
    pub pubsub: Option<String>,
}

/// A node's contact info, as gossip carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactInfo {
    /// Node identity.
    #[serde(with = "crate::b58")]
    pub pubkey: Pubkey,
    /// Microseconds since the Unix epoch at which this identity started on
    /// this instance; the newer outset wins a duplicate-instance contest.
    pub outset: u64,
    /// Random instance id of the sending process.
    pub instance: String,
    pub version: String,
    pub addresses: ContactAddresses,
}

impl ContactInfo {
    /// The bytes the identity signs (the pubkey as its base-58 text).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = b"towerlock-contact-info\0".to_vec();
        bytes.extend(
            bincode::serialize(&(
                &self.pubkey.to_string(),
                self.outset,
                &self.instance,
                &self.version,
                &self.addresses.gossip,
                &self.addresses.tpu,
                &self.addresses.tpu_vote,
                &self.addresses.rpc,
                &self.addresses.pubsub,
            ))
            .expect("strings always serialize"),
        );
        bytes
    }

    /// Signs with the identity (whose pubkey must be `self.pubkey`).
    pub fn sign(self, identity: &Keypair) -> SignedContactInfo {
        let signature = identity.sign_message(&self.signing_bytes());
        SignedContactInfo {
            info: self,
            signature,
        }
    }
}

/// A contact info with the identity's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedContactInfo {
    #[serde(flatten)]
    pub info: ContactInfo,
    #[serde(with = "crate::b58")]
    pub signature: Signature,
}

impl SignedContactInfo {
    /// The identity, if the signature verifies.
    pub fn verify(&self) -> Option<Pubkey> {
        let pubkey = self.info.pubkey;
        self.signature
            .verify(pubkey.as_ref(), &self.info.signing_bytes())
            .then_some(pubkey)
    }
}

/// A block for one of the leader's slots, signed by the leader identity.
///
/// The cluster computes the bank from it: `hash` of the new bank derives from
/// the parent's bank hash, the slot and `block_id`. Re-sending the same block
/// is harmless; a different block (other parent or block id) for a slot that
/// already has one is a duplicate block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitBlock {
    pub slot: u64,
    /// The parent bank's slot, chosen by the leader (any live bank < `slot`).
    pub parent: u64,
    /// The block's content id (32 bytes), e.g. a hash of its entries.
    #[serde(with = "crate::b58")]
    pub block_id: Hash,
    /// Leader identity.
    #[serde(with = "crate::b58")]
    pub leader: Pubkey,
    /// The producing instance's id (free text, at most 64 bytes).
    pub instance: String,
    /// Identity's signature over [`SubmitBlock::signing_bytes`].
    #[serde(with = "crate::b58")]
    pub signature: Signature,
}

impl SubmitBlock {
    /// `"towerlock-block\0" ‖ slot u64 LE ‖ parent u64 LE ‖ block_id[32] ‖ instance`.
    pub fn signing_bytes(slot: u64, parent: u64, block_id: &Hash, instance: &str) -> Vec<u8> {
        let mut bytes = b"towerlock-block\0".to_vec();
        bytes.extend(slot.to_le_bytes());
        bytes.extend(parent.to_le_bytes());
        bytes.extend(block_id.to_bytes());
        bytes.extend(instance.as_bytes());
        bytes
    }

    /// Builds and signs a block submission.
    pub fn new_signed(
        leader: &Keypair,
        slot: u64,
        parent: u64,
        block_id: Hash,
        instance: &str,
    ) -> Self {
        let signature =
            leader.sign_message(&Self::signing_bytes(slot, parent, &block_id, instance));
        Self {
            slot,
            parent,
            block_id,
            leader: leader.pubkey(),
            instance: instance.to_string(),
            signature,
        }
    }

    /// The leader and block id, if the signature verifies.
    pub fn verify(&self) -> Option<(Pubkey, Hash)> {
        let bytes = Self::signing_bytes(self.slot, self.parent, &self.block_id, &self.instance);
        self.signature
            .verify(self.leader.as_ref(), &bytes)
            .then_some((self.leader, self.block_id))
    }
}

/// The answer to [`SUBMIT_BLOCK`]: the block is queued for its slot; it
/// becomes a bank when the slot ends (watch `bankSubscribe`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitBlockResult {
    pub slot: u64,
    /// True when another, different block was already submitted for the slot.
    pub duplicate: bool,
}
