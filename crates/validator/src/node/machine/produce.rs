//! Leader slots: the schedule, the fence before each block, the block.

use solana_hash::Hash;
use towerlock_storage::{LeaderSlotFenced, StorageError};
use towerlock_tower::Slot;
use towerlock_wire::api::SubmitBlock;

use super::{Action, Activity, InFlight, NodeMachine, OpId};
use crate::node::schedule::LeaderSchedule;

impl NodeMachine {
    /// Fences the leader slot in progress when it is ours and was never
    /// fenced before (by this instance or an earlier holder).
    pub(super) fn produce(&mut self) {
        let Some(slot) = self.to_produce else {
            return;
        };
        let identity = self.identity();
        let Activity::Fenced(fence) = &self.activity else {
            return;
        };
        if self.forks.get(slot).is_some() || self.produced.get(&identity) >= Some(&slot) {
            self.to_produce = None;
            return;
        }
        if !self.schedule.covers(&identity, slot) {
            if !self.schedule_requested {
                self.schedule_requested = true;
                self.actions
                    .push_back(Action::FetchLeaderSchedule { identity, slot });
            }
            return;
        }
        self.to_produce = None;
        if !self.schedule.is_leader(slot) {
            return;
        }
        let token = fence.token.clone();
        let op = self.next_op();
        self.in_flight = Some(InFlight::Fence { op, slot });
        self.actions
            .push_back(Action::FenceLeaderSlot { op, token, slot });
    }

    pub(super) fn on_leader_schedule(&mut self, result: Result<LeaderSchedule, String>) {
        self.schedule_requested = false;
        match result {
            Ok(schedule) => {
                let identity = self.identity();
                if self
                    .to_produce
                    .is_some_and(|slot| !schedule.covers(&identity, slot))
                {
                    self.to_produce = None;
                }
                self.schedule = schedule;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the leader schedule");
                self.to_produce = None;
            }
        }
    }

    pub(super) fn on_leader_fenced(
        &mut self,
        op: OpId,
        result: Result<LeaderSlotFenced, StorageError>,
    ) {
        let Some(InFlight::Fence { slot, .. }) = self
            .in_flight
            .take_if(|f| matches!(f, InFlight::Fence { op: o, .. } if *o == op))
        else {
            return;
        };
        match result {
            Ok(receipt) => {
                self.storage_answers();
                self.submit(slot, receipt);
            }
            Err(err) => {
                if err.is_unavailable() {
                    self.counters.skipped += 1;
                }
                self.storage_failed(err);
            }
        }
    }

    /// The block for a fenced slot: from here on the slot is ours or lost,
    /// never fenced or submitted again (a retry could be a second block).
    fn submit(&mut self, slot: Slot, receipt: LeaderSlotFenced) {
        let identity = self.identity();
        if receipt.identity() != identity || receipt.slot() != slot {
            // A receipt for another identity or slot proves nothing here.
            self.counters.skipped += 1;
            return;
        }
        self.produced.insert(identity, slot);
        // Build on our own fork: the vote just made (or the newest bank
        // descending from it).
        let parent = match &self.activity {
            Activity::Fenced(fence) => fence
                .tower
                .last_voted_slot()
                .and_then(|s| self.forks.newest_descendant(s)),
            _ => None,
        }
        .unwrap_or(self.forks.tip);
        let block = SubmitBlock::new_signed(
            &self.identity,
            slot,
            parent,
            self.block_id(&receipt),
            &self.instance,
        );
        self.actions.push_back(Action::SubmitBlock(block));
    }

    /// A block id unique to this fenced slot: the instance, the slot and
    /// the revision of the fence write.
    fn block_id(&self, receipt: &LeaderSlotFenced) -> Hash {
        let mut id = [0u8; 32];
        let instance = self.instance.as_bytes();
        let n = instance.len().min(16);
        id[..n].copy_from_slice(&instance[..n]);
        id[16..24].copy_from_slice(&receipt.slot().to_le_bytes());
        id[24..].copy_from_slice(&receipt.revision().to_le_bytes());
        Hash::new_from_array(id)
    }

    pub(super) fn on_block_submitted(&mut self, slot: Slot, accepted: bool) {
        if accepted {
            self.counters.produced += 1;
            tracing::debug!(slot, "produced a block");
        } else {
            self.counters.skipped += 1;
            tracing::warn!(slot, "block not accepted");
        }
    }
}
