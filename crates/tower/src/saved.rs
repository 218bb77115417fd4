//! A tower signed by its node and encoded as agave writes it.

use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::Signer;

use crate::{
    layout::{SavedTowerVersions, SignedData, Tower1_14_11, Tower1_7_14, VoteTransaction},
    tower::Tower,
    TowerError,
};

/// Upper bound on an encoded saved tower. A full tower is under 5 KiB; the
/// bound keeps a hostile length prefix from allocating memory.
pub const MAX_SAVED_TOWER_BYTES: u64 = 64 * 1024;

/// Which of agave's encodings a saved tower came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedTowerFormat {
    /// `SavedTowerVersions::Current`, data `Tower1_14_11`: what we write.
    Current,
    /// `SavedTowerVersions::V1_17_14`, data `Tower1_7_14`.
    Versioned1_7_14,
    /// A bare `SavedTower1_7_14`: the old `tower-<pubkey>.bin` file.
    Legacy1_7_14,
}

/// A tower together with its node's signature over the encoded tower.
///
/// Constructed only by signing ([`SavedTower::new`]) or by decoding bytes whose
/// signature verified and whose node matched ([`SavedTower::from_bytes`]), so
/// holding one means the tower is authentic.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedTower {
    tower: Tower,
    signature: Signature,
    data: Vec<u8>,
    format: SavedTowerFormat,
}

