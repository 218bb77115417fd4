use solana_pubkey::Pubkey;

/// Why a saved vote history could not be read or written.
///
/// As for [`crate::TowerError`], each variant is a branch a caller takes
/// differently, and none of them is ever answered by replacing the history.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VoteHistoryError {
    /// The bytes are not a saved vote history: truncated, trailing bytes, an
    /// unknown enum tag, a repeated set member, or a length prefix larger than
    /// the bytes that follow it.
    #[error("saved vote history is corrupt: {reason}")]
    Corrupt { reason: String },

    /// The signature does not verify against the node the history was read for.
    #[error("saved vote history signature does not verify for {expected}")]
    InvalidSignature { expected: Pubkey },

    /// The history is validly signed but belongs to another node (or a keypair
    /// was asked to sign a history that is not its own).
    #[error("saved vote history belongs to {found}, not to {expected}")]
    WrongVoteHistory { expected: Pubkey, found: Pubkey },
}

impl VoteHistoryError {
    pub(crate) fn corrupt(reason: impl std::fmt::Display) -> Self {
        VoteHistoryError::Corrupt {
            reason: reason.to_string(),
        }
    }
}
