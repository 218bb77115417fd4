//! Alpenglow's Votor (SIMD-0326) between validators and a cluster started
//! with `--consensus alpenglow`: the signed vote message validators send
//! with [`SEND_VOTOR_VOTE`], and what [`VOTOR_SUBSCRIBE`] streams to them.
//!
//! # The vote
//!
//! [`VotorVote`] maps one to one onto agave's vote payload
//! (`agave_votor_messages::wire::VotePayloadToSign`, `towerlock_tower`'s
//! `VotePayload`): the same five kinds, the same wire tags (`notarize` 1,
//! `finalize` 2, `skip` 3, `notarize-fallback` 4, `skip-fallback` 5), the
//! same names ([`VotorVote::kind`]). agave's `shred_version` is left out: a
//! local cluster has one shred version, and agave stores 0 in its history.
//! Agave's sixth kind, `genesis`, has no use on a cluster that starts in
//! Alpenglow and is not sent.
//!
//! # The signed message
//!
//! [`VotorVoteMessage`] is the vote, the voter's identity and vote account,
//! the sending instance's id (free text, at most 64 bytes, as
//! `sendTransaction`'s extra `instance` key: the audit trail tells a primary
//! from a secondary that share one identity) and an ed25519 signature by the
//! identity over these canonical bytes ([`VotorVoteMessage::signing_bytes`]):
//!
//! ```text
//! "towerlock-votor-vote\0"          21 bytes, domain separation
//! tag                               u8: 1 notarize, 2 finalize, 3 skip,
//!                                       4 notarize-fallback, 5 skip-fallback
//! slot                              u64 little-endian
//! block_id                          32 bytes, notarize and notarize-fallback only
//! identity                          32 bytes
//! vote_account                      32 bytes
//! instance                          its UTF-8 bytes, to the end
//! ```
//!
//! The layout is fixed by the tag, so no two messages share their bytes.
//! In JSON (camelCase, keys and signatures base-58):
//!
//! ```json
//! {"vote":{"kind":"notarize","slot":12,"blockId":"<b58>"},
//!  "identity":"<b58>","voteAccount":"<b58>","instance":"a1b2","signature":"<b58>"}
//! ```
//!
//! # The stream
//!
//! `votorSubscribe` (no params) answers the subscription id, then sends
//! `votorNotification`s whose `result` is a [`VotorNotification`]: first a
//! replay (every block from the finalized one up, their certificates, the
//! finalized block, the current slot), then each new block, certificate and
//! finalization as the cluster sees it, and the current slot each time the
//! clock moves (what a validator measures its timeouts against).

use serde::{Deserialize, Serialize};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;

/// JSON-RPC method: one signed Votor vote; param: [`VotorVoteMessage`];
/// result: [`VotorVoteResult`] (`{"landed":true}`), or an error saying why
/// the cluster did not count it.
pub const SEND_VOTOR_VOTE: &str = "sendVotorVote";
/// JSON-RPC method: the newest slot in which a Votor vote of an identity
/// landed; param: the identity (base-58); result: [`VotorLastVote`]. A node
/// taking an identity over refuses a vote history older than this.
pub const GET_VOTOR_LAST_VOTE: &str = "getVotorLastVote";
/// Websocket: Votor's blocks, certificates, finalizations and the current
/// slot ([`VotorNotification`], method `votorNotification`).
pub const VOTOR_SUBSCRIBE: &str = "votorSubscribe";
/// The longest instance id a message may carry, in bytes.
pub const MAX_INSTANCE_LEN: usize = 64;

/// Domain separation of the signed bytes.
const SIGNING_DOMAIN: &[u8] = b"towerlock-votor-vote\0";

/// One Votor vote (agave's vote payload without the shred version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum VotorVote {
    /// The block is valid and its parent ready: notarize it.
    #[serde(rename = "notarize", rename_all = "camelCase")]
    Notarize {
        slot: u64,
        #[serde(with = "crate::b58")]
        block_id: Hash,
    },
    /// The slot's block was notarized as this voter notarized it.
    #[serde(rename = "finalize")]
    Finalize { slot: u64 },
    /// No valid block in time.
    #[serde(rename = "skip")]
    Skip { slot: u64 },
    /// After a skip or another notarize: this block may still be notarized
    /// (SafeToNotar).
    #[serde(rename = "notarize-fallback", rename_all = "camelCase")]
    NotarizeFallback {
        slot: u64,
        #[serde(with = "crate::b58")]
        block_id: Hash,
    },
    /// After a notarize: the slot may still be skipped (SafeToSkip).
    #[serde(rename = "skip-fallback")]
    SkipFallback { slot: u64 },
}

