//! Decoding and checking a vote transaction up to the vote program: wire
//! decoding, sanitizing, signatures, finding the TowerSync instruction and its
//! accounts.

use bincode::Options;
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_transaction::Transaction;
use solana_vote_interface::instruction::VoteInstruction;
use solana_vote_interface::state::TowerSync;

use super::vote_program::InstructionFailure;

/// Solana's limit on a serialized transaction.
pub const PACKET_DATA_SIZE: u64 = 1232;

/// Why a transaction was refused before or by the vote program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The bytes are not a transaction.
    #[error("failed to deserialize solana_transaction::Transaction: {0}")]
    Malformed(String),
    /// The transaction is structurally invalid.
    #[error("invalid transaction: {0}")]
    Sanitize(String),
    /// No vote program instruction (this cluster only runs votes).
    #[error("transaction has no vote program instruction")]
    NotAVote,
    /// A signature does not verify.
    #[error("Transaction signature verification failure")]
    SignatureFailure,
    /// The recent blockhash is unknown or older than 150 blocks.
    #[error("Blockhash not found")]
    BlockhashNotFound,
    /// The vote instruction failed.
    #[error("Error processing Instruction {index}: {failure}")]
    Instruction {
        index: u8,
        failure: InstructionFailure,
    },
}

impl Rejection {
    /// The name recorded in the audit trail (Solana's error variant name).
    pub fn name(&self) -> String {
        match self {
            Self::Malformed(_) => "InvalidTransaction".into(),
            Self::Sanitize(_) => "SanitizeFailure".into(),
            Self::NotAVote => "InvalidProgramForExecution".into(),
            Self::SignatureFailure => "SignatureFailure".into(),
            Self::BlockhashNotFound => "BlockhashNotFound".into(),
            Self::Instruction { failure, .. } => failure.name(),
        }
    }

    /// The `TransactionError` JSON Solana's RPC puts in `data.err`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Instruction { index, failure } => {
                serde_json::json!({ "InstructionError": [index, failure.to_json()] })
            }
            other => serde_json::Value::String(other.name()),
        }
    }
}

/// A transaction carrying a TowerSync, with the accounts it names.
#[derive(Debug, Clone)]
pub struct VoteTransaction {
    /// The first signature: the transaction id.
    pub signature: Signature,
    /// Fee payer: the node identity.
    pub identity: Pubkey,
    /// Instruction account 0.
    pub vote_account: Pubkey,
    /// Instruction account 1: the vote authority.
    pub voter: Pubkey,
    pub vote_account_writable: bool,
    pub voter_signed: bool,
    pub signers: Vec<Pubkey>,
    pub recent_blockhash: Hash,
    pub instruction_index: u8,
    pub tower_sync: Result<TowerSync, InstructionFailure>,
    /// Whether every signature verifies.
    pub signatures_ok: bool,
}

/// Decodes a wire transaction (bincode, as agave's RPC does).
pub fn decode(bytes: &[u8]) -> Result<Transaction, Rejection> {
    if bytes.len() as u64 > PACKET_DATA_SIZE {
        return Err(Rejection::Malformed(format!(
            "encoded solana_transaction::Transaction too large: {} bytes (max: {PACKET_DATA_SIZE} bytes)",
            bytes.len()
        )));
    }
    bincode::options()
        .with_limit(PACKET_DATA_SIZE)
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .deserialize::<Transaction>(bytes)
        .map_err(|e| Rejection::Malformed(e.to_string()))
}

fn is_writable(tx: &Transaction, index: usize) -> bool {
    let header = &tx.message.header;
    let signed = header.num_required_signatures as usize;
    if index < signed {
        index < signed - header.num_readonly_signed_accounts as usize
    } else {
        index < tx.message.account_keys.len() - header.num_readonly_unsigned_accounts as usize
    }
}

/// Finds the vote instruction and checks signatures; the vote program's own
/// checks come later, against a bank.
pub fn parse(tx: &Transaction) -> Result<VoteTransaction, Rejection> {
    use solana_sanitize::Sanitize;
    tx.sanitize()
        .map_err(|e| Rejection::Sanitize(e.to_string()))?;
    let keys = &tx.message.account_keys;
    let vote_program = solana_vote_interface::program::id();
    let (index, instruction) = tx
        .message
        .instructions
        .iter()
        .enumerate()
        .find(|(_, ix)| keys.get(ix.program_id_index as usize) == Some(&vote_program))
        .ok_or(Rejection::NotAVote)?;
    let account = |i: usize| {
        instruction
            .accounts
            .get(i)
            .map(|&k| (k as usize, keys[k as usize]))
    };
    let (Some((vote_index, vote_account)), Some((voter_index, voter))) = (account(0), account(1))
    else {
        return Err(Rejection::Instruction {
            index: index as u8,
            failure: InstructionFailure::NotEnoughAccountKeys,
        });
    };
    let tower_sync = match bincode::options()
        .with_limit(PACKET_DATA_SIZE)
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .deserialize::<VoteInstruction>(&instruction.data)
    {
        Ok(VoteInstruction::TowerSync(t)) | Ok(VoteInstruction::TowerSyncSwitch(t, _)) => Ok(t),
        // Other vote instructions are not run by this cluster; the legacy
        // vote instructions are deprecated in agave too.
        _ => Err(InstructionFailure::InvalidInstructionData),
    };
    let signed = tx.message.header.num_required_signatures as usize;
    Ok(VoteTransaction {
        signature: tx.signatures.first().copied().unwrap_or_default(),
        identity: keys[0],
        vote_account,
        voter,
        vote_account_writable: is_writable(tx, vote_index),
        voter_signed: voter_index < signed,
        signers: keys[..signed.min(keys.len())].to_vec(),
        recent_blockhash: tx.message.recent_blockhash,
        instruction_index: index as u8,
        tower_sync,
        signatures_ok: tx.verify().is_ok(),
    })
}
