//! Vote transactions as agave's RPC shows them (`getBlock`'s transactions,
//! `getTransaction`, `getSignatureStatuses`): the transaction in the asked
//! encoding and a status meta.

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use solana_signature::Signature;
use solana_transaction::Transaction;

use super::{
    at_least_confirmed, commitment_slot, context, Commitment, CommitmentConfig, Params, RpcError,
};
use crate::core::cluster::Bank;
use crate::core::Cluster;

/// What a vote costs per signature, in lamports.
pub const LAMPORTS_PER_SIGNATURE: u64 = 5_000;
/// Compute units a vote instruction consumes.
const VOTE_COMPUTE_UNITS: u64 = 2_100;
/// `getSignatureStatuses` takes at most this many signatures.
const MAX_SIGNATURE_STATUSES: usize = 256;

/// How a transaction is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TransactionEncoding {
    #[default]
    Json,
    #[serde(rename = "base58")]
    Base58,
    #[serde(rename = "base64")]
    Base64,
    /// Accepted by agave; served as `json` is refused (see `check`).
    JsonParsed,
    Binary,
}

impl TransactionEncoding {
    /// agave parses instructions for `jsonParsed`; we do not, so say so.
    pub fn check(self) -> Result<Self, RpcError> {
        match self {
            Self::JsonParsed => Err(RpcError::params(
                "Invalid params: encoding jsonParsed is not served for transactions; use json, base58 or base64",
            )),
            other => Ok(other),
        }
    }
}

/// The transaction itself, as `encoding` says.
pub fn encode_transaction(tx: &Transaction, encoding: TransactionEncoding) -> Value {
    let bytes = || bincode::serialize(tx).expect("a transaction serializes");
    match encoding {
        TransactionEncoding::Base64 => json!([
            base64::engine::general_purpose::STANDARD.encode(bytes()),
            "base64"
        ]),
        TransactionEncoding::Base58 => json!([bs58::encode(bytes()).into_string(), "base58"]),
        TransactionEncoding::Binary => json!(bs58::encode(bytes()).into_string()),
        TransactionEncoding::Json | TransactionEncoding::JsonParsed => {
            let message = &tx.message;
            json!({
                "signatures": tx.signatures.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "message": {
                    "header": {
                        "numRequiredSignatures": message.header.num_required_signatures,
                        "numReadonlySignedAccounts": message.header.num_readonly_signed_accounts,
                        "numReadonlyUnsignedAccounts": message.header.num_readonly_unsigned_accounts,
                    },
                    "accountKeys": message.account_keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "recentBlockhash": message.recent_blockhash.to_string(),
                    "instructions": message.instructions.iter().map(|ix| json!({
                        "programIdIndex": ix.program_id_index,
                        "accounts": ix.accounts,
                        "data": bs58::encode(&ix.data).into_string(),
                        "stackHeight": null,
                    })).collect::<Vec<_>>(),
                },
            })
        }
    }
}

/// The status meta of a landed vote: it succeeded (only accepted votes land)
/// and paid its fee; balances are the accounts' (fees are not deducted).
pub fn status_meta(cluster: &Cluster, bank: &Bank, tx: &Transaction) -> Value {
    let fee = LAMPORTS_PER_SIGNATURE * tx.signatures.len() as u64;
    let post: Vec<u64> = tx
        .message
        .account_keys
        .iter()
        .map(|key| cluster.account(key, bank.slot).map_or(0, |a| a.lamports))
        .collect();
    let mut pre = post.clone();
    if let Some(payer) = pre.first_mut() {
        *payer += fee;
    }
    let vote_program = solana_vote_interface::program::id();
    json!({
        "err": null,
        "status": { "Ok": null },
        "fee": fee,
        "preBalances": pre,
        "postBalances": post,
        "innerInstructions": [],
        "logMessages": [
            format!("Program {vote_program} invoke [1]"),
            format!("Program {vote_program} success"),
        ],
        "preTokenBalances": [],
        "postTokenBalances": [],
        "rewards": [],
        "loadedAddresses": { "writable": [], "readonly": [] },
        "computeUnitsConsumed": VOTE_COMPUTE_UNITS,
    })
}

