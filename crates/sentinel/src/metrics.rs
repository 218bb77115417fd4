//! Prometheus text for `--metrics-addr` (`GET /metrics`): the state, checks
//! passed and failed, promotions by outcome, and the last failover's phases.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::decision::State;
use crate::SentinelError;

/// The figures, updated by the poller.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub state: Option<State>,
    /// Checks whose vote advanced (or slot did not move).
    pub checks_passed: u64,
    /// Bad checks.
    pub checks_failed: u64,
    /// Checks that could not judge (RPC failures, stalled cluster).
    pub checks_blind: u64,
    pub promotions_ok: u64,
    pub promotions_failed: u64,
    pub dry_run_promotions: u64,
    /// Wall-clock ms of the last detection that led to a promotion.
    pub last_detected_ms: Option<u64>,
    /// Phases of the last failover, ms after its detection.
    pub last_phases: Vec<(&'static str, u64)>,
}

pub type Shared = Arc<Mutex<Metrics>>;

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP towerlock_sentinel_state 1 for the current state of the decision."
        );
        let _ = writeln!(out, "# TYPE towerlock_sentinel_state gauge");
        for state in State::ALL {
            let on = u8::from(self.state == Some(state));
            let _ = writeln!(
                out,
                "towerlock_sentinel_state{{state=\"{}\"}} {on}",
                state.name()
            );
        }
        let _ = writeln!(out, "# TYPE towerlock_sentinel_checks_total counter");
        for (result, n) in [
            ("passed", self.checks_passed),
            ("failed", self.checks_failed),
            ("blind", self.checks_blind),
        ] {
            let _ = writeln!(
                out,
                "towerlock_sentinel_checks_total{{result=\"{result}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# TYPE towerlock_sentinel_promotions_total counter");
        for (outcome, n) in [
            ("ok", self.promotions_ok),
            ("failed", self.promotions_failed),
            ("dry_run", self.dry_run_promotions),
        ] {
            let _ = writeln!(
                out,
                "towerlock_sentinel_promotions_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        if let Some(at) = self.last_detected_ms {
            let _ = writeln!(out, "# HELP towerlock_sentinel_last_failover_detected_seconds Unix time of the last detection that led to a promotion.");
            let _ = writeln!(
                out,
                "# TYPE towerlock_sentinel_last_failover_detected_seconds gauge"
            );
            let _ = writeln!(
                out,
                "towerlock_sentinel_last_failover_detected_seconds {:.3}",
                at as f64 / 1000.0
            );
        }
        let _ = writeln!(out, "# HELP towerlock_sentinel_last_failover_phase_seconds Each phase of the last failover, after its detection.");
        let _ = writeln!(
            out,
            "# TYPE towerlock_sentinel_last_failover_phase_seconds gauge"
        );
        for (phase, ms) in &self.last_phases {
            let _ = writeln!(
                out,
                "towerlock_sentinel_last_failover_phase_seconds{{phase=\"{phase}\"}} {:.3}",
                *ms as f64 / 1000.0
            );
        }
        out
    }
}

/// Binds `addr` and serves `/metrics` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Shared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), SentinelError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| SentinelError::Metrics { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| SentinelError::Metrics { addr, source })?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = metrics.lock().unwrap_or_else(|p| p.into_inner()).render();
            async move { text }
        }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_state_and_the_phases() {
        let metrics = Metrics {
            state: Some(State::Suspect),
            checks_failed: 2,
            last_phases: vec![("takeover_committed", 40)],
            ..Metrics::default()
        };
        let text = metrics.render();
        assert!(text.contains("towerlock_sentinel_state{state=\"suspect\"} 1"));
        assert!(text.contains("towerlock_sentinel_state{state=\"healthy\"} 0"));
        assert!(text.contains("towerlock_sentinel_checks_total{result=\"failed\"} 2"));
        assert!(text.contains("phase=\"takeover_committed\"} 0.040"));
    }
}
