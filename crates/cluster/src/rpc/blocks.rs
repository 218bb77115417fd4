//! The ledger as agave's RPC shows it: `getBlock`, `getBlocks`,
//! `getBlocksWithLimit`, `getBlockTime`, `getFirstAvailableBlock`,
//! `minimumLedgerSlot`, `getBlockProduction`, `getRecentPerformanceSamples`.
//!
//! The cluster keeps the banks of the last [`MAX_SLOT_HASHES`] rooted slots
//! and every live fork; that is its ledger, and older blocks are "cleaned up"
//! as on a node whose ledger was trimmed.
//!
//! [`MAX_SLOT_HASHES`]: crate::core::cluster::MAX_SLOT_HASHES

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::transactions::{transaction_with_meta, TransactionEncoding};
use super::{at_least_confirmed, commitment_slot, context, CommitmentConfig, Params, RpcError};
use crate::core::Cluster;

/// `getBlocks` spans at most this many slots, `getBlocksWithLimit` returns
/// at most this many.
const MAX_BLOCKS_RANGE: u64 = 500_000;
/// `getRecentPerformanceSamples` returns at most this many.
const MAX_PERFORMANCE_SAMPLES: usize = 720;
/// agave takes a performance sample every minute.
const SAMPLE_PERIOD_MS: u64 = 60_000;

/// The slots of the fork ending at `tip`, oldest first, as far down as banks
/// are kept.
pub fn chain(cluster: &Cluster, tip: u64) -> Vec<u64> {
    let mut slots = vec![];
    let mut slot = tip;
    while let Some(bank) = cluster.bank(slot) {
        slots.push(slot);
        if bank.parent == slot {
            break;
        }
        slot = bank.parent;
    }
    slots.reverse();
    slots
}

/// The oldest block the cluster still holds.
pub fn first_available_block(cluster: &Cluster) -> u64 {
    cluster.banks().keys().next().copied().unwrap_or(0)
}

fn block_not_available(slot: u64) -> RpcError {
    RpcError::new(-32004, format!("Block not available for slot {slot}"))
}

/// The bank of block `slot` as seen at commitment slot `at`, or agave's
/// error for a block that is cleaned up, skipped or not there yet.
fn block_at(cluster: &Cluster, slot: u64, at: u64) -> Result<u64, RpcError> {
    let first = first_available_block(cluster);
    if slot < first {
        return Err(RpcError::new(
            -32001,
            format!(
                "Block {slot} cleaned up, does not exist on node. First available block: {first}"
            ),
        ));
    }
    if slot > at {
        return Err(block_not_available(slot));
    }
    if cluster.bank(slot).is_some() && cluster.is_ancestor_or_equal(slot, at) {
        return Ok(slot);
    }
    if slot <= cluster.root() {
        return Err(RpcError::new(
            -32007,
            format!("Slot {slot} was skipped, or missing due to ledger jump to recent snapshot"),
        ));
    }
    Err(block_not_available(slot))
}

pub(super) fn get_block(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(1, 2)?;
    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Config {
        encoding: Option<TransactionEncoding>,
        transaction_details: Option<String>,
        rewards: Option<bool>,
        max_supported_transaction_version: Option<u8>,
        #[serde(flatten)]
        commitment: CommitmentConfig,
    }
    let slot: u64 = params.required(0, "u64")?;
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
    let at = commitment_slot(cluster, &config.commitment)?;
    let bank = cluster.bank(block_at(cluster, slot, at)?).expect("kept");
    let previous = cluster.bank(bank.parent).map_or_else(
        || solana_hash::Hash::default().to_string(),
        |parent| parent.blockhash.to_string(),
    );
    let mut block = json!({
        "blockHeight": bank.block_height,
        "blockTime": bank.time_ms / 1000,
        "blockhash": bank.blockhash.to_string(),
        "parentSlot": bank.parent,
        "previousBlockhash": previous,
    });
    let versioned = config.max_supported_transaction_version.is_some();
    match config.transaction_details.as_deref().unwrap_or("full") {
        "full" => {
            block["transactions"] = bank
                .transactions
                .iter()
                .map(|tx| transaction_with_meta(cluster, bank, tx, encoding, versioned))
                .collect();
        }
        "signatures" => {
            block["signatures"] = bank
                .transactions
                .iter()
                .filter_map(|tx| tx.signatures.first().map(ToString::to_string))
                .collect();
        }
        "none" => {}
        other => {
            return Err(RpcError::invalid_params(format!(
            "unknown variant `{other}`, expected one of `full`, `signatures`, `none`, `accounts`"
        )))
        }
    }
    if config.rewards.unwrap_or(true) {
        // The cluster pays no fees or rewards to leaders.
        block["rewards"] = json!([]);
    }
    Ok(block)
}

/// `getBlocks`' and `getBlocksWithLimit`'s answer: the blocks from `start`
/// on the fork of the commitment slot, up to `end`, at most `limit`.
fn blocks(cluster: &Cluster, at: u64, start: u64, end: u64, limit: usize) -> Value {
    json!(chain(cluster, at)
        .into_iter()
        .filter(|slot| (start..=end).contains(slot))
        .take(limit)
        .collect::<Vec<_>>())
}

