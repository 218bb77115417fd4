//! Solana's JSON-RPC over the cluster, without IO: a request body in, a
//! response body and the core's outputs out.
//!
//! Envelope, error codes and messages follow agave (paritytech jsonrpc):
//! positional params, batches, `-32700` parse error, `-32600` invalid
//! request, `-32601` method not found, `-32602` invalid params, and the
//! Solana-specific codes for transactions.

mod accounts;
pub use accounts::account_json;
pub mod blocks;
mod leaders;
pub mod methods;
mod rewards;
pub mod transactions;
mod votor;

use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use solana_pubkey::Pubkey;
use towerlock_wire::api::{
    SendTransactionConfig, SignedContactInfo, SubmitBlock, FEATURE_SET, PUBLISH_CONTACT_INFO,
    SOLANA_CORE_VERSION, SUBMIT_BLOCK,
};

use crate::core::cluster::DELINQUENT_SLOT_DISTANCE;
use crate::core::vote_tx::{self, Rejection};
use crate::core::{Cluster, Outputs};

pub use crate::core::accounts::{vote_account_data, VOTE_ACCOUNT_LAMPORTS};

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
    pub(crate) fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    pub fn parse_error() -> Self {
        Self::new(-32700, "Parse error")
    }
    pub fn invalid_request() -> Self {
        Self::new(-32600, "Invalid request")
    }
    pub fn method_not_found() -> Self {
        Self::new(-32601, "Method not found")
    }
    /// A param that did not deserialize (jsonrpc's wording).
    pub fn invalid_params(message: impl std::fmt::Display) -> Self {
        Self::new(-32602, format!("Invalid params: {message}."))
    }
    /// agave's own `-32602` refusals, worded as agave words them.
    pub fn params(message: impl Into<String>) -> Self {
        Self::new(-32602, message)
    }
    fn to_json(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

/// Handles one HTTP body (a call or a batch of calls) and returns the answer
/// with what the calls produced (audit events, notifications).
pub fn handle_body(cluster: &mut Cluster, body: &[u8], now_ms: u64) -> (Value, Outputs) {
    handle_prepared(cluster, prepare_body(body), now_ms)
}

/// A request body made ready without the cluster: the JSON parsed, and
/// each `sendTransaction` call's transaction decoded and parsed with its
/// signatures verified — the costly part of a vote, which needs no cluster
/// state, so the server does it before it takes the cluster.
pub struct Prepared {
    /// `None`: the body is not JSON.
    body: Option<Value>,
    /// Per call of the body (one for a single call), its prepared vote.
    votes: Vec<Option<PreparedVote>>,
}

/// A `sendTransaction` call whose transaction decoded.
struct PreparedVote {
    tx: solana_transaction::Transaction,
    config: SendTransactionConfig,
    parsed: Result<vote_tx::VoteTransaction, Rejection>,
}

/// Parses `body` and prepares its votes (see [`Prepared`]).
pub fn prepare_body(body: &[u8]) -> Prepared {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return Prepared {
            body: None,
            votes: vec![],
        };
    };
    let prepare = |call: &Value| {
        if call.get("method").and_then(Value::as_str) != Some("sendTransaction") {
            return None;
        }
        let (tx, config) = decode_send(call_params(call).ok()?).ok()?;
        let parsed = vote_tx::parse(&tx);
        Some(PreparedVote { tx, config, parsed })
    };
    let votes = match &body {
        Value::Array(calls) => calls.iter().map(prepare).collect(),
        call => vec![prepare(call)],
    };
    Prepared {
        body: Some(body),
        votes,
    }
}

/// Answers a prepared body with the cluster.
pub fn handle_prepared(cluster: &mut Cluster, prepared: Prepared, now_ms: u64) -> (Value, Outputs) {
    let mut outputs = Outputs::default();
    let Some(value) = prepared.body else {
        return (
            error_response(Value::Null, &RpcError::parse_error()),
            outputs,
        );
    };
    let mut votes = prepared.votes.into_iter();
    let response = match value {
        Value::Array(calls) if calls.is_empty() => {
            error_response(Value::Null, &RpcError::invalid_request())
        }
        Value::Array(calls) => Value::Array(
            calls
                .into_iter()
                .map(|call| {
                    let vote = votes.next().flatten();
                    handle_call(cluster, call, vote, now_ms, &mut outputs)
                })
                .collect(),
        ),
        call => handle_call(cluster, call, votes.next().flatten(), now_ms, &mut outputs),
    };
    (response, outputs)
}

