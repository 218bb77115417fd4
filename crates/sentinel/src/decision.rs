//! The decision, without IO: given one check's view of the cluster, the
//! active node's vote, the local node and the fence, is it time to promote
//! the local node?
//!
//! A check is **bad** when the cluster's slot advanced since the previous
//! check, the identity's last vote (in the vote account, at processed
//! commitment) did not, and the vote lags the slot by at least
//! [`Params::min_vote_lag`] slots. A check where the slot did not advance
//! counts neither way (a skipped slot, or two checks in one slot); a check
//! where the vote advanced resets the count. After [`Params::failures`]
//! consecutive bad checks (twice as many while the active node's own
//! `getHealth` still answers `ok`) the decision is to promote, unless a veto
//! holds, checked in this order:
//!
//! 1. no fence: neither etcd nor a `--fence-command` ([`Veto::NoFence`]);
//! 2. the local node is not caught up ([`Veto::LocalNotCaughtUp`]);
//! 3. a failover less than [`Params::cooldown`] ago ([`Veto::Cooldown`]);
//! 4. a promotion is already running ([`Veto::PromotionInFlight`]);
//! 5. the last promotion failed and its backoff has not passed
//!    ([`Veto::Backoff`]);
//! 6. with `--respect-leader-slots`, the identity leads within
//!    [`Params::leader_guard_slots`] slots ([`Veto::LeaderSlotSoon`]).
//!
//! The cluster's slot not advancing for [`Params::cluster_stall`] is a veto
//! of its own ([`Decision::ClusterStalled`]) that also resets the count:
//! nobody votes on a stalled cluster, so a stalled vote proves nothing. A
//! fence that moved to another holder resets the count and counts as a
//! failover for the cooldown. Time is a number of milliseconds the caller
//! passes in; nothing here reads a clock.

use std::fmt;

use serde::Serialize;
pub use towerlock_validator::health::Health;

/// The operator's settings, as the decision needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Consecutive bad checks before a promotion.
    pub failures: u32,
    /// A bad check needs the vote to lag the cluster's slot by this much.
    pub min_vote_lag: u64,
    /// No advance of the cluster's slot for this long: stalled (ms).
    pub cluster_stall_ms: u64,
    /// No promotion within this long of the last failover (ms).
    pub cooldown_ms: u64,
    /// With `Some(n)`: no promotion while the identity leads within `n` slots.
    pub leader_guard_slots: Option<u64>,
    /// Whether a fence protects the promotion (etcd, or a fence command).
    pub fenced: bool,
    /// First backoff after a failed promotion (ms); doubles up to
    /// [`Params::backoff_max_ms`].
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            failures: DEFAULT_FAILURES,
            min_vote_lag: 2,
            cluster_stall_ms: 2_000,
            cooldown_ms: 60_000,
            leader_guard_slots: None,
            fenced: true,
            backoff_min_ms: 1_000,
            backoff_max_ms: 30_000,
        }
    }
}

/// Consecutive bad checks before a promotion, by default (see the README for
/// why: detection time against false promotions).
pub const DEFAULT_FAILURES: u32 = 3;

/// The identity's vote account, as `getVoteAccounts` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VoteView {
    pub last_vote: u64,
    pub delinquent: bool,
}

/// The fence in etcd, read without taking it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FenceView {
    /// The holder's instance id (`None`: nobody ever took it).
    pub holder: Option<String>,
    /// The stored tower's last vote.
    pub tower_last_vote: Option<u64>,
}

/// One check's view. `None` means "could not be read" unless said otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// When the check ran (ms, any origin, never decreasing).
    pub at_ms: u64,
    /// The cluster's slot (`getSlot`, processed).
    pub cluster_slot: Option<u64>,
    /// The identity's vote account.
    pub vote: Option<VoteView>,
    /// Whether the identity is in gossip (`getClusterNodes`).
    pub in_gossip: Option<bool>,
    /// The active node's own `getHealth`; `None`: not configured.
    #[serde(skip)]
    pub primary_health: Option<Health>,
    /// The local node's `getHealth`.
    #[serde(skip)]
    pub local_health: Health,
    /// The local node already runs as the identity.
    pub local_active: bool,
    /// The fence; `None` without etcd or when the read failed.
    pub fence: Option<FenceView>,
    /// The identity's next leader slot, when looked up.
    pub next_leader_slot: Option<u64>,
}