pub(super) fn get_blocks(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(1, 3)?;
    let start: u64 = params.required(0, "u64")?;
    // The second param is the end slot or the config.
    let (end, config): (Option<u64>, CommitmentConfig) = match params.0.get(1) {
        Some(Value::Object(_)) => (None, params.get(1)?.unwrap_or_default()),
        _ => (params.get(1)?, params.get(2)?.unwrap_or_default()),
    };
    at_least_confirmed(&config)?;
    let at = commitment_slot(cluster, &config)?;
    let end = end
        .unwrap_or(start.saturating_add(MAX_BLOCKS_RANGE))
        .min(at);
    if end.saturating_sub(start) > MAX_BLOCKS_RANGE {
        return Err(RpcError::params(format!(
            "Slot range too large; max {MAX_BLOCKS_RANGE}"
        )));
    }
    Ok(blocks(cluster, at, start, end, usize::MAX))
}

pub(super) fn get_blocks_with_limit(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(2, 3)?;
    let start: u64 = params.required(0, "u64")?;
    let limit: u64 = params.required(1, "usize")?;
    let config: CommitmentConfig = params.get(2)?.unwrap_or_default();
    if limit > MAX_BLOCKS_RANGE {
        return Err(RpcError::params(format!(
            "Limit too large; max {MAX_BLOCKS_RANGE}"
        )));
    }
    at_least_confirmed(&config)?;
    let at = commitment_slot(cluster, &config)?;
    Ok(blocks(cluster, at, start, u64::MAX, limit as usize))
}

pub(super) fn get_block_time(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(1, 1)?;
    let slot: u64 = params.required(0, "u64")?;
    let confirmed = cluster.confirmed().max(cluster.root());
    let bank = cluster
        .bank(block_at(cluster, slot, confirmed)?)
        .expect("kept");
    Ok(json!(bank.time_ms / 1000))
}

pub(super) fn get_block_production(
    cluster: &mut Cluster,
    params: Params,
) -> Result<Value, RpcError> {
    params.count(0, 1)?;
    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Range {
        first_slot: u64,
        last_slot: Option<u64>,
    }
    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Config {
        identity: Option<String>,
        range: Option<Range>,
        #[serde(flatten)]
        commitment: CommitmentConfig,
    }
    let config: Config = params.get(0)?.unwrap_or_default();
    let identity = config
        .identity
        .as_deref()
        .map(super::parse_pubkey)
        .transpose()?;
    let at = commitment_slot(cluster, &config.commitment)?;
    let epochs = cluster.epoch_schedule();
    let (first, last) = match &config.range {
        Some(range) => (range.first_slot, range.last_slot.unwrap_or(at)),
        None => (epochs.first_slot(epochs.epoch(at)), at),
    };
    if last < first {
        return Err(RpcError::params(format!(
            "lastSlot, {last}, cannot be less than firstSlot, {first}"
        )));
    }
    if last > at {
        return Err(RpcError::params(format!(
            "lastSlot, {last}, cannot be greater than slot, {at}"
        )));
    }
    // Only the blocks still held can be counted.
    let first = first.max(first_available_block(cluster));
    let produced: std::collections::HashSet<u64> = chain(cluster, at).into_iter().collect();
    let mut by_identity: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for slot in first..=last {
        let leader = cluster.leader_of(slot);
        if identity.is_some_and(|id| id != leader) {
            continue;
        }
        let entry = by_identity.entry(leader.to_string()).or_default();
        entry.0 += 1;
        entry.1 += u64::from(produced.contains(&slot));
    }
    Ok(context(
        at,
        json!({
            "byIdentity": by_identity
                .into_iter()
                .map(|(id, (leader_slots, blocks))| (id, json!([leader_slots, blocks])))
                .collect::<serde_json::Map<_, _>>(),
            "range": { "firstSlot": first, "lastSlot": last },
        }),
    ))
}

/// One performance sample: `slot` ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerformanceSample {
    pub slot: u64,
    pub num_slots: u64,
    pub num_transactions: u64,
    pub period_secs: u64,
}

/// agave's minute-long performance samples over `banks` (slot, time in ms,
/// cumulative transaction count; oldest first), newest sample first. Only
/// whole minutes count.
pub fn performance_samples(banks: &[(u64, u64, u64)]) -> Vec<PerformanceSample> {
    let mut samples = vec![];
    let Some(&(mut start_slot, mut start_ms, mut start_count)) = banks.first() else {
        return samples;
    };
    for &(slot, time_ms, count) in &banks[1..] {
        if time_ms >= start_ms + SAMPLE_PERIOD_MS {
            samples.push(PerformanceSample {
                slot,
                num_slots: slot - start_slot,
                num_transactions: count - start_count,
                period_secs: (time_ms - start_ms) / 1000,
            });
            (start_slot, start_ms, start_count) = (slot, time_ms, count);
        }
    }
    samples.reverse();
    samples
}

pub(super) fn get_recent_performance_samples(
    cluster: &Cluster,
    params: Params,
) -> Result<Value, RpcError> {
    params.count(0, 1)?;
    let limit: usize = params.get(0)?.unwrap_or(MAX_PERFORMANCE_SAMPLES);
    if limit > MAX_PERFORMANCE_SAMPLES {
        return Err(RpcError::params(format!(
            "Invalid limit; max {MAX_PERFORMANCE_SAMPLES}"
        )));
    }
    let banks: Vec<(u64, u64, u64)> = chain(cluster, cluster.tip())
        .into_iter()
        .filter_map(|slot| cluster.bank(slot))
        .map(|b| (b.slot, b.time_ms, b.transaction_count))
        .collect();
    Ok(json!(performance_samples(&banks)
        .into_iter()
        .take(limit)
        .map(|s| json!({
            "slot": s.slot,
            "numSlots": s.num_slots,
            "numTransactions": s.num_transactions,
            "numNonVoteTransactions": 0,
            "samplePeriodSecs": s.period_secs,
        }))
        .collect::<Vec<_>>()))
}