impl VotorVote {
    /// The slot voted in.
    pub fn slot(&self) -> u64 {
        match *self {
            Self::Notarize { slot, .. }
            | Self::Finalize { slot }
            | Self::Skip { slot }
            | Self::NotarizeFallback { slot, .. }
            | Self::SkipFallback { slot } => slot,
        }
    }

    /// The block voted for (notarize and notarize-fallback).
    pub fn block_id(&self) -> Option<Hash> {
        match *self {
            Self::Notarize { block_id, .. } | Self::NotarizeFallback { block_id, .. } => {
                Some(block_id)
            }
            _ => None,
        }
    }

    /// agave's name of the kind (`VotePayload::kind`), also the JSON `kind`
    /// and the audit trail's.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Notarize { .. } => "notarize",
            Self::Finalize { .. } => "finalize",
            Self::Skip { .. } => "skip",
            Self::NotarizeFallback { .. } => "notarize-fallback",
            Self::SkipFallback { .. } => "skip-fallback",
        }
    }

    /// agave's wire tag of the kind.
    pub fn tag(&self) -> u8 {
        match self {
            Self::Notarize { .. } => 1,
            Self::Finalize { .. } => 2,
            Self::Skip { .. } => 3,
            Self::NotarizeFallback { .. } => 4,
            Self::SkipFallback { .. } => 5,
        }
    }
}

/// A Votor vote signed by the voter's identity (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VotorVoteMessage {
    pub vote: VotorVote,
    /// The voter's identity: the staked node, and the signer.
    #[serde(with = "crate::b58")]
    pub identity: Pubkey,
    /// The identity's vote account.
    #[serde(with = "crate::b58")]
    pub vote_account: Pubkey,
    /// The sending instance's id (at most [`MAX_INSTANCE_LEN`] bytes).
    pub instance: String,
    /// The identity's signature over [`VotorVoteMessage::signing_bytes`].
    #[serde(with = "crate::b58")]
    pub signature: Signature,
}

impl VotorVoteMessage {
    /// The canonical bytes the identity signs (layout in the module doc).
    pub fn signing_bytes(
        vote: &VotorVote,
        identity: &Pubkey,
        vote_account: &Pubkey,
        instance: &str,
    ) -> Vec<u8> {
        let mut bytes = SIGNING_DOMAIN.to_vec();
        bytes.push(vote.tag());
        bytes.extend(vote.slot().to_le_bytes());
        if let Some(block_id) = vote.block_id() {
            bytes.extend(block_id.to_bytes());
        }
        bytes.extend(identity.to_bytes());
        bytes.extend(vote_account.to_bytes());
        bytes.extend(instance.as_bytes());
        bytes
    }

    /// Builds and signs a vote message with the identity.
    pub fn new_signed(
        identity: &Keypair,
        vote_account: Pubkey,
        vote: VotorVote,
        instance: &str,
    ) -> Self {
        let pubkey = identity.pubkey();
        let signature = identity.sign_message(&Self::signing_bytes(
            &vote,
            &pubkey,
            &vote_account,
            instance,
        ));
        Self {
            vote,
            identity: pubkey,
            vote_account,
            instance: instance.to_string(),
            signature,
        }
    }

    /// Whether the signature is the identity's over this message.
    pub fn verify(&self) -> bool {
        let bytes = Self::signing_bytes(
            &self.vote,
            &self.identity,
            &self.vote_account,
            &self.instance,
        );
        self.signature.verify(self.identity.as_ref(), &bytes)
    }
}

/// The answer to [`SEND_VOTOR_VOTE`]: the cluster counted the vote toward
/// certificates (a repeat of a counted vote lands again, counted once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VotorVoteResult {
    pub landed: bool,
}

/// The answer to [`GET_VOTOR_LAST_VOTE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VotorLastVote {
    /// `None`: no vote of the identity landed (or the cluster runs TowerBFT).
    pub slot: Option<u64>,
}

/// The certificates of Votor, each at its threshold of all stake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CertificateKind {
    /// ≥ 60 % notarize for one block.
    Notarization,
    /// ≥ 60 % notarize or notarize-fallback for one block.
    NotarizeFallback,
    /// ≥ 60 % skip or skip-fallback for the slot.
    Skip,
    /// ≥ 80 % notarize for one block: the block is finalized at once.
    FastFinalization,
    /// ≥ 60 % finalize for the slot: finalized with the slot's notarization.
    Finalization,
}

impl CertificateKind {
    /// Whether a certificate of this kind names a block.
    pub fn names_block(&self) -> bool {
        !matches!(self, Self::Skip | Self::Finalization)
    }

