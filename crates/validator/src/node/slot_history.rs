//! Reads the cluster's SlotHistory sysvar, as agave reads the root bank's.

use solana_pubkey::Pubkey;
use solana_slot_history::SlotHistory;
use towerlock_wire::client::{ClientError, RpcClient};

/// The SlotHistory sysvar's address.
pub const SLOT_HISTORY_ID: Pubkey =
    Pubkey::from_str_const("SysvarS1otHistory11111111111111111111111111");

/// The SlotHistory of the cluster's root bank.
pub async fn fetch(rpc: &RpcClient) -> Result<Box<SlotHistory>, ClientError> {
    let data = rpc
        .account_data(&SLOT_HISTORY_ID, "finalized")
        .await?
        .ok_or_else(|| ClientError::Decode("the cluster has no SlotHistory sysvar".into()))?;
    bincode::deserialize(&data)
        .map(Box::new)
        .map_err(|e| ClientError::Decode(format!("SlotHistory: {e}")))
}
