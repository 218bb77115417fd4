//! The cluster's SlotHistory: where a tower's votes below the replayed
//! banks stand, as agave anchors a tower restored after an outage.

use solana_slot_history::SlotHistory;

use super::{Action, Activity, NodeMachine};
use crate::node::decide::needs_slot_history;

impl NodeMachine {
    /// Asks for the SlotHistory when the fenced tower holds a vote the
    /// replay cannot place; until it comes, that vote keeps its lockout.
    pub(super) fn request_slot_history(&mut self) {
        let Activity::Fenced(fence) = &self.activity else {
            return;
        };
        if !self.history_requested && needs_slot_history(&fence.tower, &self.forks) {
            self.history_requested = true;
            self.actions.push_back(Action::FetchSlotHistory);
        }
    }

    pub(super) fn on_slot_history(&mut self, result: Result<Box<SlotHistory>, String>) {
        self.history_requested = false;
        match result {
            Ok(history) => self.forks.set_slot_history(*history),
            // Asked again at the next vote; meanwhile the lockouts hold.
            Err(err) => tracing::warn!(error = %err, "cannot read the SlotHistory"),
        }
    }
}