/// bincode 1.3 as agave uses it (fixed-width little-endian integers), plus a
/// size limit and no trailing bytes.
fn codec() -> impl Options {
    bincode::options()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(MAX_SAVED_TOWER_BYTES)
        .reject_trailing_bytes()
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, TowerError> {
    if bytes.len() as u64 > MAX_SAVED_TOWER_BYTES {
        return Err(TowerError::corrupt(format!(
            "{what} is {} bytes, more than a tower can be ({MAX_SAVED_TOWER_BYTES})",
            bytes.len()
        )));
    }
    codec()
        .deserialize(bytes)
        .map_err(|err| TowerError::corrupt(format!("{what}: {err}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, TowerError> {
    codec()
        .serialize(value)
        .map_err(|err| TowerError::Unencodable {
            reason: err.to_string(),
        })
}

impl SavedTower {
    /// Signs `tower` with its node's keypair.
    pub fn new(tower: &Tower, keypair: &Keypair) -> Result<Self, TowerError> {
        if keypair.pubkey() != tower.node_pubkey() {
            return Err(TowerError::WrongTower {
                expected: keypair.pubkey(),
                found: tower.node_pubkey(),
            });
        }
        let data = encode(&tower.to_layout())?;
        let signature = keypair.sign_message(&data);
        Ok(Self {
            tower: tower.clone(),
            signature,
            data,
            format: SavedTowerFormat::Current,
        })
    }

    /// Decodes a `SavedTowerVersions` (the content of `tower-1_9-<pubkey>.bin`
    /// and of the etcd tower key), checking that it is `expected`'s tower.
    pub fn from_bytes(bytes: &[u8], expected: &Pubkey) -> Result<Self, TowerError> {
        let (signed, format) = unwrap_signed(bytes, false)?;
        Self::verify(signed, format, expected)
    }

    /// Decodes the old `tower-<pubkey>.bin` (a bare `SavedTower1_7_14`).
    pub fn from_legacy_bytes(bytes: &[u8], expected: &Pubkey) -> Result<Self, TowerError> {
        let (signed, format) = unwrap_signed(bytes, true)?;
        Self::verify(signed, format, expected)
    }

    /// The node a saved tower claims to belong to, without verifying anything.
    /// For tools that must guess which key to verify against; `legacy` selects
    /// the old bare format of `tower-<pubkey>.bin`.
    pub fn claimed_node(bytes: &[u8], legacy: bool) -> Result<Pubkey, TowerError> {
        let (signed, format) = unwrap_signed(bytes, legacy)?;
        Ok(decode_tower(&signed.data, format)?.node_pubkey())
    }

    fn verify(
        signed: SignedData,
        format: SavedTowerFormat,
        expected: &Pubkey,
    ) -> Result<Self, TowerError> {
        if !signed.signature.verify(expected.as_ref(), &signed.data) {
            // Say whose tower it is when it is someone else's, validly signed.
            if let Ok(tower) = decode_tower(&signed.data, format) {
                let found = tower.node_pubkey();
                if found != *expected && signed.signature.verify(found.as_ref(), &signed.data) {
                    return Err(TowerError::WrongTower {
                        expected: *expected,
                        found,
                    });
                }
            }
            return Err(TowerError::InvalidSignature {
                expected: *expected,
            });
        }
        let tower = decode_tower(&signed.data, format)?;
        if tower.node_pubkey() != *expected {
            return Err(TowerError::WrongTower {
                expected: *expected,
                found: tower.node_pubkey(),
            });
        }
        Ok(Self {
            tower,
            signature: signed.signature,
            data: signed.data,
            format,
        })
    }

    /// The bytes to store: `SavedTowerVersions` with the tag of this tower's
    /// data format (`Current` for every tower we sign).
    pub fn to_bytes(&self) -> Vec<u8> {
        let signed = SignedData {
            signature: self.signature,
            data: self.data.clone(),
        };
        let versions = match self.format {
            SavedTowerFormat::Current => SavedTowerVersions::Current(signed),
            SavedTowerFormat::Versioned1_7_14 | SavedTowerFormat::Legacy1_7_14 => {
                SavedTowerVersions::V1_17_14(signed)
            }
        };
        encode(&versions).expect("a signed tower always re-encodes")
    }

    pub fn tower(&self) -> &Tower {
        &self.tower
    }

    pub fn into_tower(self) -> Tower {
        self.tower
    }

    pub fn node_pubkey(&self) -> Pubkey {
        self.tower.node_pubkey()
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    pub fn format(&self) -> SavedTowerFormat {
        self.format
    }
}

fn unwrap_signed(bytes: &[u8], legacy: bool) -> Result<(SignedData, SavedTowerFormat), TowerError> {
    if legacy {
        return Ok((
            decode(bytes, "saved tower")?,
            SavedTowerFormat::Legacy1_7_14,
        ));
    }
    Ok(match decode::<SavedTowerVersions>(bytes, "saved tower")? {
        SavedTowerVersions::V1_17_14(signed) => (signed, SavedTowerFormat::Versioned1_7_14),
        SavedTowerVersions::Current(signed) => (signed, SavedTowerFormat::Current),
    })
}

fn decode_tower(data: &[u8], format: SavedTowerFormat) -> Result<Tower, TowerError> {
    let saved = match format {
        SavedTowerFormat::Current => decode::<Tower1_14_11>(data, "tower data")?,
        SavedTowerFormat::Versioned1_7_14 | SavedTowerFormat::Legacy1_7_14 => {
            let t: Tower1_7_14 = decode(data, "tower data")?;
            Tower1_14_11 {
                node_pubkey: t.node_pubkey,
                threshold_depth: t.threshold_depth,
                threshold_size: t.threshold_size,
                vote_state: t.vote_state,
                last_vote: VoteTransaction::Vote(t.last_vote),
                last_timestamp: t.last_timestamp,
            }
        }
    };
    check_lockouts(&saved)?;
    Ok(Tower::from_layout(saved))
}

/// A tower whose stack breaks the lockout invariants would make every later
/// decision wrong; refuse it like any other corruption.
fn check_lockouts(saved: &Tower1_14_11) -> Result<(), TowerError> {
    let votes = &saved.vote_state.votes;
    if votes.len() > solana_vote_interface::state::MAX_LOCKOUT_HISTORY {
        return Err(TowerError::corrupt(format!(
            "{} lockouts, more than {}",
            votes.len(),
            solana_vote_interface::state::MAX_LOCKOUT_HISTORY
        )));
    }
    for pair in votes.iter().collect::<Vec<_>>().windows(2) {
        if pair[0].slot() >= pair[1].slot() {
            return Err(TowerError::corrupt("lockout slots are not increasing"));
        }
        if pair[0].confirmation_count() <= pair[1].confirmation_count() {
            return Err(TowerError::corrupt(
                "lockout confirmation counts are not decreasing",
            ));
        }
    }
    let max = solana_vote_interface::state::MAX_LOCKOUT_HISTORY as u32;
    if let Some(bad) = votes
        .iter()
        .find(|l| l.confirmation_count() == 0 || l.confirmation_count() > max)
    {
        return Err(TowerError::corrupt(format!(
            "lockout of slot {} has {} confirmations (1 to {max} allowed)",
            bad.slot(),
            bad.confirmation_count()
        )));
    }
    if saved.threshold_depth > solana_vote_interface::state::MAX_LOCKOUT_HISTORY
        || !(saved.threshold_size > 0.0 && saved.threshold_size <= 1.0)
    {
        return Err(TowerError::corrupt(format!(
            "threshold depth {} / size {} out of range",
            saved.threshold_depth, saved.threshold_size
        )));
    }
    if let (Some(root), Some(first)) = (saved.vote_state.root_slot, votes.front()) {
        if root >= first.slot() {
            return Err(TowerError::corrupt("root is not older than every lockout"));
        }
    }
    Ok(())
}
