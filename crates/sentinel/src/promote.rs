//! Carrying out a promotion: pre-hook, fence command (without etcd),
//! `setIdentity` with `require_tower` over the admin socket, post-hook; each
//! phase on the timeline.

use std::time::Instant;

use towerlock_validator::admin::AdminClient;

use crate::decision::Detection;
use crate::error::PromotionError;
use crate::hooks;
use crate::poller::{
    promotion_error, AfterPromotion, Poller, PromotionRecord, SET_IDENTITY_TIMEOUT,
};
use crate::timeline::{now_ms, Entry, Event};

impl Poller {
    /// One promotion attempt; the detector learns how it went.
    pub(crate) async fn promote(&mut self, detection: &Detection, at_ms: u64, origin: Instant) {
        let detected_ms = now_ms();
        self.timeline.record(
            Entry::new(detected_ms, Event::Detected)
                .with("reason", detection.to_string())
                .with("last_vote", detection.last_vote)
                .with("slot", detection.slot)
                .with("bad_checks", detection.bad)
                .with("stalled_ms", at_ms.saturating_sub(detection.since_ms))
                .with("dry_run", self.dry_run),
        );
        let env = self.hook_env(detection, detected_ms, "pre");
        self.run_hook("pre", self.pre_hook.clone().as_ref(), &env)
            .await;
        self.promotions.push(PromotionRecord {
            detected_ms,
            committed_ms: None,
            first_vote_sent_ms: None,
            first_vote_landed_ms: None,
            dry_run: self.dry_run,
        });
        if self.dry_run {
            tracing::warn!("dry run: would promote the local node now: {detection}");
            self.timeline
                .record(Entry::new(now_ms(), Event::PromotionSent).with("dry_run", true));
            self.detector.dry_run_promoted(at_ms);
            self.metrics
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .dry_run_promotions += 1;
            self.post_hook(detection, detected_ms, "dry-run").await;
            return;
        }
        self.detector.promotion_started();
        let outcome = self.fence_and_set_identity(detection, detected_ms).await;
        let now = now_ms();
        let elapsed = now.saturating_sub(detected_ms);
        let at = origin.elapsed().as_millis() as u64;
        match &outcome {
            Ok(()) => {
                self.detector.promotion_succeeded(at);
                self.timeline.record(
                    Entry::new(now, Event::TakeoverCommitted).with("ms_since_detected", elapsed),
                );
                let mut m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
                m.promotions_ok += 1;
                m.last_detected_ms = Some(detected_ms);
                m.last_phases.clear();
                drop(m);
                self.phase("takeover_committed", elapsed);
                self.after = Some(AfterPromotion::new(detected_ms, detection.last_vote));
            }
            Err(err) => {
                let backoff = self.detector.promotion_failed(at);
                tracing::error!(
                    "PROMOTION FAILED: {err}; retrying in {:.1} s if the active node is still down",
                    backoff as f64 / 1000.0
                );
                self.timeline.record(
                    Entry::new(now, Event::PromotionFailed)
                        .with("reason", promotion_error(err))
                        .with("retry_in_ms", backoff),
                );
                self.metrics
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .promotions_failed += 1;
            }
        }
        let word = if outcome.is_ok() { "ok" } else { "failed" };
        self.post_hook(detection, detected_ms, word).await;
    }

    async fn fence_and_set_identity(
        &mut self,
        detection: &Detection,
        detected_ms: u64,
    ) -> Result<(), PromotionError> {
        if let Some(command) = self.fence_command.clone() {
            let env = self.hook_env(detection, detected_ms, "fence");
            hooks::run(&command, &env, hooks::FENCE_TIMEOUT)
                .await
                .map_err(|outcome| PromotionError::FenceCommand { outcome })?;
            self.timeline.record(Entry::new(now_ms(), Event::Fenced));
        }
        self.timeline.record(
            Entry::new(now_ms(), Event::PromotionSent)
                .with("dry_run", false)
                .with("require_tower", self.require_tower),
        );
        let call = async {
            let mut client = AdminClient::connect(&self.ledger).await?;
            client
                .set_identity(&self.identity_keypair, self.require_tower)
                .await
        };
        match tokio::time::timeout(SET_IDENTITY_TIMEOUT, call).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(PromotionError::SetIdentity {
                reason: err.to_string(),
            }),
            Err(_) => Err(PromotionError::Timeout {
                secs: SET_IDENTITY_TIMEOUT.as_secs(),
            }),
        }
    }

    async fn post_hook(&self, detection: &Detection, detected_ms: u64, outcome: &str) {
        let mut env = self.hook_env(detection, detected_ms, "post");
        env.push(("TOWERLOCK_OUTCOME", outcome.to_string()));
        env.push((
            "TOWERLOCK_PROMOTION_MS",
            now_ms().saturating_sub(detected_ms).to_string(),
        ));
        self.run_hook("post", self.post_hook.clone().as_ref(), &env)
            .await;
    }
}

impl AfterPromotion {
    pub(crate) fn new(detected_ms: u64, stalled_vote: u64) -> Self {
        Self {
            detected_ms,
            stalled_vote,
            sent: false,
        }
    }
}
