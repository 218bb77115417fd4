//! `towerlock`: the operator's toolbox for fenced validator failover.
//!
//! Each subcommand lives in `cmd/<name>.rs` as a clap `Args` type with an async
//! `run`; this file only parses arguments and turns errors into exit codes.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use towerlock_validator::log_file::LogFile;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// Safe two-machine failover for Solana-style validators: the tower lives in
/// etcd behind a fence, so a primary and a secondary can share one staked
/// identity without ever voting twice.
#[derive(Debug, Parser)]
#[command(name = "towerlock", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the seed's failover story on this machine (etcd with TLS, a local
    /// cluster, primary and secondary validators) and audit every vote.
    Drill(cmd::drill::DrillArgs),
    /// Run the whole system under random faults (kills, pauses, partitions,
    /// etcd member loss, racing set-identity) and audit every vote.
    Chaos(cmd::chaos::ChaosArgs),
    /// Inspect, export and import saved towers (agave's file format, or etcd).
    Tower(cmd::tower::TowerCmd),
    /// Inspect, export and import Alpenglow vote histories (agave 4.x's
    /// `vote_history-<pubkey>.bin`, or etcd).
    VoteHistory(cmd::vote_history::VoteHistoryCmd),
    /// Make the TLS certificates that etcd and the validators use.
    Certs(cmd::certs::CertsCmd),
    /// Check an etcd cluster: reachability, TLS, compaction, latency.
    Etcd(cmd::etcd::EtcdCmd),
    /// Who holds an identity's fence in etcd, and what is stored under it.
    Fence(cmd::fence::FenceCmd),
    /// The pair on one screen: which node is active and which the hot
    /// spare, the last vote, health, the fence holder, the sentinel's state
    /// (`--watch` redraws it).
    Status(cmd::status::StatusArgs),
    /// Run a local cluster that stands in for the Solana network.
    Cluster(cmd::cluster::ClusterCmd),
    /// Check an audit trail for safety violations (exit 1 on any).
    Audit(cmd::audit::AuditCmd),
    /// Promote the local hot spare when the active node stops voting
    /// (monitoring-triggered failover; without etcd, only after a
    /// --fence-command exited 0).
    ///
    /// Run beside the secondary. Every --interval-ms it reads the cluster
    /// (getSlot, getVoteAccounts, getClusterNodes), the active node's and the
    /// local node's getHealth, and the fence in etcd (read-only); after
    /// --failures consecutive checks in which the identity's last vote stalled
    /// while the cluster's slot advanced, it promotes the local node through
    /// its admin socket (setIdentity with require_tower). Vetoes: the
    /// cluster's slot stalled, the local node not caught up, a failover less
    /// than --cooldown ago, a promotion already running, a leader slot of the
    /// identity imminent (--respect-leader-slots).
    ///
    /// SAFETY: with the etcd flags, the fence makes a false promotion cost one
    /// failover, never a double vote. WITHOUT ETCD (agave mode) IT REFUSES TO
    /// PROMOTE unless a --fence-command (STONITH: power off or isolate the old
    /// primary) has exited 0 first; without either it only watches.
    Sentinel(Box<cmd::sentinel::SentinelArgs>),
    /// Benchmarks; each ends with one line of key=value figures.
    Bench(cmd::bench::BenchCmd),
}

impl Cli {
    /// `--log FILE` of the long-running commands ('-' is stderr).
    fn log_path(&self) -> Option<&std::path::Path> {
        match &self.command {
            Command::Sentinel(args) => args.log.as_deref(),
            _ => None,
        }
        .filter(|path| *path != std::path::Path::new("-"))
    }
}

/// `towerlock tower show … | head`: once the reader is gone, stop quietly
/// (status 141, as a shell reports a closed pipe) instead of panicking on
/// the next print. SIGPIPE itself stays ignored: vectored socket writes
/// (`writev`, as the HTTP/2 of etcd's gRPC client does) raise it when the
/// peer goes away mid-write (etcd, a validator, the cluster stopped), and
/// that must be an error the command reports, never a silent death.
fn exit_quietly_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout")
            && message.ends_with(&format!("(os error {})", libc::EPIPE))
        {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    exit_quietly_when_stdout_closes();
    let cli = Cli::parse();
    let log = match cli.log_path() {
        Some(path) => match LogFile::open(path) {
            Ok(log) => Some(log),
            Err(err) => {
                eprintln!("error: cannot open the log file {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let writer = match &log {
        Some(log) => BoxMakeWriter::new(log.clone()),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(log.is_none())
        .with_writer(writer)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        if let Some(log) = &log {
            anyhow::Context::context(
                log.reopen_on_sigusr1(),
                "cannot watch for SIGUSR1 (log rotation)",
            )?;
        }
        match cli.command {
            Command::Drill(cmd) => cmd.run().await,
            Command::Chaos(cmd) => cmd.run().await,
            Command::Tower(cmd) => cmd.run().await,
            Command::VoteHistory(cmd) => cmd.run().await,
            Command::Certs(cmd) => cmd.run().await,
            Command::Etcd(cmd) => cmd.run().await,
            Command::Fence(cmd) => cmd.run().await,
            Command::Status(cmd) => cmd.run().await,
            Command::Cluster(cmd) => cmd.run().await,
            Command::Audit(cmd) => cmd.run().await,
            Command::Sentinel(cmd) => cmd.run().await,
            Command::Bench(cmd) => cmd.run().await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            // One sentence with its causes, no backtrace: operators read this.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
