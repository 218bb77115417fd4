//! `getAccountInfo`, `getMultipleAccounts` and `getBalance`: accounts in
//! agave's encodings, vote accounts also as agave's `jsonParsed` vote state.

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use solana_vote_interface::state::{VoteStateV4, VoteStateVersions};

use super::{commitment_slot, context, parse_pubkey, CommitmentConfig, Params, RpcError};
use crate::core::accounts::Account;
use crate::core::Cluster;

/// `getMultipleAccounts` takes at most this many keys.
const MAX_MULTIPLE_ACCOUNTS: usize = 100;

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataSlice {
    offset: usize,
    length: usize,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountConfig {
    encoding: Option<String>,
    data_slice: Option<DataSlice>,
    #[serde(flatten)]
    commitment: CommitmentConfig,
}

pub(super) fn get_account_info(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(1, 2)?;
    let pubkey = parse_pubkey(&params.required::<String>(0, "a string")?)?;
    let config: AccountConfig = params.get(1)?.unwrap_or_default();
    let slot = commitment_slot(cluster, &config.commitment)?;
    let value = match cluster.account(&pubkey, slot) {
        Some(account) => encode_account(&account, &config)?,
        None => Value::Null,
    };
    Ok(context(slot, value))
}

pub(super) fn get_multiple_accounts(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(1, 2)?;
    let keys: Vec<String> = params.required(0, "a sequence")?;
    if keys.len() > MAX_MULTIPLE_ACCOUNTS {
        return Err(RpcError::params(format!(
            "Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}"
        )));
    }
    let keys = keys
        .iter()
        .map(|k| parse_pubkey(k))
        .collect::<Result<Vec<_>, _>>()?;
    let config: AccountConfig = params.get(1)?.unwrap_or_default();
    let slot = commitment_slot(cluster, &config.commitment)?;
    let values = keys
        .iter()
        .map(|key| match cluster.account(key, slot) {
            Some(account) => encode_account(&account, &config),
            None => Ok(Value::Null),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(context(slot, Value::Array(values)))
}

pub(super) fn get_balance(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(1, 2)?;
    let pubkey = parse_pubkey(&params.required::<String>(0, "a string")?)?;
    let config: CommitmentConfig = params.get(1)?.unwrap_or_default();
    let slot = commitment_slot(cluster, &config)?;
    let lamports = cluster.account(&pubkey, slot).map_or(0, |a| a.lamports);
    Ok(context(slot, json!(lamports)))
}

/// One whole account as agave's `UiAccount` in `encoding`.
pub fn account_json(account: &Account, encoding: Option<&str>) -> Result<Value, RpcError> {
    let config = AccountConfig {
        encoding: encoding.map(str::to_string),
        ..AccountConfig::default()
    };
    encode_account(account, &config)
}

/// One account as agave's `UiAccount`.
fn encode_account(account: &Account, config: &AccountConfig) -> Result<Value, RpcError> {
    let space = account.data.len();
    let data = match &config.data_slice {
        Some(s) => {
            let start = s.offset.min(space);
            let end = s.offset.saturating_add(s.length).min(space);
            &account.data[start..end]
        }
        None => &account.data[..],
    };
    let encoded = match config.encoding.as_deref() {
        None | Some("binary") | Some("base58") => {
            if data.len() > 128 {
                return Err(RpcError::new(
                    -32600,
                    "Encoded binary (base 58) data should be less than 128 bytes, please use Base64 encoding.",
                ));
            }
            let b58 = bs58::encode(data).into_string();
            match config.encoding.as_deref() {
                Some("base58") => json!([b58, "base58"]),
                _ => json!(b58),
            }
        }
        // agave parses whole accounts only; a slice, or an account it
        // cannot parse, falls back to base64.
        Some("jsonParsed") if config.data_slice.is_none() && account.is_vote_account() => {
            parsed_vote_account(&account.data).unwrap_or_else(|| base64(data))
        }
        Some("base64") | Some("jsonParsed") => base64(data),
        Some(other) => {
            return Err(RpcError::invalid_params(format!(
                "unknown variant `{other}`, expected one of `binary`, `base58`, `base64`, `jsonParsed`, `base64+zstd`"
            )))
        }
    };
    Ok(json!({
        "lamports": account.lamports,
        "data": encoded,
        "owner": account.owner.to_string(),
        "executable": false,
        "rentEpoch": u64::MAX,
        "space": space,
    }))
}

fn base64(data: &[u8]) -> Value {
    json!([
        base64::engine::general_purpose::STANDARD.encode(data),
        "base64"
    ])
}

/// agave's `ParsedAccount` of a vote account (`parse_vote`, vote state v4).
fn parsed_vote_account(data: &[u8]) -> Option<Value> {
    let state: VoteStateV4 = match bincode::deserialize(data).ok()? {
        VoteStateVersions::V4(state) => *state,
        _ => return None,
    };
    Some(json!({
        "program": "vote",
        "parsed": { "type": "vote", "info": ui_vote_state(&state) },
        "space": data.len(),
    }))
}

fn ui_vote_state(state: &VoteStateV4) -> Value {
    json!({
        "nodePubkey": state.node_pubkey.to_string(),
        "authorizedWithdrawer": state.authorized_withdrawer.to_string(),
        "commission": (state.inflation_rewards_commission_bps / 100).min(100) as u8,
        "votes": state.votes.iter().map(|v| json!({
            "slot": v.slot(),
            "confirmationCount": v.confirmation_count(),
        })).collect::<Vec<_>>(),
        "rootSlot": state.root_slot,
        "authorizedVoters": state.authorized_voters.iter().map(|(epoch, voter)| json!({
            "epoch": epoch,
            "authorizedVoter": voter.to_string(),
        })).collect::<Vec<_>>(),
        "priorVoters": [],
        "epochCredits": state.epoch_credits.iter().map(|(epoch, credits, previous)| json!({
            "epoch": epoch,
            "credits": credits.to_string(),
            "previousCredits": previous.to_string(),
        })).collect::<Vec<_>>(),
        "lastTimestamp": {
            "slot": state.last_timestamp.slot,
            "timestamp": state.last_timestamp.timestamp,
        },
        "inflationRewardsCommissionBps": state.inflation_rewards_commission_bps,
        "inflationRewardsCollector": state.inflation_rewards_collector.to_string(),
        "blockRevenueCollector": state.block_revenue_collector.to_string(),
        "blockRevenueCommissionBps": state.block_revenue_commission_bps,
        "pendingDelegatorRewards": state.pending_delegator_rewards.to_string(),
    })
}