fn error_response(id: Value, error: &RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "error": error.to_json(), "id": id })
}

fn handle_call(
    cluster: &mut Cluster,
    call: Value,
    vote: Option<PreparedVote>,
    now_ms: u64,
    outputs: &mut Outputs,
) -> Value {
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let method = call.get("method").and_then(Value::as_str);
    let version_ok = call.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
    let (Some(method), true) = (method, version_ok) else {
        return error_response(id, &RpcError::invalid_request());
    };
    let params = match call_params(&call) {
        Ok(params) => params,
        Err(error) => return error_response(id, &error),
    };
    let result = match vote {
        Some(vote) => answer_send(cluster, vote, now_ms, outputs),
        None => call_method(cluster, method, params, now_ms, outputs),
    };
    match result {
        Ok(result) => json!({ "jsonrpc": "2.0", "result": result, "id": id }),
        Err(error) => error_response(id, &error),
    }
}

/// A call's positional params (none when absent or null).
fn call_params(call: &Value) -> Result<Params, RpcError> {
    match call.get("params") {
        None | Some(Value::Null) => Ok(Params(vec![])),
        Some(Value::Array(items)) => Ok(Params(items.clone())),
        Some(_) => Err(RpcError::invalid_params(
            "invalid type: map, expected a sequence",
        )),
    }
}

/// Positional params.
struct Params(Vec<Value>);

impl Params {
    fn count(&self, min: usize, max: usize) -> Result<(), RpcError> {
        let got = self.0.len();
        if got < min {
            return Err(RpcError::new(
                -32602,
                format!("`params` should have at least {min} argument(s)"),
            ));
        }
        if got > max {
            return Err(RpcError::new(
                -32602,
                format!("Invalid parameters: Expected from {min} to {max} parameters."),
            )
            .with_data(json!(format!("Got: {got}"))));
        }
        Ok(())
    }

    /// Param `i`, which must be there (`expected` names its type).
    fn required<T: DeserializeOwned>(&self, i: usize, expected: &str) -> Result<T, RpcError> {
        self.get(i)?.ok_or_else(|| {
            RpcError::invalid_params(format!("invalid type: null, expected {expected}"))
        })
    }

    /// Param `i`, `None` when missing or `null`.
    fn get<T: DeserializeOwned>(&self, i: usize) -> Result<Option<T>, RpcError> {
        match self.0.get(i) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(RpcError::invalid_params),
        }
    }
}

