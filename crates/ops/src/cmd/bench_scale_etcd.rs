//! The etcd clusters `bench scale` loads, and what it reads from them:
//! process CPU from /proc, the WAL fsync histogram and the database size
//! from each member's `/metrics`.

use anyhow::Context;
use towerlock_etcd::EtcdConfig;
use towerlock_lab::{metrics_text, EtcdCluster, EtcdOptions, EtcdProcess};

/// One etcd under test: one member or three, with mutual TLS, the seed's
/// compaction flags and `--quota-backend-bytes`.
pub struct Target {
    pub name: String,
    pub members: usize,
    pub config: EtcdConfig,
    pids: Vec<u32>,
    metrics_ports: Vec<u16>,
    _single: Option<EtcdProcess>,
    _cluster: Option<EtcdCluster>,
}

impl Target {
    pub async fn start(members: usize, quota_backend_bytes: u64) -> anyhow::Result<Self> {
        let quota = format!("--quota-backend-bytes={quota_backend_bytes}");
        if members == 1 {
            let options = EtcdOptions {
                extra_args: vec![quota],
                ..EtcdOptions::tls()
            };
            let etcd = EtcdProcess::start_with(options).await?;
            Ok(Self {
                name: "1 member".into(),
                members,
                config: etcd.config(),
                pids: etcd.pid().into_iter().collect(),
                metrics_ports: vec![etcd.metrics_port()],
                _single: Some(etcd),
                _cluster: None,
            })
        } else {
            let cluster = EtcdCluster::start_with_args(members, vec![quota]).await?;
            Ok(Self {
                name: format!("{members} members"),
                members,
                config: cluster.config(),
                pids: (0..members).filter_map(|i| cluster.pid(i)).collect(),
                metrics_ports: (0..members).map(|i| cluster.metrics_port(i)).collect(),
                _single: None,
                _cluster: Some(cluster),
            })
        }
    }

    /// A reading of every member now.
    pub async fn read(&self) -> anyhow::Result<Reading> {
        let mut reading = Reading {
            etcd_cpu_seconds: self
                .pids
                .iter()
                .map(|pid| cpu_seconds(&format!("/proc/{pid}/stat")))
                .sum::<anyhow::Result<f64>>()?,
            client_cpu_seconds: cpu_seconds("/proc/self/stat")?,
            ..Reading::default()
        };
        for port in &self.metrics_ports {
            let text = metrics_text(*port)
                .await
                .map_err(|e| anyhow::anyhow!("cannot read etcd's metrics on port {port}: {e}"))?;
            let metrics = Metrics(&text);
            reading.fsync_count += metrics.value("etcd_disk_wal_fsync_duration_seconds_count");
            reading.fsync_sum += metrics.value("etcd_disk_wal_fsync_duration_seconds_sum");
            for (bound, count) in metrics.buckets("etcd_disk_wal_fsync_duration_seconds_bucket") {
                match reading.fsync_buckets.iter_mut().find(|(b, _)| *b == bound) {
                    Some((_, total)) => *total += count,
                    None => reading.fsync_buckets.push((bound, count)),
                }
            }
            reading.db_size = reading
                .db_size
                .max(metrics.value("etcd_mvcc_db_total_size_in_bytes"));
            reading.db_in_use = reading
                .db_in_use
                .max(metrics.value("etcd_mvcc_db_total_size_in_use_in_bytes"));
        }
        Ok(reading)
    }
}

/// Counters read at one moment (sums over the members; sizes: the
/// largest member).
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub etcd_cpu_seconds: f64,
    pub client_cpu_seconds: f64,
    pub fsync_count: f64,
    pub fsync_sum: f64,
    /// Cumulative histogram buckets: (upper bound in seconds, count).
    pub fsync_buckets: Vec<(f64, f64)>,
    pub db_size: f64,
    pub db_in_use: f64,
}

/// What happened between two readings, accumulated over the slices of
/// one target.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub etcd_cpu_seconds: f64,
    pub client_cpu_seconds: f64,
    pub fsync_count: f64,
    pub fsync_sum: f64,
    pub fsync_buckets: Vec<(f64, f64)>,
    pub db_in_use_growth: f64,
    pub db_size_growth: f64,
}