/// What to do after a check.
#[must_use]
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The local node runs as the identity: nothing to watch.
    LocalActive,
    /// The cluster or the vote account could not be read: no judgement.
    Blind { what: &'static str },
    /// The cluster's slot has not advanced for `for_ms`.
    ClusterStalled { slot: u64, for_ms: u64 },
    /// The active node votes (or the slot did not move since the last check).
    Healthy { last_vote: u64, slot: u64 },
    /// Bad checks so far, fewer than needed.
    Suspect {
        bad: u32,
        needed: u32,
        detection: Detection,
    },
    /// Enough bad checks, but a veto holds.
    Vetoed { veto: Veto, detection: Detection },
    /// Promote the local node now.
    Promote { detection: Detection },
}

/// What the bad checks saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Detection {
    /// The identity's last vote, stalled.
    pub last_vote: u64,
    /// The cluster's slot.
    pub slot: u64,
    /// Consecutive bad checks.
    pub bad: u32,
    /// When the first of them ran (ms).
    pub since_ms: u64,
    /// The stored tower still advanced during them: the active node still
    /// stores votes that do not land (cut off from the cluster?).
    pub tower_advancing: bool,
}

/// Why not promote although the vote stalled.
#[derive(Debug, Clone, PartialEq)]
pub enum Veto {
    /// Neither the etcd fence nor a `--fence-command` guards a promotion.
    NoFence,
    /// The local node is not caught up.
    LocalNotCaughtUp { health: Health },
    /// The last failover was `ago_ms` ago.
    Cooldown { ago_ms: u64, cooldown_ms: u64 },
    /// A promotion is running.
    PromotionInFlight,
    /// The last promotion failed; the next try is in `retry_in_ms`.
    Backoff { retry_in_ms: u64 },
    /// The identity leads at `slot`, `in_slots` from now.
    LeaderSlotSoon { slot: u64, in_slots: u64 },
}

/// A [`Decision`]'s variant, without its figures (for metrics and the
/// timeline's change detection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    LocalActive,
    Blind,
    ClusterStalled,
    Healthy,
    Suspect,
    Vetoed,
    Promote,
}

impl State {
    pub const ALL: [State; 7] = [
        State::LocalActive,
        State::Blind,
        State::ClusterStalled,
        State::Healthy,
        State::Suspect,
        State::Vetoed,
        State::Promote,
    ];

    pub fn name(self) -> &'static str {
        match self {
            State::LocalActive => "local_active",
            State::Blind => "blind",
            State::ClusterStalled => "cluster_stalled",
            State::Healthy => "healthy",
            State::Suspect => "suspect",
            State::Vetoed => "vetoed",
            State::Promote => "promote",
        }
    }
}

impl Decision {
    pub fn state(&self) -> State {
        match self {
            Decision::LocalActive => State::LocalActive,
            Decision::Blind { .. } => State::Blind,
            Decision::ClusterStalled { .. } => State::ClusterStalled,
            Decision::Healthy { .. } => State::Healthy,
            Decision::Suspect { .. } => State::Suspect,
            Decision::Vetoed { .. } => State::Vetoed,
            Decision::Promote { .. } => State::Promote,
        }
    }

    /// Whether the check counted as bad.
    pub fn is_bad(&self) -> bool {
        matches!(
            self,
            Decision::Suspect { .. } | Decision::Vetoed { .. } | Decision::Promote { .. }
        )
    }
}

/// The sentinel's memory between checks, and the decision.
#[derive(Debug, Clone)]
pub struct Detector {
    params: Params,
    /// The previous check's slot and the highest last vote seen.
    prev: Option<(u64, u64)>,
    /// The highest slot seen, and when it was first seen.
    slot_seen: Option<(u64, u64)>,
    bad: u32,
    bad_since_ms: u64,
    /// The stored tower's last vote when the bad checks began.
    tower_at_start: Option<u64>,
    tower_advancing: bool,
    /// The fence holder last read (`Some(None)`: nobody held it).
    holder: Option<Option<String>>,
    last_failover_ms: Option<u64>,
    in_flight: bool,
    failed_attempts: u32,
    retry_at_ms: Option<u64>,
}

