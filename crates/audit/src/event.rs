//! One line of `audit.jsonl`: a JSON object tagged by `kind`.
//!
//! Pubkeys, hashes and signatures are base-58 strings so that the trail reads
//! like Solana's own tools print them.

use serde::{Deserialize, Serialize};

/// One event of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A block became a bank on some fork (every fork's blocks are listed, so
    /// the fork tree can be rebuilt from these lines alone).
    Bank(BankEvent),
    /// A block submitted by one of our validators for its leader slot.
    Block(BlockEvent),
    /// A vote transaction received by the cluster, accepted or not.
    Vote(VoteEvent),
    /// A contact info published over gossip.
    Contact(ContactEvent),
    /// A Votor vote a validator sent (Alpenglow clusters), counted or not.
    VotorVote(VotorVoteEvent),
    /// A Votor certificate the cluster formed.
    Certificate(CertificateEvent),
    /// A Votor block was finalized, with its ancestors.
    Finalized(FinalizedEvent),
}

/// `{"kind":"votor_vote",…}`: one Votor vote received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VotorVoteEvent {
    pub ts_ms: u64,
    /// The voter's identity (the signer).
    pub identity: String,
    pub vote_account: String,
    pub instance: String,
    /// agave's name of the kind: `notarize`, `finalize`, `skip`,
    /// `notarize-fallback`, `skip-fallback`.
    pub vote: String,
    pub slot: u64,
    /// The block, for notarize and notarize-fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_id: Option<String>,
    pub signature: String,
    /// `"ok"` when the cluster counted it (it landed), else why not
    /// (`BadSignature`, `UnknownIdentity`, `ConflictingVote`, …).
    pub result: VoteResult,
}

/// `{"kind":"certificate",…}`: a certificate formed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateEvent {
    pub ts_ms: u64,
    /// `notarization`, `notarizeFallback`, `skip`, `fastFinalization` or
    /// `finalization`.
    pub certificate: String,
    pub slot: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_id: Option<String>,
}

/// `{"kind":"finalized",…}`: the block of `slot` is final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizedEvent {
    pub ts_ms: u64,
    pub slot: u64,
    pub block_id: String,
    /// By a fast-finalization certificate.
    pub fast: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankEvent {
    pub slot: u64,
    pub parent: u64,
    pub hash: String,
    pub leader: String,
    pub ts_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEvent {
    pub slot: u64,
    pub leader: String,
    pub hash: String,
    pub instance: String,
    pub ts_ms: u64,
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteEvent {
    pub ts_ms: u64,
    pub vote_account: String,
    pub voter: String,
    pub identity: String,
    pub instance: String,
    pub signature: String,
    /// `[slot, confirmation_count]` from oldest to newest.
    pub lockouts: Vec<(u64, u32)>,
    pub root: Option<u64>,
    /// Bank hash of the last voted slot, as the vote claims it.
    pub hash: String,
    /// `"ok"` when the vote program accepted it, else the error's name.
    pub result: VoteResult,
}

/// The cluster's verdict on a vote. The trail writes it as one string:
/// `"ok"`, or the name of the error the vote program refused it with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VoteResult {
    /// The vote program accepted the vote: it landed.
    Accepted,
    /// Refused, with Solana's name of the error (e.g. `LockoutConflict`);
    /// never `"ok"`.
    Rejected(String),
}

impl VoteResult {
    /// What the trail writes for an accepted vote.
    pub const ACCEPTED: &'static str = "ok";

    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted)
    }

    /// The trail's text: `"ok"` or the error's name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Accepted => Self::ACCEPTED,
            Self::Rejected(name) => name,
        }
    }
}

impl From<&str> for VoteResult {
    /// Reads the trail's text (`"ok"` is accepted, anything else a rejection).
    fn from(text: &str) -> Self {
        if text == Self::ACCEPTED {
            Self::Accepted
        } else {
            Self::Rejected(text.to_owned())
        }
    }
}

impl From<String> for VoteResult {
    fn from(text: String) -> Self {
        if text == Self::ACCEPTED {
            Self::Accepted
        } else {
            Self::Rejected(text)
        }
    }
}

impl std::fmt::Display for VoteResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the trail's text, so `result == "ok"` keeps reading as it did.
impl PartialEq<str> for VoteResult {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for VoteResult {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for VoteResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for VoteResult {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactEvent {
    pub ts_ms: u64,
    pub pubkey: String,
    pub outset: u64,
    pub instance: String,
}

impl Event {
    /// Parses one line of the trail.
    pub fn from_line(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// Encodes the event as one line (without the trailing newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("audit events always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_line_matches_design_format() {
        let line = r#"{"kind":"vote","ts_ms":5,"vote_account":"V","voter":"A","identity":"I","instance":"x","signature":"s","lockouts":[[10,2],[11,1]],"root":null,"hash":"h","result":"ok"}"#;
        let event = Event::from_line(line).unwrap();
        let Event::Vote(vote) = &event else {
            panic!("not a vote: {event:?}")
        };
        assert_eq!(vote.lockouts, vec![(10, 2), (11, 1)]);
        assert_eq!(vote.result, VoteResult::Accepted);
        assert_eq!(event.to_line(), line);
    }

    #[test]
    fn a_rejected_vote_keeps_the_error_name() {
        let line = r#"{"kind":"vote","ts_ms":5,"vote_account":"V","voter":"A","identity":"I","instance":"x","signature":"s","lockouts":[],"root":null,"hash":"","result":"LockoutConflict"}"#;
        let event = Event::from_line(line).unwrap();
        let Event::Vote(vote) = &event else {
            panic!("not a vote: {event:?}")
        };
        assert_eq!(
            vote.result,
            VoteResult::Rejected("LockoutConflict".to_owned())
        );
        assert!(!vote.result.is_accepted());
        assert_eq!(vote.result, "LockoutConflict");
        assert_eq!(event.to_line(), line);
    }
}
