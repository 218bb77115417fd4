//! `towerlock-validator`: a validator that votes with a fenced tower.
//!
//! Without a subcommand it runs the node; with one it talks to a running node
//! through its admin socket (`--ledger L set-identity …`), as agave's
//! validator does.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use towerlock_etcd::{EtcdArgs, EtcdConfig};
use towerlock_storage::{EtcdTowerStorage, FileTowerStorage, TowerStorage};
use towerlock_validator::log_file::LogFile;
use towerlock_validator::{
    admin::{self, keypair::read_keypair_file, AdminCommand},
    node::{self, NodeConfig, UnavailablePolicy},
    restart_window::{self, WaitForRestartWindowArgs},
    service::{self, ServiceConfig},
};
use tracing_subscriber::{
    fmt::writer::BoxMakeWriter, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter,
};

/// A validator node for towerlock's local cluster that stores its tower
/// behind a fence (etcd with mutual TLS, or agave's tower files) before every
/// vote, and answers agave's admin RPC on <ledger>/admin.rpc.
#[derive(Debug, Parser)]
#[command(name = "towerlock-validator", version)]
struct Cli {
    /// Ledger directory: holds the admin socket (admin.rpc) and, by default,
    /// the tower files.
    #[arg(
        short,
        long,
        value_name = "DIR",
        global = true,
        default_value = "ledger"
    )]
    ledger: PathBuf,

    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Admin(AdminCommand),
    /// Wait until it is a good time to restart or fail over this node.
    WaitForRestartWindow(WaitForRestartWindowArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TowerStorageKind {
    File,
    Etcd,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The node identity keypair (solana-keygen JSON).
    #[arg(short, long, value_name = "KEYPAIR")]
    identity: Option<PathBuf>,

    /// The vote account: a pubkey, or its keypair file.
    #[arg(long, value_name = "PUBKEY|KEYPAIR")]
    vote_account: Option<String>,

    /// A keypair that may vote (repeatable). When given, it replaces the
    /// identity as the default voter.
    #[arg(long, value_name = "KEYPAIR")]
    authorized_voter: Vec<PathBuf>,

    /// Skip the start-up check that the vote account names this identity as
    /// its node (a secondary needs this: it starts with another identity).
    #[arg(long)]
    no_check_vote_account: bool,

    /// Directory of the tower files [default: the ledger directory].
    #[arg(long, value_name = "DIR")]
    tower: Option<PathBuf>,

    /// Where the tower is stored before every vote.
    #[arg(long, value_enum, default_value_t = TowerStorageKind::File)]
    tower_storage: TowerStorageKind,

    #[command(flatten)]
    etcd: Option<EtcdArgs>,

    /// What to do when etcd does not answer a store: exit (the seed's
    /// behaviour) or stay up without voting until it answers.
    #[arg(long, value_enum, default_value_t = UnavailablePolicy::Exit)]
    etcd_unavailable: UnavailablePolicy,

    /// The cluster's JSON-RPC address (http://HOST:PORT or HOST:PORT): a
    /// towerlock local cluster (`towerlock cluster run`).
    #[arg(short = 'n', long, value_name = "URL")]
    entrypoint: Option<String>,

    /// Serve the node's JSON-RPC on this port (0 picks a free one).
    #[arg(long, value_name = "PORT")]
    rpc_port: Option<u16>,

    /// Address the node's JSON-RPC binds to.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    rpc_bind_address: IpAddr,

    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<SocketAddr>,

    /// Take over (and vote) only once within this many slots of the cluster.
    #[arg(long, value_name = "SLOTS", default_value_t = 8)]
    catchup_slots: u64,

    /// getHealth reports the node healthy while it is at most this many
    /// slots behind the cluster (agave's flag and default).
    #[arg(long, value_name = "SLOTS", default_value_t = 128)]
    health_check_slot_distance: u64,

    /// Start as a hot spare even with the staked identity: replay, keep
    /// the tower ready, and take the fence only on `set-identity`. For a
    /// primary restarted by its supervisor after a monitoring failover, so
    /// that the identity does not flap back to it.
    #[arg(long)]
    start_as_hot_spare: bool,

    /// Write the log to FILE instead of stderr ('-' for stderr); reopened
    /// on SIGUSR1, for log rotation (agave's flag).
    #[arg(short = 'o', long, value_name = "FILE")]
    log: Option<PathBuf>,

    /// Build a tower from the vote account's landed votes when none is
    /// stored for the identity, or the stored one is older than the landed
    /// votes. Such a tower lacks every vote sent but not landed: use it only
    /// when the last tower is truly lost.
    #[arg(long)]
    allow_tower_rebuild: bool,

    /// Shift this node's wall clock by MS milliseconds (vote timestamps,
    /// contact-info outsets). For testing clock skew: the fence depends on no
    /// clock.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0,
        allow_hyphen_values = true
    )]
    clock_offset_ms: i64,

    /// Accept keypair files that group or others may read.
    #[arg(long)]
    allow_insecure_keypair_files: bool,

    /// The cluster's consensus: `tower` (TowerBFT: TowerSync votes, the
    /// tower behind the fence) or `alpenglow` (Votor votes, the vote
    /// history behind the fence, stored before each vote).
    #[arg(long, value_enum, default_value_t = ConsensusKind::Tower)]
    consensus: ConsensusKind,

    /// Alpenglow: how long a leader window waits for its first block before
    /// its slots are skipped (Votor's Δtimeout).
    #[arg(long, value_name = "MS", default_value_t = 800)]
    votor_timeout_ms: u64,

    /// Alpenglow: the time of one slot (Votor's Δblock): each later slot of
    /// a window waits this much longer.
    #[arg(long, value_name = "MS", default_value_t = 400)]
    votor_block_ms: u64,

    /// Alpenglow: vote even when the vote history is missing or older than
    /// the identity's votes that landed (agave's flag). Such a node may vote
    /// against its own earlier votes: a slashable offence. Use it only when
    /// the history is truly lost and the identity has not voted since.
    #[arg(long)]
    do_not_require_vote_history: bool,
}