fn parse_pubkey(s: &str) -> Result<Pubkey, RpcError> {
    s.parse::<Pubkey>()
        .map_err(|e| RpcError::new(-32602, format!("Invalid param: {e:?}")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommitmentConfig {
    commitment: Option<Commitment>,
    min_context_slot: Option<u64>,
}

/// A commitment level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Commitment {
    Processed,
    Confirmed,
    Finalized,
}

/// The bank slot a commitment level reads (Solana's default is finalized).
fn commitment_slot(cluster: &Cluster, config: &CommitmentConfig) -> Result<u64, RpcError> {
    let slot = match config.commitment {
        Some(Commitment::Processed) => cluster.tip(),
        Some(Commitment::Confirmed) => cluster.confirmed(),
        Some(Commitment::Finalized) | None => cluster.root(),
    };
    if let Some(min) = config.min_context_slot {
        if slot < min {
            return Err(
                RpcError::new(-32016, "Minimum context slot has not been reached")
                    .with_data(json!({ "contextSlot": slot })),
            );
        }
    }
    Ok(slot)
}

/// The ledger methods refuse `processed`, as agave does.
fn at_least_confirmed(config: &CommitmentConfig) -> Result<(), RpcError> {
    if config.commitment == Some(Commitment::Processed) {
        return Err(RpcError::params(
            "Method does not support commitment below `confirmed`",
        ));
    }
    Ok(())
}

fn context(slot: u64, value: Value) -> Value {
    json!({ "context": { "slot": slot, "apiVersion": SOLANA_CORE_VERSION }, "value": value })
}

fn call_method(
    cluster: &mut Cluster,
    method: &str,
    params: Params,
    now_ms: u64,
    outputs: &mut Outputs,
) -> Result<Value, RpcError> {
    match method {
        "getSlot" => {
            params.count(0, 1)?;
            let config: CommitmentConfig = params.get(0)?.unwrap_or_default();
            Ok(json!(commitment_slot(cluster, &config)?))
        }
        "getBlockHeight" => {
            params.count(0, 1)?;
            let config: CommitmentConfig = params.get(0)?.unwrap_or_default();
            let slot = commitment_slot(cluster, &config)?;
            Ok(json!(cluster.bank(slot).map_or(0, |b| b.block_height)))
        }
        "getEpochInfo" => get_epoch_info(cluster, params),
        "getEpochSchedule" => get_epoch_schedule(cluster, params),
        "getLeaderSchedule" => get_leader_schedule(cluster, params),
        "getVoteAccounts" => get_vote_accounts(cluster, params),
        "getClusterNodes" => {
            params.count(0, 0)?;
            Ok(cluster_nodes(cluster))
        }
        "getHealth" => {
            params.count(0, 0)?;
            Ok(json!("ok"))
        }
        "getLatestBlockhash" => get_latest_blockhash(cluster, params),
        "getAccountInfo" => accounts::get_account_info(cluster, params),
        "getMultipleAccounts" => accounts::get_multiple_accounts(cluster, params),
        "getBalance" => accounts::get_balance(cluster, params),
        "getBlock" => blocks::get_block(cluster, params),
        "getBlocks" => blocks::get_blocks(cluster, params),
        "getBlocksWithLimit" => blocks::get_blocks_with_limit(cluster, params),
        "getBlockTime" => blocks::get_block_time(cluster, params),
        "getBlockProduction" => blocks::get_block_production(cluster, params),
        "getFirstAvailableBlock" | "minimumLedgerSlot" => {
            params.count(0, 0)?;
            Ok(json!(blocks::first_available_block(cluster)))
        }
        "getRecentPerformanceSamples" => blocks::get_recent_performance_samples(cluster, params),
        "getTransaction" => transactions::get_transaction(cluster, params),
        "getSignatureStatuses" => transactions::get_signature_statuses(cluster, params),
        "getSlotLeader" => leaders::get_slot_leader(cluster, params),
        "getSlotLeaders" => leaders::get_slot_leaders(cluster, params),
        "getIdentity" => {
            params.count(0, 0)?;
            Ok(json!({ "identity": leaders::rpc_identity(cluster).to_string() }))
        }
        "getInflationReward" => rewards::get_inflation_reward(cluster, params),
        "sendTransaction" => send_transaction(cluster, params, now_ms, outputs),
        "getVersion" => {
            params.count(0, 0)?;
            Ok(json!({ "solana-core": SOLANA_CORE_VERSION, "feature-set": FEATURE_SET }))
        }
        "getGenesisHash" => {
            params.count(0, 0)?;
            Ok(json!(cluster.genesis_hash().to_string()))
        }
        "getHighestSnapshotSlot" => {
            params.count(0, 0)?;
            Err(RpcError::new(-32008, "No snapshot"))
        }
        SUBMIT_BLOCK => submit_block(cluster, params, now_ms, outputs),
        PUBLISH_CONTACT_INFO => publish_contact_info(cluster, params, now_ms, outputs),
        towerlock_wire::votor::SEND_VOTOR_VOTE => {
            votor::send_votor_vote(cluster, params, now_ms, outputs)
        }
        towerlock_wire::votor::GET_VOTOR_LAST_VOTE => votor::get_votor_last_vote(cluster, params),
        _ => Err(RpcError::method_not_found()),
    }
}

fn get_epoch_info(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(0, 1)?;
    let config: CommitmentConfig = params.get(0)?.unwrap_or_default();
    let slot = commitment_slot(cluster, &config)?;
    let epochs = cluster.epoch_schedule();
    let bank = cluster.bank(slot);
    Ok(json!({
        "absoluteSlot": slot,
        "blockHeight": bank.map_or(0, |b| b.block_height),
        "epoch": epochs.epoch(slot),
        "slotIndex": epochs.slot_index(slot),
        "slotsInEpoch": epochs.slots_per_epoch,
        "transactionCount": bank.map(|b| b.transaction_count),
    }))
}

fn get_epoch_schedule(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(0, 0)?;
    let n = cluster.epoch_schedule().slots_per_epoch;
    Ok(json!({
        "slotsPerEpoch": n,
        "leaderScheduleSlotOffset": n,
        "warmup": false,
        "firstNormalEpoch": 0,
        "firstNormalSlot": 0,
    }))
}

fn get_latest_blockhash(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(0, 1)?;
    let config: CommitmentConfig = params.get(0)?.unwrap_or_default();
    let slot = commitment_slot(cluster, &config)?;
    let bank = cluster.bank(slot).expect("commitment banks are live");
    Ok(context(
        slot,
        json!({
            "blockhash": bank.blockhash.to_string(),
            "lastValidBlockHeight": bank.block_height + crate::core::cluster::MAX_BLOCKHASH_AGE,
        }),
    ))
}

/// [`SUBMIT_BLOCK`]: a leader's block for one of its slots.
fn submit_block(
    cluster: &mut Cluster,
    params: Params,
    now_ms: u64,
    outputs: &mut Outputs,
) -> Result<Value, RpcError> {
    params.count(1, 1)?;
    let block: SubmitBlock = params
        .get(0)?
        .ok_or_else(|| RpcError::invalid_params("invalid type: null, expected a block"))?;
    let (result, out) = cluster.submit_block(&block, now_ms);
    extend(outputs, out);
    result
        .map(|r| serde_json::to_value(r).expect("serializes"))
        .map_err(|e| RpcError::new(-32000, e.to_string()).with_data(json!(format!("{e:?}"))))
}

/// [`PUBLISH_CONTACT_INFO`]: a signed contact info for the gossip hub.
fn publish_contact_info(
    cluster: &mut Cluster,
    params: Params,
    now_ms: u64,
    outputs: &mut Outputs,
) -> Result<Value, RpcError> {
    params.count(1, 1)?;
    let contact: SignedContactInfo = params
        .get(0)?
        .ok_or_else(|| RpcError::invalid_params("invalid type: null, expected a contact info"))?;
    let (result, out) = cluster.publish_contact(contact, now_ms);
    extend(outputs, out);
    result
        .map(|_| json!(true))
        .map_err(|e| RpcError::new(-32000, e.to_string()))
}

fn extend(outputs: &mut Outputs, more: Outputs) {
    outputs.events.extend(more.events);
    outputs.notifications.extend(more.notifications);
}

fn get_leader_schedule(cluster: &mut Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(0, 2)?;
    #[derive(Default, Deserialize)]
    struct Config {
        identity: Option<String>,
        #[serde(flatten)]
        commitment: CommitmentConfigFlat,
    }
    #[derive(Default, Deserialize)]
    struct CommitmentConfigFlat {
        #[allow(dead_code)]
        commitment: Option<Commitment>,
    }
    // The first param is a slot, null, or the config.
    let (slot, config): (Option<u64>, Config) = match params.0.first() {
        Some(Value::Object(_)) => (None, params.get(0)?.unwrap_or_default()),
        _ => (params.get(0)?, params.get(1)?.unwrap_or_default()),
    };
    let _ = config.commitment;
    let slot = slot.unwrap_or_else(|| cluster.root());
    let epochs = cluster.epoch_schedule();
    let epoch = epochs.epoch(slot);
    if epoch > epochs.epoch(cluster.current_slot()) + 1 {
        return Ok(Value::Null);
    }
    let identity = config.identity.as_deref().map(parse_pubkey).transpose()?;
    let mut result = serde_json::Map::new();
    for (leader, slots) in cluster.leader_schedule(epoch).slots_by_leader() {
        if identity.is_none_or(|id| id == leader) {
            result.insert(leader.to_string(), json!(slots));
        }
    }
    Ok(Value::Object(result))
}

fn get_vote_accounts(cluster: &mut Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(0, 1)?;
    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Config {
        vote_pubkey: Option<String>,
        delinquent_slot_distance: Option<u64>,
        #[allow(dead_code)]
        keep_unstaked_delinquents: Option<bool>,
        #[serde(flatten)]
        commitment: CommitmentConfig,
    }
    let config: Config = params.get(0)?.unwrap_or_default();
    let filter = config
        .vote_pubkey
        .as_deref()
        .map(parse_pubkey)
        .transpose()?;
    let slot = commitment_slot(cluster, &config.commitment)?;
    let distance = config
        .delinquent_slot_distance
        .unwrap_or(DELINQUENT_SLOT_DISTANCE);
    let bank = cluster.bank(slot).expect("commitment banks are live");
    let is_current = |last_vote: u64| {
        if slot >= distance {
            last_vote > slot - distance
        } else {
            last_vote > 0
        }
    };
    let (mut current, mut delinquent) = (vec![], vec![]);
    let mut push = |vote: &Pubkey, entry: Value, last_vote: u64| {
        if filter.is_some_and(|f| f != *vote) {
            return;
        }
        if is_current(last_vote) {
            current.push(entry);
        } else {
            delinquent.push(entry);
        }
    };
    for ours in cluster.ours() {
        let Some(state) = bank.vote_accounts.get(&ours.vote_account) else {
            continue;
        };
        let last_vote = state.votes.back().map_or(0, |v| v.slot());
        let entry = vote_account_json(
            &ours.vote_account,
            &state.node_pubkey,
            ours.stake,
            (state.inflation_rewards_commission_bps / 100) as u8,
            &state.epoch_credits,
            last_vote,
            state.root_slot.unwrap_or(0),
        );
        push(&ours.vote_account, entry, last_vote);
    }
    for (v, votes) in cluster.synthetic().iter().zip(&bank.synthetic) {
        let last_vote = votes.tower.back().map_or(0, |l| l.slot());
        let entry = vote_account_json(
            &v.vote_account,
            &v.identity,
            v.stake,
            0,
            &votes.epoch_credits,
            last_vote,
            votes.root.unwrap_or(0),
        );
        push(&v.vote_account, entry, last_vote);
    }
    Ok(json!({ "current": current, "delinquent": delinquent }))
}

fn vote_account_json(
    vote: &Pubkey,
    node: &Pubkey,
    stake: u64,
    commission: u8,
    epoch_credits: &[(u64, u64, u64)],
    last_vote: u64,
    root: u64,
) -> Value {
    let credits = &epoch_credits[epoch_credits.len().saturating_sub(5)..];
    json!({
        "votePubkey": vote.to_string(),
        "nodePubkey": node.to_string(),
        "activatedStake": stake,
        "commission": commission,
        "epochVoteAccount": true,
        "epochCredits": credits.iter().map(|c| json!([c.0, c.1, c.2])).collect::<Vec<_>>(),
        "lastVote": last_vote,
        "rootSlot": root,
    })
}

fn cluster_nodes(cluster: &Cluster) -> Value {
    let shred_version = u16::from_le_bytes(
        cluster.genesis_hash().to_bytes()[..2]
            .try_into()
            .expect("two bytes"),
    );
    let mut nodes = vec![];
    let gossip = cluster.gossip().nodes();
    for (pubkey, contact) in &gossip {
        let a = &contact.info.addresses;
        nodes.push(json!({
            "pubkey": pubkey.to_string(),
            "gossip": a.gossip, "tvu": null, "tpu": a.tpu, "tpuQuic": null,
            "tpuForwards": null, "tpuForwardsQuic": null, "tpuVote": a.tpu_vote,
            "serveRepair": null, "rpc": a.rpc, "pubsub": a.pubsub,
            "version": contact.info.version, "featureSet": FEATURE_SET,
            "shredVersion": shred_version,
        }));
    }
    for v in cluster.synthetic() {
        if gossip.contains_key(&v.identity) {
            continue;
        }
        nodes.push(json!({
            "pubkey": v.identity.to_string(),
            "gossip": null, "tvu": null, "tpu": null, "tpuQuic": null,
            "tpuForwards": null, "tpuForwardsQuic": null, "tpuVote": null,
            "serveRepair": null, "rpc": null, "pubsub": null,
            "version": SOLANA_CORE_VERSION, "featureSet": FEATURE_SET,
            "shredVersion": shred_version,
        }));
    }
    Value::Array(nodes)
}

fn send_transaction(
    cluster: &mut Cluster,
    params: Params,
    now_ms: u64,
    outputs: &mut Outputs,
) -> Result<Value, RpcError> {
    let (tx, config) = decode_send(params)?;
    let parsed = vote_tx::parse(&tx);
    answer_send(
        cluster,
        PreparedVote { tx, config, parsed },
        now_ms,
        outputs,
    )
}

/// `sendTransaction`'s params: the decoded transaction and the config.
fn decode_send(
    params: Params,
) -> Result<(solana_transaction::Transaction, SendTransactionConfig), RpcError> {
    params.count(1, 2)?;
    let encoded: String = params
        .get(0)?
        .ok_or_else(|| RpcError::invalid_params("invalid type: null, expected a string"))?;
    let config: SendTransactionConfig = params.get(1)?.unwrap_or_default();
    if config.instance.as_ref().is_some_and(|i| i.len() > 64) {
        return Err(RpcError::invalid_params("instance id longer than 64 bytes"));
    }
    let bytes = match config.encoding.as_deref() {
        None | Some("base58") => bs58::decode(&encoded)
            .into_vec()
            .map_err(|e| RpcError::new(-32602, format!("invalid base58 encoding: {e:?}")))?,
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(&encoded)
            .map_err(|e| RpcError::new(-32602, format!("invalid base64 encoding: {e:?}")))?,
        Some(other) => {
            return Err(RpcError::invalid_params(format!(
                "unsupported encoding: {other}. Supported encodings: base58, base64"
            )))
        }
    };
    let tx = vote_tx::decode(&bytes).map_err(|e| RpcError::new(-32602, e.to_string()))?;
    Ok((tx, config))
}

/// Runs a decoded vote through the cluster; Solana's answer to it.
fn answer_send(
    cluster: &mut Cluster,
    vote: PreparedVote,
    now_ms: u64,
    outputs: &mut Outputs,
) -> Result<Value, RpcError> {
    let PreparedVote { tx, config, parsed } = vote;
    let (verdict, out) = cluster.receive_parsed_vote(&tx, parsed, config.instance, now_ms);
    extend(outputs, out);
    let signature = verdict.signature.to_string();
    match verdict.result {
        Ok(()) => Ok(json!(signature)),
        Err(Rejection::Malformed(m)) => Err(RpcError::new(-32602, m)),
        Err(e @ Rejection::Sanitize(_)) => Err(RpcError::new(-32602, e.to_string())),
        Err(_) if config.skip_preflight => Ok(json!(signature)),
        Err(Rejection::SignatureFailure) => Err(RpcError::new(
            -32003,
            "Transaction signature verification failure",
        )),
        Err(rejection) => {
            let vote_program = solana_vote_interface::program::id();
            let logs = match &rejection {
                Rejection::Instruction { failure, .. } => vec![
                    format!("Program {vote_program} invoke [1]"),
                    format!("Program {vote_program} failed: {failure}"),
                ],
                _ => vec![],
            };
            Err(RpcError::new(
                -32002,
                format!("Transaction simulation failed: {rejection}"),
            )
            .with_data(json!({
                "err": rejection.to_json(),
                "logs": logs,
                "accounts": null,
                "unitsConsumed": 2100,
                "returnData": null,
            })))
        }
    }
}