/// One transaction with its meta (and its version, when the caller said
/// which versions it supports).
pub fn transaction_with_meta(
    cluster: &Cluster,
    bank: &Bank,
    tx: &Transaction,
    encoding: TransactionEncoding,
    versioned: bool,
) -> Value {
    let mut value = json!({
        "transaction": encode_transaction(tx, encoding),
        "meta": status_meta(cluster, bank, tx),
    });
    if versioned {
        value["version"] = json!("legacy");
    }
    value
}

/// Where a signature landed among the banks of the fork ending at `tip`.
fn find(cluster: &Cluster, tip: u64, signature: &Signature) -> Option<(u64, usize)> {
    super::blocks::chain(cluster, tip)
        .into_iter()
        .rev()
        .find_map(|slot| {
            let bank = cluster.bank(slot)?;
            bank.transactions
                .iter()
                .position(|tx| tx.signatures.first() == Some(signature))
                .map(|i| (slot, i))
        })
}

fn parse_signature(s: &str) -> Result<Signature, RpcError> {
    s.parse::<Signature>()
        .map_err(|e| RpcError::params(format!("Invalid param: {e:?}")))
}

pub(super) fn get_transaction(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(1, 2)?;
    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Config {
        encoding: Option<TransactionEncoding>,
        max_supported_transaction_version: Option<u8>,
        #[serde(flatten)]
        commitment: CommitmentConfig,
    }
    let signature = parse_signature(&params.required::<String>(0, "a string")?)?;
    // The second param is a config or, as agave still takes, an encoding.
    let config: Config = match params.0.get(1) {
        Some(Value::String(_)) => Config {
            encoding: params.get(1)?,
            ..Config::default()
        },
        _ => params.get(1)?.unwrap_or_default(),
    };
    at_least_confirmed(&config.commitment)?;
    let encoding = config.encoding.unwrap_or_default().check()?;
    let slot = commitment_slot(cluster, &config.commitment)?;
    let Some((found, index)) = find(cluster, slot, &signature) else {
        return Ok(Value::Null);
    };
    let bank = cluster.bank(found).expect("found in a kept bank");
    let tx = &bank.transactions[index];
    let mut value = transaction_with_meta(
        cluster,
        bank,
        tx,
        encoding,
        config.max_supported_transaction_version.is_some(),
    );
    value["slot"] = json!(found);
    value["blockTime"] = json!(bank.time_ms / 1000);
    Ok(value)
}

pub(super) fn get_signature_statuses(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(1, 2)?;
    let signatures: Vec<String> = params.required(0, "a sequence")?;
    if signatures.len() > MAX_SIGNATURE_STATUSES {
        return Err(RpcError::params(format!(
            "Too many inputs provided; max {MAX_SIGNATURE_STATUSES}"
        )));
    }
    let signatures = signatures
        .iter()
        .map(|s| parse_signature(s))
        .collect::<Result<Vec<_>, _>>()?;
    let processed = CommitmentConfig {
        commitment: Some(Commitment::Processed),
        min_context_slot: None,
    };
    let tip = commitment_slot(cluster, &processed)?;
    let tip_height = cluster.bank(tip).map_or(0, |b| b.block_height);
    let statuses = signatures
        .iter()
        .map(|signature| {
            let (slot, _) = find(cluster, tip, signature)?;
            let height = cluster.bank(slot).map_or(0, |b| b.block_height);
            let (confirmations, status) = if slot <= cluster.root() {
                (Value::Null, "finalized")
            } else if cluster.is_ancestor_or_equal(slot, cluster.confirmed()) {
                (json!(tip_height - height), "confirmed")
            } else {
                (json!(tip_height - height), "processed")
            };
            Some(json!({
                "slot": slot,
                "confirmations": confirmations,
                "err": null,
                "status": { "Ok": null },
                "confirmationStatus": status,
            }))
        })
        .collect::<Vec<_>>();
    Ok(context(tip, json!(statuses)))
}
