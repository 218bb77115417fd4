//! Prometheus metrics of the node, rendered in the text exposition format.

use std::{
    fmt::Write,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
        Mutex,
    },
    time::Duration,
};

/// Upper bounds (seconds) of the store latency histogram's buckets.
const STORE_BUCKETS: [f64; 10] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 2.0];

#[derive(Debug, Default)]
pub struct Metrics {
    pub votes_sent: AtomicU64,
    pub votes_rejected: AtomicU64,
    pub leader_slots_produced: AtomicU64,
    pub leader_slots_skipped: AtomicU64,
    pub fence_token: AtomicI64,
    pub last_vote_slot: AtomicU64,
    pub root_slot: AtomicU64,
    pub replayed_slot: AtomicU64,
    /// 0 starting, 1 voting, 2 hot spare, 3 skip-vote.
    pub role: AtomicU64,
    store: Mutex<StoreStats>,
}

#[derive(Debug, Default)]
struct StoreStats {
    buckets: [u64; STORE_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
    failures: Vec<(String, u64)>,
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

    /// Counts a failed store by kind (`lock_lost`, `unavailable`, `other`).
    pub fn store_failed(&self, kind: &str) {
        let mut stats = self.store.lock().unwrap_or_else(|e| e.into_inner());
        match stats.failures.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += 1,
            None => stats.failures.push((kind.to_string(), 1)),
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, value: String| {
            let _ = writeln!(out, "# HELP towerlock_{name} {help}");
            let _ = writeln!(out, "# TYPE towerlock_{name} {kind}");
            let _ = writeln!(out, "towerlock_{name} {value}");
        };
        gauge(
            "votes_sent_total",
            "Vote transactions sent.",
            "counter",
            self.votes_sent.load(Relaxed).to_string(),
        );
        gauge(
            "votes_rejected_total",
            "Votes the cluster refused.",
            "counter",
            self.votes_rejected.load(Relaxed).to_string(),
        );
        gauge(
            "leader_slots_produced_total",
            "Leader slots with a block from this node.",
            "counter",
            self.leader_slots_produced.load(Relaxed).to_string(),
        );
        gauge(
            "leader_slots_skipped_total",
            "Own leader slots without a block.",
            "counter",
            self.leader_slots_skipped.load(Relaxed).to_string(),
        );
        gauge(
            "fence_token",
            "etcd revision of the takeover holding the fence (0: none).",
            "gauge",
            self.fence_token.load(Relaxed).to_string(),
        );
        gauge(
            "last_vote_slot",
            "Slot of the last vote sent.",
            "gauge",
            self.last_vote_slot.load(Relaxed).to_string(),
        );
        gauge(
            "root_slot",
            "Root of the tower.",
            "gauge",
            self.root_slot.load(Relaxed).to_string(),
        );
        gauge(
            "replayed_slot",
            "Newest bank replayed.",
            "gauge",
            self.replayed_slot.load(Relaxed).to_string(),
        );
        gauge(
            "role",
            "0 starting, 1 voting, 2 hot spare, 3 skip-vote.",
            "gauge",
            self.role.load(Relaxed).to_string(),
        );

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
            "# HELP towerlock_store_failures_total Failed tower stores by kind."
        );
        let _ = writeln!(out, "# TYPE towerlock_store_failures_total counter");
        for (kind, count) in &stats.failures {
            let _ = writeln!(
                out,
                "towerlock_store_failures_total{{kind=\"{kind}\"}} {count}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.observe_store(Duration::from_micros(700));
        metrics.observe_store(Duration::from_millis(30));
        metrics.store_failed("lock_lost");
        let text = metrics.render();
        assert!(text.contains("towerlock_store_seconds_bucket{le=\"0.0005\"} 0"));
        assert!(text.contains("towerlock_store_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("towerlock_store_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("towerlock_store_seconds_count 2"));
        assert!(text.contains("towerlock_store_failures_total{kind=\"lock_lost\"} 1"));
    }
}
