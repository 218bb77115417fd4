//! `getInflationReward`: the cluster pays no inflation, so every address
//! gets `null` for an epoch whose rewards block exists, and agave's error
//! for an epoch not finished yet.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{commitment_slot, parse_pubkey, CommitmentConfig, Params, RpcError};
use crate::core::Cluster;

pub(super) fn get_inflation_reward(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(1, 2)?;
    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Config {
        epoch: Option<u64>,
        #[serde(flatten)]
        commitment: CommitmentConfig,
    }
    let addresses: Vec<String> = params.required(0, "a sequence")?;
    for address in &addresses {
        parse_pubkey(address)?;
    }
    let config: Config = params.get(1)?.unwrap_or_default();
    let slot = commitment_slot(cluster, &config.commitment)?;
    let epochs = cluster.epoch_schedule();
    let epoch = config
        .epoch
        .unwrap_or_else(|| epochs.epoch(slot).saturating_sub(1));
    // Rewards are paid in the first block of the next epoch.
    let rewards_slot = epochs.first_slot(epoch + 1);
    if rewards_slot > slot {
        return Err(RpcError::new(
            -32004,
            format!("Block not available for slot {rewards_slot}"),
        ));
    }
    Ok(json!(vec![Value::Null; addresses.len()]))
}
