//! `towerlock bench`: measurements taken side by side in one run, reported as
//! medians and ratios (this machine is shared; absolute numbers drift).

use std::{process::ExitCode, time::Duration};

use clap::{Args, Subcommand};

use super::{
    bench_cluster::BenchClusterArgs, bench_failover::BenchFailoverArgs,
    bench_scale::BenchScaleArgs, bench_sentinel::BenchSentinelArgs,
    bench_storage::BenchStorageArgs, bench_vote_path::BenchVotePathArgs,
};

#[derive(Debug, Args)]
pub struct BenchCmd {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Fenced etcd store vs plain put, file store with and without fsync,
    /// and takeover, against an etcd it starts (or one you name).
    Storage(BenchStorageArgs),
    /// The local cluster's CPU and slot-clock lateness with and without real
    /// vote transactions for many identities (alternating windows), how
    /// soon those votes land, and a real validator's votes beside them.
    Cluster(BenchClusterArgs),
    /// Repeated manual failovers: time to `set-identity`, to the first vote
    /// sent and landed, and votes missed per failover.
    Failover(BenchFailoverArgs),
    /// Repeated kill -9 of the active node with the sentinel failing over:
    /// time to the new active's first landed vote, votable slots missed,
    /// and false promotions in a healthy stretch of equal length.
    Sentinel(BenchSentinelArgs),
    /// One validator voting with file storage and with etcd, alternating:
    /// time from bank frozen to vote sent and landed, store latency, and
    /// vote credits per slot.
    VotePath(BenchVotePathArgs),
    /// Many simulated validators storing their towers in one etcd member and
    /// in three: store latency per fleet size (or the largest carried,
    /// --find), etcd's CPU, fsyncs and database growth.
    Scale(BenchScaleArgs),
}

impl BenchCmd {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            BenchCommand::Storage(args) => args.run().await,
            BenchCommand::Cluster(args) => args.run().await,
            BenchCommand::Failover(args) => args.run().await,
            BenchCommand::Sentinel(args) => args.run().await,
            BenchCommand::VotePath(args) => args.run().await,
            BenchCommand::Scale(args) => args.run().await,
        }
    }
}

/// Latency samples of one operation.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn push(&mut self, sample: Duration) {
        self.0.push(sample);
    }

    /// The `q` quantile (0.0..=1.0) in milliseconds, nearest rank.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.0.clone();
        sorted.sort();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1].as_secs_f64() * 1000.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }
}

/// One row of a latency table: name, count, p50, p99, max.
pub fn print_row(name: &str, samples: &Samples) {
    println!(
        "{name:<28} {:>6} {:>10.3} {:>10.3} {:>10.3}",
        samples.len(),
        samples.quantile_ms(0.5),
        samples.quantile_ms(0.99),
        samples.quantile_ms(1.0)
    );
}

pub fn print_header() {
    println!(
        "{:<28} {:>6} {:>10} {:>10} {:>10}",
        "operation", "n", "p50 ms", "p99 ms", "max ms"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let mut samples = Samples::default();
        for ms in [5, 1, 4, 2, 3] {
            samples.push(Duration::from_millis(ms));
        }
        assert_eq!(samples.quantile_ms(0.5), 3.0);
        assert_eq!(samples.quantile_ms(1.0), 5.0);
        assert_eq!(samples.quantile_ms(0.0), 1.0);
        assert!(Samples::default().quantile_ms(0.5).is_nan());
    }
}
