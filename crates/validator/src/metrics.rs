//! Prometheus metrics of the node, rendered in the text exposition format.

use std::{
    fmt::Write,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::admin::{NodeStatus, Role};

/// Upper bounds (seconds) of the store latency histogram's buckets.
const STORE_BUCKETS: [f64; 10] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 2.0];

/// The node's metrics: its status (as the machine reports it) and the
/// latency histogram of tower stores (as the driver measures them).
#[derive(Debug, Default)]
pub struct Metrics {
    status: Mutex<Option<NodeStatus>>,
    store: Mutex<StoreStats>,
    /// Unix seconds: when the last vote was sent, when the etcd client
    /// certificate expires (gauges shown once known).
    times: Mutex<Times>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Times {
    last_vote_sent: Option<f64>,
    cert_expiry: Option<i64>,
}

#[derive(Debug, Default)]
struct StoreStats {
    buckets: [u64; STORE_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

impl Metrics {
    pub fn observe_store(&self, latency: Duration) {
        let mut stats = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let seconds = latency.as_secs_f64();
        for (bucket, bound) in stats.buckets.iter_mut().zip(STORE_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        stats.count += 1;
        stats.sum_seconds += seconds;
    }

    /// A vote left the node now.
    pub fn observe_vote_sent(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_vote_sent = Some(now);
    }

    /// The etcd client certificate expires at `unix_seconds`.
    pub fn set_cert_expiry(&self, unix_seconds: i64) {
        self.times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cert_expiry = Some(unix_seconds);
    }

    /// The node's latest status.
    pub fn set_status(&self, status: &NodeStatus) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status.clone());
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let status = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default();
        for (name, help, kind, value) in status_series(&status) {
            let _ = writeln!(out, "# HELP towerlock_{name} {help}");
            let _ = writeln!(out, "# TYPE towerlock_{name} {kind}");
            let _ = writeln!(out, "towerlock_{name} {value}");
        }
        self.render_store(&mut out, &status);
        self.render_times(&mut out);
        out
    }

    fn render_times(&self, out: &mut String) {
        let times = *self.times.lock().unwrap_or_else(|e| e.into_inner());
        let series = [
            (
                "last_vote_timestamp_seconds",
                "Unix time the last vote was sent.",
                times.last_vote_sent.map(|t| format!("{t:.3}")),
            ),
            (
                "etcd_cert_expiry_timestamp_seconds",
                "Unix time the etcd client certificate expires.",
                times.cert_expiry.map(|t| t.to_string()),
            ),
        ];
        for (name, help, value) in series {
            if let Some(value) = value {
                let _ = writeln!(out, "# HELP towerlock_{name} {help}");
                let _ = writeln!(out, "# TYPE towerlock_{name} gauge");
                let _ = writeln!(out, "towerlock_{name} {value}");
            }
        }
    }

    fn render_store(&self, out: &mut String, status: &NodeStatus) {
        let stats = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            out,
            "# HELP towerlock_store_seconds Latency of tower stores."
        );
        let _ = writeln!(out, "# TYPE towerlock_store_seconds histogram");
        for (count, bound) in stats.buckets.iter().zip(STORE_BUCKETS) {
            let _ = writeln!(
                out,
                "towerlock_store_seconds_bucket{{le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "towerlock_store_seconds_bucket{{le=\"+Inf\"}} {}",
            stats.count
        );
        let _ = writeln!(out, "towerlock_store_seconds_sum {}", stats.sum_seconds);
        let _ = writeln!(out, "towerlock_store_seconds_count {}", stats.count);
        let _ = writeln!(
            out,
            "# HELP towerlock_store_failures_total Failed fenced writes by kind."
        );
        let _ = writeln!(out, "# TYPE towerlock_store_failures_total counter");
        let failures = status.store_failures;
        for (kind, count) in [
            ("lock_lost", failures.lock_lost),
            ("unavailable", failures.unavailable),
            ("other", failures.other),
        ] {
            let _ = writeln!(
                out,
                "towerlock_store_failures_total{{kind=\"{kind}\"}} {count}"
            );
        }
    }
}

/// The status as Prometheus series: name, help, type, value.
fn status_series(status: &NodeStatus) -> [(&'static str, &'static str, &'static str, String); 9] {
    let role = match status.role {
        Role::Starting => 0,
        Role::Voting => 1,
        Role::HotSpare => 2,
        Role::SkipVote => 3,
    };
    [
        (
            "votes_sent_total",
            "Vote transactions sent.",
            "counter",
            status.votes_sent.to_string(),
        ),
        (
            "votes_rejected_total",
            "Votes the cluster refused.",
            "counter",
            status.votes_rejected.to_string(),
        ),
        (
            "leader_slots_produced_total",
            "Leader slots with a block from this node.",
            "counter",
            status.leader_slots_produced.to_string(),
        ),
        (
            "leader_slots_skipped_total",
            "Own leader slots without a block.",
            "counter",
            status.leader_slots_skipped.to_string(),
        ),
        (
            "fence_token",
            "etcd revision of the takeover holding the fence (0: none).",
            "gauge",
            status.fence_token.unwrap_or(0).to_string(),
        ),
        (
            "last_vote_slot",
            "Slot of the last vote sent.",
            "gauge",
            status.last_vote_slot.unwrap_or(0).to_string(),
        ),
        (
            "root_slot",
            "Root of the tower.",
            "gauge",
            status.root.unwrap_or(0).to_string(),
        ),
        (
            "replayed_slot",
            "Newest bank replayed.",
            "gauge",
            status.slot.to_string(),
        ),
        (
            "role",
            "0 starting, 1 voting, 2 hot spare, 3 skip-vote.",
            "gauge",
            role.to_string(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.observe_store(Duration::from_micros(700));
        metrics.observe_store(Duration::from_millis(30));
        let mut status = NodeStatus::default();
        status.store_failures.lock_lost = 1;
        status.role = Role::SkipVote;
        metrics.set_status(&status);
        let text = metrics.render();
        assert!(text.contains("towerlock_store_seconds_bucket{le=\"0.0005\"} 0"));
        assert!(text.contains("towerlock_store_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("towerlock_store_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("towerlock_store_seconds_count 2"));
        assert!(text.contains("towerlock_store_failures_total{kind=\"lock_lost\"} 1"));
        assert!(text.contains("towerlock_role 3"));
        assert!(
            !text.contains("towerlock_last_vote_timestamp_seconds"),
            "unknown yet"
        );
        metrics.observe_vote_sent();
        metrics.set_cert_expiry(1_900_000_000);
        let text = metrics.render();
        assert!(text.contains("towerlock_last_vote_timestamp_seconds 1"));
        assert!(text.contains("towerlock_etcd_cert_expiry_timestamp_seconds 1900000000"));
    }
}