    /// The name in JSON and in the audit trail.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Notarization => "notarization",
            Self::NotarizeFallback => "notarizeFallback",
            Self::Skip => "skip",
            Self::FastFinalization => "fastFinalization",
            Self::Finalization => "finalization",
        }
    }
}

/// A block as Votor's stream shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VotorBlock {
    pub slot: u64,
    #[serde(with = "crate::b58")]
    pub block_id: Hash,
    pub parent_slot: u64,
    #[serde(with = "crate::b58")]
    pub parent_block_id: Hash,
    /// The leader's identity.
    #[serde(with = "crate::b58")]
    pub leader: Pubkey,
}

/// A certificate the cluster formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VotorCertificate {
    pub kind: CertificateKind,
    pub slot: u64,
    /// The block, for the kinds that name one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_b58"
    )]
    pub block_id: Option<Hash>,
}

/// One `votorNotification` result, tagged by `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum VotorNotification {
    /// A leader's block arrived (`{"type":"block","slot",…}`).
    Block(VotorBlock),
    /// A certificate formed (`{"type":"certificate","kind","slot","blockId"?}`).
    Certificate(VotorCertificate),
    /// A block was finalized, with its ancestors
    /// (`{"type":"finalized","slot","blockId","fast"}`).
    #[serde(rename_all = "camelCase")]
    Finalized {
        slot: u64,
        #[serde(with = "crate::b58")]
        block_id: Hash,
        /// By a fast-finalization certificate (else finalization + notarization).
        fast: bool,
    },
    /// The slot the cluster's clock is in now (`{"type":"slot","slot"}`).
    Slot { slot: u64 },
}

/// Serde for an optional hash as a base-58 string or absent.
mod optional_b58 {
    use serde::{Deserialize, Deserializer, Serializer};
    use solana_hash::Hash;

    pub fn serialize<S: Serializer>(
        value: &Option<Hash>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(hash) => serializer.collect_str(hash),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Hash>, D::Error> {
        use serde::de::Error as _;
        Option::<String>::deserialize(deserializer)?
            .map(|text| {
                text.parse().map_err(|e| {
                    D::Error::custom(format_args!("{text:?} is not valid base-58 here: {e}"))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> Hash {
        Hash::new_from_array([n; 32])
    }

    #[test]
    fn a_signed_message_verifies_and_any_change_breaks_it() {
        let identity = Keypair::new_from_array([7; 32]);
        let vote_account = Pubkey::new_from_array([8; 32]);
        let vote = VotorVote::Notarize {
            slot: 12,
            block_id: hash(3),
        };
        let message = VotorVoteMessage::new_signed(&identity, vote_account, vote, "a1");
        assert!(message.verify());
        let tampered = [
            VotorVoteMessage {
                vote: VotorVote::NotarizeFallback {
                    slot: 12,
                    block_id: hash(3),
                },
                ..message.clone()
            },
            VotorVoteMessage {
                vote: VotorVote::Notarize {
                    slot: 13,
                    block_id: hash(3),
                },
                ..message.clone()
            },
            VotorVoteMessage {
                vote: VotorVote::Notarize {
                    slot: 12,
                    block_id: hash(4),
                },
                ..message.clone()
            },
            VotorVoteMessage {
                vote_account: Pubkey::new_from_array([9; 32]),
                ..message.clone()
            },
            VotorVoteMessage {
                instance: "a2".into(),
                ..message.clone()
            },
            VotorVoteMessage {
                identity: Pubkey::new_from_array([8; 32]),
                ..message.clone()
            },
        ];
        for bad in tampered {
            assert!(!bad.verify(), "{bad:?}");
        }
    }

    #[test]
    fn the_signed_bytes_follow_the_documented_layout() {
        let identity = Pubkey::new_from_array([1; 32]);
        let vote_account = Pubkey::new_from_array([2; 32]);
        let skip = VotorVoteMessage::signing_bytes(
            &VotorVote::Skip { slot: 5 },
            &identity,
            &vote_account,
            "x",
        );
        let mut expected = b"towerlock-votor-vote\0".to_vec();
        expected.push(3);
        expected.extend(5u64.to_le_bytes());
        expected.extend([1; 32]);
        expected.extend([2; 32]);
        expected.push(b'x');
        assert_eq!(skip, expected);
        let notar = VotorVoteMessage::signing_bytes(
            &VotorVote::NotarizeFallback {
                slot: 5,
                block_id: hash(9),
            },
            &identity,
            &vote_account,
            "",
        );
        assert_eq!(notar[21], 4);
        assert_eq!(&notar[30..62], &[9; 32]);
        assert_eq!(notar.len(), 21 + 1 + 8 + 32 + 32 + 32);
    }
}
