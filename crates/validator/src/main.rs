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
use tokio::sync::{mpsc, watch};
use towerlock_etcd::{EtcdArgs, EtcdConfig};
use towerlock_storage::{EtcdTowerStorage, FileTowerStorage, TowerStorage};
use towerlock_validator::{
    admin::{self, keypair::read_keypair_file, AdminCommand, AdminServer, NodeStatus, Role},
    metrics::Metrics,
    node::{self, NodeConfig, NodeHandle, Published, UnavailablePolicy},
    restart_window::{self, WaitForRestartWindowArgs},
};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

/// A validator node for towerlock's local cluster that stores its tower
/// behind a fence (etcd with mutual TLS, or agave's tower files) before every
/// vote, and answers agave's admin RPC on <ledger>/admin.rpc.
#[derive(Debug, Parser)]
#[command(name = "towerlock-validator", version)]
struct Cli {
    /// Ledger directory: holds the admin socket (admin.rpc) and, by default,
    /// the tower files.
    #[arg(long, value_name = "DIR", global = true, default_value = "ledger")]
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
    #[arg(long, value_name = "KEYPAIR")]
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

    /// The cluster's JSON-RPC address (http://HOST:PORT or HOST:PORT).
    #[arg(long, value_name = "URL")]
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

    /// Accept keypair files that group or others may read.
    #[arg(long)]
    allow_insecure_keypair_files: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, reload) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr),
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

    std::fs::create_dir_all(ledger)
        .with_context(|| format!("cannot create the ledger directory {}", ledger.display()))?;
    let storage: Arc<dyn TowerStorage> = match args.tower_storage {
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
    };

    let shutdown = shutdown_on_signals();
    let (published_tx, published_rx) = watch::channel(Published {
        status: NodeStatus {
            slot: 0,
            identity: identity.pubkey(),
            vote_account: Some(vote_account),
            role: Role::Starting,
            last_vote_slot: None,
            root: None,
            fence_token: None,
            last_store_latency_ms: None,
            leader_slots_produced: 0,
            leader_slots_skipped: 0,
            cluster_slot: None,
            instance: storage.instance().id.to_string(),
            loaded_last_vote: None,
            votes_sent: 0,
            votes_rejected: 0,
        },
        contact: None,
        caught_up: false,
    });
    let metrics = Arc::new(Metrics::default());

    let rpc_listener = match args.rpc_port {
        Some(port) => Some(
            tokio::net::TcpListener::bind((args.rpc_bind_address, port))
                .await
                .with_context(|| format!("cannot bind the RPC port {port}"))?,
        ),
        None => None,
    };
    let rpc_addr = rpc_listener.as_ref().and_then(node::rpc::local_addr);
    if let Some(addr) = rpc_addr {
        tracing::info!(%addr, "node RPC");
    }

    // The admin socket comes first, so that it answers "starting" during
    // start-up (agave's behaviour).
    let (commands_tx, commands_rx) = mpsc::channel(16);
    let admin_server = AdminServer::bind(
        ledger,
        admin::ServerConfig {
            allow_insecure_keypair_files: insecure,
            ..admin::ServerConfig::default()
        },
    )
    .await
    .context("cannot open the admin socket")?;
    tracing::info!(socket = %admin_server.socket_path().display(), "admin RPC");
    let handler = Arc::new(NodeHandle::new(
        commands_tx,
        published_rx.clone(),
        rpc_addr,
        Some(set_log_filter),
    ));
    let admin_task = tokio::spawn(admin_server.run(handler, shutdown.clone().wait()));
    if let Some(listener) = rpc_listener {
        tokio::spawn(node::rpc::serve(
            listener,
            published_rx.clone(),
            cluster_url.clone(),
            args.catchup_slots,
            shutdown.clone().wait(),
        ));
    }
    if let Some(addr) = args.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot bind the metrics address {addr}"))?;
        let metrics = metrics.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        );
        let bound = listener.local_addr().unwrap_or(addr);
        let stop = shutdown.clone().wait();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
        });
        tracing::info!(addr = %bound, "metrics");
    }

    let config = NodeConfig {
        identity,
        vote_account,
        authorized_voters,
        check_vote_account: !args.no_check_vote_account,
        storage,
        cluster_url,
        unavailable: args.etcd_unavailable,
        catchup_slots: args.catchup_slots,
        rpc_addr,
    };
    let result = node::run(
        config,
        commands_rx,
        published_tx,
        metrics,
        shutdown.clone().wait(),
    )
    .await;
    shutdown.trigger();
    let _ = admin_task.await;
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(exit) => {
            eprintln!("error: {exit}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Shutdown shared by every service: SIGINT/SIGTERM or the node stopping.
#[derive(Clone)]
struct Shutdown(watch::Sender<bool>);

fn shutdown_on_signals() -> Shutdown {
    let (tx, _) = watch::channel(false);
    let shutdown = Shutdown(tx);
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        on_signal.trigger();
    });
    shutdown
}

impl Shutdown {
    fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once shutdown was triggered.
    async fn wait(self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}
