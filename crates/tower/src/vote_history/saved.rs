//! A vote history signed by its node, as agave writes
//! `vote_history-<pubkey>.bin` (agave-votor 4.x, `vote_history_storage.rs`).
//!
//! ```text
//! SavedVoteHistoryVersions::Current(SavedVoteHistory { signature, data })
//!   u32 tag 0                 (wincode's default enum tag, variant index)
//!   64 bytes signature        (ed25519 by the identity over `data`)
//!   u64 length, then `data`   (the wincode encoding of the VoteHistory)
//! ```
//!
//! `SavedVoteHistory` also has a `node_pubkey` field, `#[wincode(skip)]`: it is
//! not in the bytes. The same bytes are the etcd value.

use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;

use super::{
    codec::{Reader, Writer},
    VoteHistory, VoteHistoryError,
};

/// Upper bound on an encoded saved vote history. agave lets wincode
/// preallocate up to 18 GiB for one, sized for 30 000 slots of fallback votes
/// without a root; a history rooted as it should be is a few KiB, 30 000
/// slots of ordinary votes about 14 MB. The bound keeps a hostile file from
/// being read whole into memory.
pub const MAX_SAVED_VOTE_HISTORY_BYTES: u64 = 64 * 1024 * 1024;

/// The only `SavedVoteHistoryVersions` variant agave 4.x has (`Current`).
const CURRENT: u32 = 0;

/// A vote history together with its node's signature over the encoded history.
///
/// Constructed only by signing ([`SavedVoteHistory::new`]) or by decoding
/// bytes whose signature verified and whose node matched
/// ([`SavedVoteHistory::from_bytes`]), so holding one means the history is
/// authentic. The signed bytes are kept as read: agave writes its hash sets
/// in no particular order, and re-encoding would void the signature.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedVoteHistory {
    history: VoteHistory,
    signature: Signature,
    data: Vec<u8>,
}

struct Envelope<'a> {
    signature: Signature,
    data: &'a [u8],
}

impl SavedVoteHistory {
    /// Signs `history` with its node's keypair (agave's `SavedVoteHistory::new`).
    pub fn new(history: &VoteHistory, keypair: &Keypair) -> Result<Self, VoteHistoryError> {
        if keypair.pubkey() != history.node_pubkey {
            return Err(VoteHistoryError::WrongVoteHistory {
                expected: keypair.pubkey(),
                found: history.node_pubkey,
            });
        }
        let data = history.encode();
        let signature = keypair.sign_message(&data);
        Ok(Self {
            history: history.clone(),
            signature,
            data,
        })
    }

    /// Decodes the content of `vote_history-<pubkey>.bin` (and of the etcd
    /// key), checking that it is `expected`'s history, signed by `expected`.
    pub fn from_bytes(bytes: &[u8], expected: &Pubkey) -> Result<Self, VoteHistoryError> {
        let envelope = unwrap(bytes)?;
        if !envelope.signature.verify(expected.as_ref(), envelope.data) {
            // Say whose history it is when it is someone else's, validly signed.
            if let Ok(history) = VoteHistory::decode(envelope.data) {
                let found = history.node_pubkey;
                if found != *expected && envelope.signature.verify(found.as_ref(), envelope.data) {
                    return Err(VoteHistoryError::WrongVoteHistory {
                        expected: *expected,
                        found,
                    });
                }
            }
            return Err(VoteHistoryError::InvalidSignature {
                expected: *expected,
            });
        }
        let history = VoteHistory::decode(envelope.data)?;
        if history.node_pubkey != *expected {
            return Err(VoteHistoryError::WrongVoteHistory {
                expected: *expected,
                found: history.node_pubkey,
            });
        }
        Ok(Self {
            history,
            signature: envelope.signature,
            data: envelope.data.to_vec(),
        })
    }

    /// The node a saved vote history claims to belong to, without verifying
    /// anything: for tools that must guess which key to verify against.
    pub fn claimed_node(bytes: &[u8]) -> Result<Pubkey, VoteHistoryError> {
        Ok(VoteHistory::decode(unwrap(bytes)?.data)?.node_pubkey)
    }

    /// The bytes agave writes: `SavedVoteHistoryVersions::Current`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u32(CURRENT);
        w.raw(self.signature.as_ref());
        w.len(self.data.len());
        w.raw(&self.data);
        w.bytes
    }

    pub fn history(&self) -> &VoteHistory {
        &self.history
    }

    pub fn into_history(self) -> VoteHistory {
        self.history
    }

    pub fn node_pubkey(&self) -> Pubkey {
        self.history.node_pubkey
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The signed encoding of the history, as read or as signed.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

fn unwrap(bytes: &[u8]) -> Result<Envelope<'_>, VoteHistoryError> {
    if bytes.len() as u64 > MAX_SAVED_VOTE_HISTORY_BYTES {
        return Err(VoteHistoryError::corrupt(format!(
            "{} bytes, more than a vote history may be ({MAX_SAVED_VOTE_HISTORY_BYTES})",
            bytes.len()
        )));
    }
    let mut r = Reader::new(bytes);
    let tag = r.u32("version tag")?;
    if tag != CURRENT {
        return Err(VoteHistoryError::corrupt(format!(
            "unknown version tag {tag} (agave 4.x writes 0, Current)"
        )));
    }
    let signature = Signature::from(r.array::<64>("signature")?);
    let len = r.len(1, "data")?;
    let data = r.take(len, "data")?;
    r.finish("saved vote history")?;
    Ok(Envelope { signature, data })
}