impl Usage {
    pub fn add(&mut self, before: &Reading, after: &Reading) {
        self.etcd_cpu_seconds += after.etcd_cpu_seconds - before.etcd_cpu_seconds;
        self.client_cpu_seconds += after.client_cpu_seconds - before.client_cpu_seconds;
        self.fsync_count += after.fsync_count - before.fsync_count;
        self.fsync_sum += after.fsync_sum - before.fsync_sum;
        self.db_in_use_growth += after.db_in_use - before.db_in_use;
        self.db_size_growth += after.db_size - before.db_size;
        for (bound, count) in &after.fsync_buckets {
            let earlier = before
                .fsync_buckets
                .iter()
                .find(|(b, _)| b == bound)
                .map_or(0.0, |(_, c)| *c);
            match self.fsync_buckets.iter_mut().find(|(b, _)| b == bound) {
                Some((_, total)) => *total += count - earlier,
                None => self.fsync_buckets.push((*bound, count - earlier)),
            }
        }
    }

    /// Mean WAL fsync in ms.
    pub fn fsync_mean_ms(&self) -> f64 {
        if self.fsync_count > 0.0 {
            self.fsync_sum / self.fsync_count * 1000.0
        } else {
            f64::NAN
        }
    }

    /// The upper bound (ms) of the histogram bucket holding the `q`
    /// quantile of WAL fsyncs.
    pub fn fsync_quantile_ms(&self, q: f64) -> f64 {
        let mut buckets = self.fsync_buckets.clone();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = buckets.last().map_or(0.0, |(_, c)| *c);
        if total <= 0.0 {
            return f64::NAN;
        }
        buckets
            .iter()
            .find(|(_, count)| *count >= q * total)
            .map_or(f64::INFINITY, |(bound, _)| bound * 1000.0)
    }
}

/// Prometheus text, read by name.
struct Metrics<'a>(&'a str);

impl Metrics<'_> {
    fn value(&self, name: &str) -> f64 {
        self.0
            .lines()
            .filter_map(|line| line.strip_prefix(name))
            .filter_map(|rest| rest.strip_prefix(' '))
            .filter_map(|value| value.trim().parse::<f64>().ok())
            .sum()
    }

    fn buckets(&self, name: &str) -> Vec<(f64, f64)> {
        self.0
            .lines()
            .filter_map(|line| line.strip_prefix(name))
            .filter_map(|rest| rest.strip_prefix("{le=\""))
            .filter_map(|rest| rest.split_once("\"} "))
            .filter_map(|(bound, count)| {
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    bound.parse().ok()?
                };
                Some((bound, count.trim().parse().ok()?))
            })
            .collect()
    }
}

/// User + system CPU seconds of a process (all threads), from its
/// `/proc/<pid>/stat`.
pub fn cpu_seconds(stat_path: &str) -> anyhow::Result<f64> {
    let stat =
        std::fs::read_to_string(stat_path).with_context(|| format!("cannot read {stat_path}"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unexpected {stat_path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of the whole line (1-based).
    let ticks: u64 = fields
        .get(11..13)
        .with_context(|| format!("unexpected {stat_path}"))?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    // Linux's USER_HZ is 100 on every architecture this runs on.
    Ok(ticks as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_and_buckets() {
        let text = "# HELP x\n\
            etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 3\n\
            etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.002\"} 8\n\
            etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 10\n\
            etcd_disk_wal_fsync_duration_seconds_sum 0.02\n\
            etcd_disk_wal_fsync_duration_seconds_count 10\n\
            etcd_mvcc_db_total_size_in_bytes 2.048e+06\n\
            etcd_mvcc_db_total_size_in_use_in_bytes 1000\n";
        let metrics = Metrics(text);
        assert_eq!(
            metrics.value("etcd_mvcc_db_total_size_in_bytes"),
            2_048_000.0
        );
        assert_eq!(
            metrics.value("etcd_disk_wal_fsync_duration_seconds_count"),
            10.0
        );
        let before = Reading::default();
        let after = Reading {
            fsync_count: 10.0,
            fsync_sum: 0.02,
            fsync_buckets: metrics.buckets("etcd_disk_wal_fsync_duration_seconds_bucket"),
            ..Reading::default()
        };
        let mut usage = Usage::default();
        usage.add(&before, &after);
        assert_eq!(usage.fsync_mean_ms(), 2.0);
        assert_eq!(usage.fsync_quantile_ms(0.5), 2.0);
        assert_eq!(usage.fsync_quantile_ms(0.99), f64::INFINITY);
    }

    #[test]
    fn reads_this_process_cpu() {
        assert!(cpu_seconds("/proc/self/stat").unwrap() >= 0.0);
    }
}
