use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use solana_signer::Signer;
use towerlock_cluster::genesis::{self, Consensus, InitOptions};
use towerlock_cluster::server::{now_ms, Server, ServerConfig};

/// A local cluster that stands in for the Solana network.
#[derive(Debug, clap::Args)]
pub struct ClusterCmd {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClusterCommand {
    /// Create a cluster folder: genesis.json and each validator's key files.
    Init(InitArgs),
    /// Run the cluster until SIGINT or SIGTERM (resumes from the folder's state).
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct InitArgs {
    /// The folder to create the cluster in.
    #[arg(long)]
    dir: PathBuf,
    /// How many of our validators (each a staked identity, a secondary
    /// identity and a vote account; with more than one, one sub-folder each).
    #[arg(long, default_value_t = 1)]
    validators: u32,
    /// Percent of all stake each of our validators holds.
    #[arg(long, default_value_t = 10.0)]
    stake_percent: f64,
    /// Slots per epoch.
    #[arg(long, default_value_t = 8192)]
    epoch_slots: u64,
    /// Default slot length in milliseconds.
    #[arg(long, default_value_t = 400)]
    slot_ms: u64,
    /// Probability that a leader rotation starts a minor fork.
    #[arg(long, default_value_t = 0.02)]
    fork_rate: f64,
    /// Synthetic validators holding the rest of the stake.
    #[arg(long, default_value_t = 20)]
    synthetic: u32,
    /// The consensus the cluster runs, stored in the genesis: `tower`
    /// (TowerBFT) or `alpenglow` (Votor, SIMD-0326).
    #[arg(long, value_enum, default_value_t = ConsensusArg::Tower)]
    consensus: ConsensusArg,
}

/// `--consensus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ConsensusArg {
    Tower,
    Alpenglow,
}

impl From<ConsensusArg> for Consensus {
    fn from(arg: ConsensusArg) -> Self {
        match arg {
            ConsensusArg::Tower => Consensus::Tower,
            ConsensusArg::Alpenglow => Consensus::Alpenglow,
        }
    }
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The folder `towerlock cluster init` made.
    #[arg(long)]
    dir: PathBuf,
    /// Slot length in milliseconds (default: genesis' value).
    #[arg(long)]
    slot_ms: Option<u64>,
    /// JSON-RPC and websocket port on 127.0.0.1 (0 picks a free port).
    #[arg(long, default_value_t = 8899)]
    rpc_port: u16,
    /// Address to listen on.
    #[arg(long, default_value_t = Ipv4Addr::LOCALHOST)]
    bind: Ipv4Addr,
}

impl ClusterCmd {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            ClusterCommand::Init(args) => init(args),
            ClusterCommand::Run(args) => run(args).await,
        }
    }
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let options = InitOptions {
        validators: args.validators,
        stake_percent: args.stake_percent,
        slots_per_epoch: args.epoch_slots,
        slot_ms: args.slot_ms,
        fork_rate: args.fork_rate,
        synthetic: args.synthetic,
    };
    let (genesis, keys) = genesis::init_with(&args.dir, &options, args.consensus.into(), now_ms())
        .with_context(|| format!("cannot create a cluster in {}", args.dir.display()))?;
    println!(
        "genesis: {}",
        args.dir.join(genesis::GENESIS_FILE).display()
    );
    println!("genesis hash: {}", genesis.hash());
    println!("consensus: {}", genesis.consensus);
    for key in &keys {
        println!(
            "validator {}: identity {} (secondary {}), vote account {}, keys in {}",
            key.dir
                .strip_prefix(&args.dir)
                .ok()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| ".".to_string(), |p| p.display().to_string()),
            key.identity.pubkey(),
            key.secondary_identity.pubkey(),
            key.vote_account.pubkey(),
            key.dir.display(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = ServerConfig {
        dir: args.dir.clone(),
        slot_ms: args.slot_ms,
        rpc_addr: SocketAddr::from((args.bind, args.rpc_port)),
    };
    let server = Server::bind(config)
        .await
        .with_context(|| format!("cannot start the cluster in {}", args.dir.display()))?;
    // Both lines are printed before the first slot: scripts and tests read them.
    println!("rpc: {}", server.rpc_url());
    println!("websocket: {}", server.websocket_url());
    println!("audit: {}", server.audit_path().display());
    println!(
        "{} at slot {}",
        if server.resumed() {
            "resumed"
        } else {
            "started"
        },
        server.current_slot()
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let report = server
        .run(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        })
        .await
        .context("the cluster stopped with an error")?;
    println!("stopped after {} slots; state saved", report.slots);
    Ok(ExitCode::SUCCESS)
}
