//! The identity's leader slots in the current epoch.

use std::collections::BTreeSet;

use serde_json::json;
use solana_pubkey::Pubkey;
use towerlock_tower::Slot;
use towerlock_wire::client::{ClientError, RpcClient};

/// Leader slots of one identity within one epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderSchedule {
    pub identity: Pubkey,
    pub first_slot: Slot,
    /// One past the epoch's last slot.
    pub end_slot: Slot,
    pub slots: BTreeSet<Slot>,
}

impl LeaderSchedule {
    /// Whether this schedule answers for `identity` at `slot`.
    pub fn covers(&self, identity: &Pubkey, slot: Slot) -> bool {
        self.identity == *identity && (self.first_slot..self.end_slot).contains(&slot)
    }

    pub fn is_leader(&self, slot: Slot) -> bool {
        self.slots.contains(&slot)
    }

    /// Builds the schedule from `getLeaderSchedule`'s relative indices.
    pub fn from_relative(
        identity: Pubkey,
        first_slot: Slot,
        slots_in_epoch: u64,
        relative: &[u64],
    ) -> Self {
        Self {
            identity,
            first_slot,
            end_slot: first_slot + slots_in_epoch,
            slots: relative.iter().map(|i| first_slot + i).collect(),
        }
    }

    /// Asks the cluster for the schedule of the epoch containing `slot`.
    pub async fn fetch(rpc: &RpcClient, identity: Pubkey, slot: Slot) -> Result<Self, ClientError> {
        let schedule = rpc.call("getEpochSchedule", json!([])).await?;
        let slots_per_epoch = schedule["slotsPerEpoch"].as_u64().unwrap_or(8192).max(1);
        // The local cluster has no warmup: every epoch has the same length.
        let first_slot = slot - slot % slots_per_epoch;
        let leaders = rpc
            .call(
                "getLeaderSchedule",
                json!([slot, { "identity": identity.to_string() }]),
            )
            .await?;
        let relative: Vec<u64> = leaders[identity.to_string()]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default();
        Ok(Self::from_relative(
            identity,
            first_slot,
            slots_per_epoch,
            &relative,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_indices_become_absolute_slots() {
        let id = Pubkey::new_unique();
        let s = LeaderSchedule::from_relative(id, 64, 32, &[0, 1, 2, 3, 12]);
        assert!(s.is_leader(64) && s.is_leader(76) && !s.is_leader(65 + 12));
        assert!(s.covers(&id, 64) && s.covers(&id, 95) && !s.covers(&id, 96));
        assert!(!s.covers(&Pubkey::new_unique(), 70));
    }
}
