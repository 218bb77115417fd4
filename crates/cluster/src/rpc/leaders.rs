//! `getSlotLeader`, `getSlotLeaders` and `getIdentity`.

use serde_json::{json, Value};
use solana_pubkey::Pubkey;

use super::{commitment_slot, CommitmentConfig, Params, RpcError};
use crate::core::Cluster;

/// `getSlotLeaders` returns at most this many leaders.
const MAX_SLOT_LEADERS: u64 = 5_000;

/// The identity of the node answering the cluster's RPC: the cluster speaks
/// as its first synthetic validator (an RPC node is a node of the cluster).
pub fn rpc_identity(cluster: &Cluster) -> Pubkey {
    cluster
        .synthetic()
        .first()
        .map_or_else(Pubkey::default, |v| v.identity)
}

pub(super) fn get_slot_leader(cluster: &mut Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(0, 1)?;
    let config: CommitmentConfig = params.get(0)?.unwrap_or_default();
    let slot = commitment_slot(cluster, &config)?;
    Ok(json!(cluster.leader_of(slot).to_string()))
}

pub(super) fn get_slot_leaders(cluster: &mut Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(2, 2)?;
    let start: u64 = params.required(0, "u64")?;
    let limit: u64 = params.required(1, "u64")?;
    if limit > MAX_SLOT_LEADERS {
        return Err(RpcError::params(format!(
            "Invalid limit; max {MAX_SLOT_LEADERS}"
        )));
    }
    let epochs = cluster.epoch_schedule();
    // Schedules exist up to the epoch after the current one.
    let last_known_epoch = epochs.epoch(cluster.current_slot()) + 1;
    let mut leaders = Vec::with_capacity(limit as usize);
    for slot in (start..).take(limit as usize) {
        let epoch = epochs.epoch(slot);
        if epoch > last_known_epoch {
            return Err(RpcError::params(format!(
                "Invalid slot range: leader schedule for epoch {epoch} is unavailable"
            )));
        }
        leaders.push(cluster.leader_of(slot).to_string());
    }
    Ok(json!(leaders))
}
