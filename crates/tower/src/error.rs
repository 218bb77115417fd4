use solana_pubkey::Pubkey;

/// Why a saved tower could not be read or written.
///
/// Each variant is a branch a caller takes differently: a corrupt tower and a
/// tower of another node are both refused, but an operator fixes them
/// differently, and neither is ever silently replaced.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TowerError {
    /// The bytes are not a saved tower: truncated, trailing bytes, an unknown
    /// version tag, or a length that exceeds what a tower can hold.
    #[error("saved tower is corrupt: {reason}")]
    Corrupt { reason: String },

    /// The signature does not verify against the node the tower was read for.
    #[error("saved tower signature does not verify for {expected}")]
    InvalidSignature { expected: Pubkey },

    /// The tower is valid but belongs to another node.
    #[error("saved tower belongs to {found}, not to {expected}")]
    WrongTower { expected: Pubkey, found: Pubkey },

    /// The tower cannot be encoded (a lockout stack the compact vote format
    /// cannot express, e.g. slots out of order).
    #[error("tower cannot be encoded: {reason}")]
    Unencodable { reason: String },
}

impl TowerError {
    pub(crate) fn corrupt(reason: impl std::fmt::Display) -> Self {
        TowerError::Corrupt {
            reason: reason.to_string(),
        }
    }
}
