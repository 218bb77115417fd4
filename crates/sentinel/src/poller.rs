//! The loop: a check every interval, the decision, and the promotion it
//! asks for, carried out here and nowhere else.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use solana_pubkey::Pubkey;
use towerlock_validator::admin::AdminClient;

use crate::checks::Probe;
use crate::decision::{Decision, Detection, Detector, Observation, State};
use crate::error::PromotionError;
use crate::hooks;
use crate::metrics::Shared;
use crate::timeline::{now_ms, Entry, Event, Timeline};

/// How long `setIdentity` may take before the attempt counts as failed.
pub const SET_IDENTITY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the loop needs besides the probe.
pub struct Poller {
    pub detector: Detector,
    pub probe: Probe,
    pub timeline: Timeline,
    pub metrics: Shared,
    pub interval: Duration,
    pub ledger: PathBuf,
    pub identity_keypair: PathBuf,
    pub require_tower: bool,
    pub dry_run: bool,
    pub fence_command: Option<String>,
    pub pre_hook: Option<String>,
    pub post_hook: Option<String>,
    /// Phases still to see after the last promotion.
    pub after: Option<AfterPromotion>,
    pub last_state: Option<State>,
    pub promotions: Vec<PromotionRecord>,
}

/// A promotion and its phases, ms after its detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionRecord {
    pub detected_ms: u64,
    pub committed_ms: Option<u64>,
    pub first_vote_sent_ms: Option<u64>,
    pub first_vote_landed_ms: Option<u64>,
    pub dry_run: bool,
}

/// Following a promotion until the local node's first vote lands.
#[derive(Debug, Clone)]
pub struct AfterPromotion {
    pub(crate) detected_ms: u64,
    pub(crate) stalled_vote: u64,
    pub(crate) sent: bool,
}

impl Poller {
    /// Runs checks until `shutdown` resolves.
    pub async fn run(&mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let origin = Instant::now();
        loop {
            let next = Instant::now() + self.interval;
            let at_ms = origin.elapsed().as_millis() as u64;
            let obs = tokio::select! {
                biased;
                () = &mut shutdown => return,
                obs = self.probe.check(at_ms) => obs,
            };
            let decision = self.detector.observe(&obs);
            self.account(&obs, &decision);
            self.follow_up(&obs).await;
            if let Decision::Promote { detection } = decision {
                self.promote(&detection, at_ms, origin).await;
            }
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::time::sleep_until(next.into()) => {}
            }
        }
    }

    /// Metrics and, when the state changed, a timeline line.
    fn account(&mut self, obs: &Observation, decision: &Decision) {
        let state = decision.state();
        {
            let mut m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
            m.state = Some(state);
            match decision {
                d if d.is_bad() => m.checks_failed += 1,
                Decision::Healthy { .. } | Decision::LocalActive => m.checks_passed += 1,
                _ => m.checks_blind += 1,
            }
        }
        let changed = self.last_state != Some(state)
            || matches!(decision, Decision::Suspect { .. } | Decision::Vetoed { .. });
        if changed && self.last_state_reason_changed(decision) {
            let mut entry = Entry::new(now_ms(), Event::Decision)
                .with("state", state.name())
                .with("reason", decision.to_string());
            if let Some(slot) = obs.cluster_slot {
                entry = entry.with("slot", slot);
            }
            if let Some(vote) = obs.vote {
                entry = entry.with("last_vote", vote.last_vote);
            }
            self.timeline.record(entry);
        }
        self.last_state = Some(state);
    }

    /// Suspect and vetoed checks are written each time (their count and
    /// veto change); other states once when entered.
    fn last_state_reason_changed(&self, decision: &Decision) -> bool {
        self.last_state != Some(decision.state()) || decision.is_bad()
    }

    /// After a promotion: the first vote sent (the local node's status over
    /// its admin socket, when it answers `towerlockStatus`) and landed (the
    /// vote account's last vote past the stalled one).
    async fn follow_up(&mut self, obs: &Observation) {
        let Some(after) = self.after.clone() else {
            return;
        };
        let now = now_ms();
        let since = now.saturating_sub(after.detected_ms);
        if !after.sent {
            if let Some(slot) = self.local_vote_sent(after.stalled_vote).await {
                self.timeline.record(
                    Entry::new(now, Event::FirstVoteSent)
                        .with("slot", slot)
                        .with("ms_since_detected", since),
                );
                self.phase("first_vote_sent", since);
                if let Some(a) = self.after.as_mut() {
                    a.sent = true;
                }
            }
        }
        let landed = obs.vote.filter(|v| v.last_vote > after.stalled_vote);
        if let (Some(vote), true) = (landed, obs.local_active) {
            self.timeline.record(
                Entry::new(now, Event::FirstVoteLanded)
                    .with("slot", vote.last_vote)
                    .with("ms_since_detected", since),
            );
            self.phase("first_vote_landed", since);
            self.after = None;
        }
    }

    async fn local_vote_sent(&self, stalled: u64) -> Option<u64> {
        let mut client = AdminClient::connect(&self.ledger).await.ok()?;
        let status = tokio::time::timeout(Duration::from_secs(1), client.status())
            .await
            .ok()?
            .ok()?;
        status.last_vote_slot.filter(|&s| s > stalled)
    }

    pub(crate) fn phase(&mut self, name: &'static str, ms: u64) {
        let mut m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        m.last_phases.retain(|(n, _)| *n != name);
        m.last_phases.push((name, ms));
        if let Some(record) = self.promotions.last_mut() {
            match name {
                "takeover_committed" => record.committed_ms = Some(ms),
                "first_vote_sent" => record.first_vote_sent_ms = Some(ms),
                "first_vote_landed" => record.first_vote_landed_ms = Some(ms),
                _ => {}
            }
        }
    }

    pub(crate) fn hook_env(
        &self,
        detection: &Detection,
        detected_ms: u64,
        phase: &str,
    ) -> Vec<(&'static str, String)> {
        vec![
            ("TOWERLOCK_PHASE", phase.to_string()),
            ("TOWERLOCK_IDENTITY", self.probe.identity.to_string()),
            ("TOWERLOCK_REASON", detection.to_string()),
            ("TOWERLOCK_LAST_VOTE", detection.last_vote.to_string()),
            ("TOWERLOCK_SLOT", detection.slot.to_string()),
            ("TOWERLOCK_DETECTED_MS", detected_ms.to_string()),
            ("TOWERLOCK_DRY_RUN", u8::from(self.dry_run).to_string()),
        ]
    }

    pub(crate) async fn run_hook(
        &self,
        which: &str,
        command: Option<&String>,
        env: &[(&str, String)],
    ) {
        let Some(command) = command else { return };
        if let Err(outcome) = hooks::run(command, env, hooks::HOOK_TIMEOUT).await {
            tracing::warn!("the {which} hook failed ({outcome}); going on");
        }
    }
}

/// The identity in `identity`'s keypair file.
pub fn identity_of(path: &std::path::Path) -> Result<Pubkey, crate::SentinelError> {
    towerlock_validator::admin::keypair::read_keypair_file(path, false)
        .map(|k| k.pubkey())
        .map_err(|e| crate::SentinelError::Identity {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

pub(crate) fn promotion_error(err: &PromotionError) -> String {
    err.to_string()
}