impl Detector {
    pub fn new(params: Params) -> Self {
        Self {
            params,
            prev: None,
            slot_seen: None,
            bad: 0,
            bad_since_ms: 0,
            tower_at_start: None,
            tower_advancing: false,
            holder: None,
            last_failover_ms: None,
            in_flight: false,
            failed_attempts: 0,
            retry_at_ms: None,
        }
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Absorbs one check and decides.
    pub fn observe(&mut self, obs: &Observation) -> Decision {
        self.note_fence(obs);
        if obs.local_active {
            self.reset();
            return Decision::LocalActive;
        }
        let (Some(slot), Some(vote)) = (obs.cluster_slot, obs.vote) else {
            let what = if obs.cluster_slot.is_none() {
                "the cluster's slot"
            } else {
                "the identity's vote account"
            };
            return Decision::Blind { what };
        };
        let advanced = self.note_slot(slot, obs.at_ms);
        // The highest vote seen: a vote read from a bank newer than the
        // slot read just before it must not make the next check look stalled.
        let best = self
            .prev
            .map_or(vote.last_vote, |(_, v)| v.max(vote.last_vote));
        let prev = self.prev.replace((slot, best));
        if !advanced {
            let (first, since) = self.slot_seen.unwrap_or((slot, obs.at_ms));
            let for_ms = obs.at_ms.saturating_sub(since);
            if for_ms >= self.params.cluster_stall_ms {
                self.reset();
                return Decision::ClusterStalled {
                    slot: first,
                    for_ms,
                };
            }
            return self.judge(obs, slot, vote);
        }
        let vote_advanced = prev.is_none_or(|(_, prev_vote)| best > prev_vote);
        let lag = slot.saturating_sub(best);
        if vote_advanced || lag < self.params.min_vote_lag {
            self.reset();
        } else {
            if self.bad == 0 {
                self.bad_since_ms = obs.at_ms;
                self.tower_at_start = tower_last_vote(obs);
                self.tower_advancing = false;
            }
            self.bad += 1;
            if tower_last_vote(obs) > self.tower_at_start {
                self.tower_advancing = true;
            }
        }
        self.judge(obs, slot, vote)
    }

    /// The decision from the count so far.
    fn judge(&self, obs: &Observation, slot: u64, vote: VoteView) -> Decision {
        if self.bad == 0 {
            return Decision::Healthy {
                last_vote: vote.last_vote,
                slot,
            };
        }
        let detection = Detection {
            last_vote: vote.last_vote,
            slot,
            bad: self.bad,
            since_ms: self.bad_since_ms,
            tower_advancing: self.tower_advancing,
        };
        let needed = self.needed(obs);
        if self.bad < needed {
            return Decision::Suspect {
                bad: self.bad,
                needed,
                detection,
            };
        }
        match self.veto(obs, slot) {
            Some(veto) => Decision::Vetoed { veto, detection },
            None => Decision::Promote { detection },
        }
    }

    /// Bad checks needed: doubled while the active node says it is
    /// healthy, and doubled again while its stored tower still advances (it
    /// is alive and voting: its votes may only be late, or it is cut off
    /// from the cluster — worth a failover, on more evidence).
    fn needed(&self, obs: &Observation) -> u32 {
        let mut needed = self.params.failures.max(1);
        if obs.primary_health == Some(Health::Ok) {
            needed = needed.saturating_mul(2);
        }
        if self.tower_advancing {
            needed = needed.saturating_mul(2);
        }
        needed
    }

    fn veto(&self, obs: &Observation, slot: u64) -> Option<Veto> {
        let now = obs.at_ms;
        if !self.params.fenced {
            return Some(Veto::NoFence);
        }
        if obs.local_health != Health::Ok {
            return Some(Veto::LocalNotCaughtUp {
                health: obs.local_health,
            });
        }
        if let Some(at) = self.last_failover_ms {
            let ago_ms = now.saturating_sub(at);
            if ago_ms < self.params.cooldown_ms {
                return Some(Veto::Cooldown {
                    ago_ms,
                    cooldown_ms: self.params.cooldown_ms,
                });
            }
        }
        if self.in_flight {
            return Some(Veto::PromotionInFlight);
        }
        if let Some(retry_at) = self.retry_at_ms.filter(|&t| t > now) {
            return Some(Veto::Backoff {
                retry_in_ms: retry_at - now,
            });
        }
        let guard = self.params.leader_guard_slots?;
        let next = obs.next_leader_slot?;
        let in_slots = next.checked_sub(slot)?;
        (in_slots <= guard).then_some(Veto::LeaderSlotSoon {
            slot: next,
            in_slots,
        })
    }

    /// Records the slot; whether it advanced past every slot seen before.
    fn note_slot(&mut self, slot: u64, at_ms: u64) -> bool {
        match self.slot_seen {
            Some((seen, _)) if slot <= seen => false,
            _ => {
                self.slot_seen = Some((slot, at_ms));
                true
            }
        }
    }

    /// A fence taken by a new holder — after another holder, or after
    /// nobody held it (an orderly exit released it, or a first start) — is
    /// a failover: the count starts over and the cooldown runs from now.
    fn note_fence(&mut self, obs: &Observation) {
        let Some(fence) = obs.fence.as_ref() else {
            return;
        };
        let holder = fence.holder.clone();
        if let Some(previous) = self.holder.replace(holder.clone()) {
            if holder.is_some() && previous != holder {
                self.last_failover_ms = Some(obs.at_ms);
                self.reset();
            }
        }
    }

    fn reset(&mut self) {
        self.bad = 0;
        self.tower_advancing = false;
    }

    /// The caller starts the promotion the last decision asked for.
    pub fn promotion_started(&mut self) {
        self.in_flight = true;
    }

    /// The promotion succeeded at `at_ms`: the cooldown starts.
    pub fn promotion_succeeded(&mut self, at_ms: u64) {
        self.in_flight = false;
        self.failed_attempts = 0;
        self.retry_at_ms = None;
        self.last_failover_ms = Some(at_ms);
        self.reset();
    }

    /// A dry run "promoted" at `at_ms`: the cooldown starts, nothing else.
    pub fn dry_run_promoted(&mut self, at_ms: u64) {
        self.last_failover_ms = Some(at_ms);
        self.reset();
    }

    /// The promotion failed at `at_ms`; returns the backoff before the next
    /// try (doubling from [`Params::backoff_min_ms`]).
    pub fn promotion_failed(&mut self, at_ms: u64) -> u64 {
        self.in_flight = false;
        let shift = self.failed_attempts.min(16);
        self.failed_attempts = self.failed_attempts.saturating_add(1);
        let backoff = self
            .params
            .backoff_min_ms
            .saturating_mul(1 << shift)
            .min(self.params.backoff_max_ms);
        self.retry_at_ms = Some(at_ms.saturating_add(backoff));
        backoff
    }
}

fn tower_last_vote(obs: &Observation) -> Option<u64> {
    obs.fence.as_ref().and_then(|f| f.tower_last_vote)
}

impl fmt::Display for Veto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Veto::NoFence => write!(
                f,
                "no fence: without --etcd-* flags a promotion needs a --fence-command that exits 0"
            ),
            Veto::LocalNotCaughtUp { health } => {
                write!(f, "the local node is not caught up ({health})")
            }
            Veto::Cooldown {
                ago_ms,
                cooldown_ms,
            } => write!(
                f,
                "the last failover was {:.1} s ago (cooldown {:.1} s)",
                *ago_ms as f64 / 1000.0,
                *cooldown_ms as f64 / 1000.0
            ),
            Veto::PromotionInFlight => write!(f, "a promotion is running"),
            Veto::Backoff { retry_in_ms } => write!(
                f,
                "the last promotion failed; next try in {:.1} s",
                *retry_in_ms as f64 / 1000.0
            ),
            Veto::LeaderSlotSoon { slot, in_slots } => {
                write!(f, "the identity leads slot {slot} in {in_slots} slots")
            }
        }
    }
}

impl fmt::Display for Detection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "last vote {} stalled while the cluster reached slot {} ({} bad checks)",
            self.last_vote, self.slot, self.bad
        )?;
        if self.tower_advancing {
            write!(
                f,
                "; the stored tower still advances: cut off from the cluster?"
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::LocalActive => write!(f, "the local node runs as the identity"),
            Decision::Blind { what } => write!(f, "cannot read {what}"),
            Decision::ClusterStalled { slot, for_ms } => write!(
                f,
                "the cluster's slot stalled at {slot} for {:.1} s",
                *for_ms as f64 / 1000.0
            ),
            Decision::Healthy { last_vote, slot } => {
                write!(f, "healthy: last vote {last_vote} at slot {slot}")
            }
            Decision::Suspect {
                bad,
                needed,
                detection,
            } => write!(f, "suspect ({bad}/{needed}): {detection}"),
            Decision::Vetoed { veto, detection } => {
                write!(f, "vetoed: {veto}; {detection}")
            }
            Decision::Promote { detection } => write!(f, "promote: {detection}"),
        }
    }
}

#[cfg(test)]
mod tests;
