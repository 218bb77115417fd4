//! A node's health as agave's `getHealth` names it: what the node answers
//! about itself, and what `wait-for-restart-window` reads from it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// Behind the cluster by a known number of slots.
    Behind {
        slots: u64,
    },
    /// Not caught up yet, unhealthy without a known lag, or the call failed.
    Unknown,
}

impl Health {
    /// The node's judgement of itself: behind by more than `max_behind`
    /// slots, ok once caught up, unknown otherwise.
    pub fn judge(behind: Option<u64>, caught_up: bool, max_behind: u64) -> Self {
        match behind {
            Some(slots) if slots > max_behind => Health::Behind { slots },
            Some(_) if caught_up => Health::Ok,
            _ => Health::Unknown,
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Ok => write!(f, "ok"),
            Health::Behind { slots } => write!(f, "node behind by {slots} slots"),
            Health::Unknown => write!(f, "node health unknown"),
        }
    }
}