/// `--consensus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ConsensusKind {
    Tower,
    Alpenglow,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = match cli.run.log.as_deref() {
        Some(path) if path != Path::new("-") => match LogFile::open(path) {
            Ok(log) => Some(log),
            Err(err) => {
                eprintln!("error: cannot open the log file {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let (writer, ansi) = match &log {
        Some(log) => (BoxMakeWriter::new(log.clone()), false),
        None => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, reload) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .with_writer(writer),
        )
        .init();
    let set_log_filter: node::handle::LogFilterSetter = Arc::new(move |directives: &str| {
        let filter = EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
        reload.reload(filter).map_err(|e| e.to_string())
    });

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        if let Some(log) = &log {
            log.reopen_on_sigusr1()
                .context("cannot watch for SIGUSR1 (log rotation)")?;
        }
        match cli.command {
            Some(Command::Admin(command)) => admin::run(&cli.ledger, command).await,
            Some(Command::WaitForRestartWindow(args)) => {
                restart_window::run(&cli.ledger, args).await
            }
            None => run_node(&cli.ledger, cli.run, set_log_filter).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_keypair(path: &Path, allow_insecure: bool) -> anyhow::Result<Keypair> {
    Ok(read_keypair_file(path, allow_insecure)?.keypair())
}

fn parse_vote_account(value: &str, allow_insecure: bool) -> anyhow::Result<Pubkey> {
    if let Ok(pubkey) = value.parse() {
        return Ok(pubkey);
    }
    let path = Path::new(value);
    if !path.exists() {
        bail!("--vote-account {value}: neither a pubkey nor a keypair file");
    }
    Ok(load_keypair(path, allow_insecure)
        .with_context(|| format!("--vote-account {value}"))?
        .pubkey())
}

async fn run_node(
    ledger: &Path,
    args: RunArgs,
    set_log_filter: node::handle::LogFilterSetter,
) -> anyhow::Result<ExitCode> {
    let insecure = args.allow_insecure_keypair_files;
    std::fs::create_dir_all(ledger)
        .with_context(|| format!("cannot create the ledger directory {}", ledger.display()))?;
    let node = node_config(ledger, &args).await?;
    let rpc_listener = match args.rpc_port {
        Some(port) => Some(
            tokio::net::TcpListener::bind((args.rpc_bind_address, port))
                .await
                .with_context(|| format!("cannot bind the RPC port {port}"))?,
        ),
        None => None,
    };
    let metrics_listener = match args.metrics_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind the metrics address {addr}"))?,
        ),
        None => None,
    };
    let node = NodeConfig {
        rpc_addr: rpc_listener.as_ref().and_then(node::rpc::local_addr),
        ..node
    };
    if let Some(addr) = node.rpc_addr {
        tracing::info!(%addr, "node RPC");
    }
    let config = ServiceConfig {
        node,
        ledger: ledger.to_path_buf(),
        admin: admin::ServerConfig {
            allow_insecure_keypair_files: insecure,
            ..admin::ServerConfig::default()
        },
        rpc_listener,
        metrics_listener,
        set_log_filter: Some(set_log_filter),
        cert_expiry: args
            .etcd
            .as_ref()
            .and_then(|etcd| cert_expiry(&etcd.etcd_cert_file)),
    };
    match service::run(config, shutdown_signal()).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The node's keys, vote account, cluster and storage, from the flags.
async fn node_config(ledger: &Path, args: &RunArgs) -> anyhow::Result<NodeConfig> {
    let insecure = args.allow_insecure_keypair_files;
    let identity_path = args
        .identity
        .as_deref()
        .context("--identity KEYPAIR is required to run the node")?;
    let identity = load_keypair(identity_path, insecure)
        .with_context(|| format!("--identity {}", identity_path.display()))?;
    let vote_account = parse_vote_account(
        args.vote_account
            .as_deref()
            .context("--vote-account is required to run the node")?,
        insecure,
    )?;
    let entrypoint = args
        .entrypoint
        .as_deref()
        .context("--entrypoint (the cluster's RPC address) is required to run the node")?;
    let cluster_url = if entrypoint.starts_with("http://") || entrypoint.starts_with("https://") {
        entrypoint.to_string()
    } else {
        format!("http://{entrypoint}")
    };
    // The identity votes unless --authorized-voter replaces it (agave's rule).
    let authorized_voters = if args.authorized_voter.is_empty() {
        vec![load_keypair(identity_path, insecure)?]
    } else {
        args.authorized_voter
            .iter()
            .map(|path| {
                load_keypair(path, insecure)
                    .with_context(|| format!("--authorized-voter {}", path.display()))
            })
            .collect::<anyhow::Result<_>>()?
    };
    Ok(NodeConfig {
        identity,
        vote_account,
        authorized_voters,
        check_vote_account: !args.no_check_vote_account,
        storage: tower_storage(ledger, args).await?,
        cluster_url,
        unavailable: args.etcd_unavailable,
        catchup_slots: args.catchup_slots,
        health_check_slot_distance: args.health_check_slot_distance,
        start_as_hot_spare: args.start_as_hot_spare,
        rpc_addr: None,
        allow_tower_rebuild: args.allow_tower_rebuild,
        clock: node::driver::Clock {
            offset_ms: args.clock_offset_ms,
        },
        consensus: match args.consensus {
            ConsensusKind::Tower => node::machine::Consensus::TowerBft,
            ConsensusKind::Alpenglow => {
                node::machine::Consensus::Alpenglow(node::machine::Alpenglow {
                    timing: node::votor::Timing {
                        timeout_ms: args.votor_timeout_ms,
                        block_ms: args.votor_block_ms,
                    },
                    require_vote_history: !args.do_not_require_vote_history,
                })
            }
        },
    })
}

async fn tower_storage(ledger: &Path, args: &RunArgs) -> anyhow::Result<Arc<dyn TowerStorage>> {
    Ok(match args.tower_storage {
        TowerStorageKind::File => {
            if args.etcd.is_some() {
                bail!("the etcd flags need --tower-storage etcd");
            }
            Arc::new(FileTowerStorage::new(
                args.tower.clone().unwrap_or_else(|| ledger.to_path_buf()),
            ))
        }
        TowerStorageKind::Etcd => {
            let etcd = args.etcd.as_ref().context(
                "--tower-storage etcd needs --etcd-endpoint, --etcd-cacert-file, --etcd-cert-file and --etcd-key-file",
            )?;
            let config = EtcdConfig::from(etcd);
            Arc::new(
                EtcdTowerStorage::connect(&config)
                    .await
                    .context("cannot connect to etcd")?,
            )
        }
    })
}

/// When the etcd client certificate expires (unix seconds), warning in
/// the log when that is within the warning threshold or past.
fn cert_expiry(path: &Path) -> Option<i64> {
    match towerlock_validator::cert_expiry::read(path) {
        Ok((expiry, warning)) => {
            if let Some(warning) = warning {
                tracing::warn!("{warning}");
            }
            Some(expiry)
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the etcd client certificate's expiry");
            None
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
