//! `towerlock sentinel`: monitoring-triggered failover, run beside the
//! secondary; the logic is `towerlock-sentinel`'s.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::Args;
use solana_pubkey::Pubkey;
use towerlock_etcd::{EtcdArgs, EtcdConfig};
use towerlock_sentinel::{Config, Params, DEFAULT_FAILURES};

/// Watches the active node through standard Solana JSON-RPC and promotes the
/// local hot spare (agave's admin `setIdentity` with `require_tower`) when
/// the identity's vote stalls while the cluster advances.
///
/// SAFETY: with the etcd flags (`--etcd-endpoint` …) the fence in etcd makes
/// a false promotion cost one failover, never a double vote. WITHOUT THE
/// ETCD FENCE (agave mode) IT NEVER PROMOTES unless `--fence-command` — a
/// STONITH command that powers off or isolates the old primary — has exited
/// 0 first; without either it only watches and reports.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SentinelArgs {
    /// Write the log to FILE instead of stderr ('-' for stderr); reopened
    /// on SIGUSR1, for log rotation.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// The local node's ledger (its admin socket is <LEDGER>/admin.rpc).
    #[arg(long, value_name = "DIR")]
    ledger: PathBuf,
    /// The staked identity's keypair file, handed to setIdentity.
    #[arg(long, value_name = "KEYPAIR")]
    identity: PathBuf,
    /// The vote account [default: the one whose node is the identity].
    #[arg(long, value_name = "PUBKEY")]
    vote_account: Option<Pubkey>,
    /// A JSON-RPC of the cluster (an RPC node you trust, not the active node).
    #[arg(long, value_name = "URL")]
    cluster_rpc_url: String,
    /// The local node's JSON-RPC [default: asked of its admin socket].
    #[arg(long, value_name = "URL")]
    local_rpc_url: Option<String>,
    /// The active node's JSON-RPC; while its getHealth answers ok, twice
    /// --failures bad checks are needed.
    #[arg(long, value_name = "URL")]
    primary_rpc_url: Option<String>,
    /// Time between checks, in milliseconds (default: one 400 ms slot).
    #[arg(long, value_name = "MS", default_value_t = 400, value_parser = clap::value_parser!(u64).range(50..))]
    interval_ms: u64,
    /// Consecutive bad checks before a promotion. Detection takes about
    /// (failures + 1) slots; each extra failure makes a false promotion
    /// far rarer (see the README).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_FAILURES, value_parser = clap::value_parser!(u32).range(1..))]
    failures: u32,
    /// No promotion within this many seconds of the last failover.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    cooldown: f64,
    /// No promotion while the identity leads within 2 slots.
    #[arg(long)]
    respect_leader_slots: bool,
    /// STONITH: run (sh -c) before promoting; required without etcd, must exit 0.
    #[arg(long, value_name = "COMMAND")]
    fence_command: Option<String>,
    /// Run before each promotion (reason and timings in TOWERLOCK_* variables).
    #[arg(long, value_name = "COMMAND")]
    pre_hook: Option<String>,
    /// Run after each promotion (TOWERLOCK_OUTCOME: ok, failed, dry-run).
    #[arg(long, value_name = "COMMAND")]
    post_hook: Option<String>,
    /// Decide and report, but never promote, fence or change anything.
    #[arg(long)]
    dry_run: bool,
    /// setIdentity without require_tower (the node may rebuild a missing tower).
    #[arg(long)]
    no_require_tower: bool,
    /// Serve Prometheus metrics on HOST:PORT at /metrics.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<SocketAddr>,
    /// Append every decision and promotion phase to FILE as JSON lines.
    #[arg(long, value_name = "FILE")]
    timeline: Option<PathBuf>,
    #[command(flatten)]
    etcd: Option<EtcdArgs>,
}

impl SentinelArgs {
    /// The library's configuration.
    pub fn config(&self) -> Config {
        let mut config = Config::new(
            self.ledger.clone(),
            self.identity.clone(),
            self.cluster_rpc_url.clone(),
        );
        config.vote_account = self.vote_account;
        config.local_rpc_url = self.local_rpc_url.clone();
        config.primary_rpc_url = self.primary_rpc_url.clone();
        config.interval = Duration::from_millis(self.interval_ms);
        config.params = Params {
            failures: self.failures,
            cooldown_ms: (self.cooldown.max(0.0) * 1000.0) as u64,
            leader_guard_slots: self.respect_leader_slots.then_some(2),
            ..Params::default()
        };
        config.etcd = self.etcd.as_ref().map(EtcdConfig::from);
        config.fence_command = self.fence_command.clone();
        config.require_tower = !self.no_require_tower;
        config.dry_run = self.dry_run;
        config.pre_hook = self.pre_hook.clone();
        config.post_hook = self.post_hook.clone();
        config.metrics_addr = self.metrics_addr;
        config.timeline = self.timeline.clone();
        config
    }

    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        let report = towerlock_sentinel::run(self.config(), shutdown).await?;
        eprintln!(
            "sentinel stopped after {} promotion(s)",
            report.promotions.len()
        );
        Ok(ExitCode::SUCCESS)
    }
}
