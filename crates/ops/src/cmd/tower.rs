//! `towerlock tower`: look at saved towers and move them between agave's
//! files and etcd.

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::json;
use solana_pubkey::Pubkey;
use towerlock_etcd::{EtcdArgs, EtcdConfig};
use towerlock_storage::{
    parse_tower_file_name, tower_file_name, write_tower_file, EtcdTowerStorage, StorageError,
    TowerStorage,
};
use towerlock_tower::{SavedTower, SavedTowerFormat, Tower};

#[derive(Debug, Args)]
pub struct TowerCmd {
    #[command(subcommand)]
    command: TowerCommand,
}

#[derive(Debug, Subcommand)]
enum TowerCommand {
    /// Print a saved tower: node, root, lockouts, last vote, signature check.
    ///
    /// From a file (agave's `tower-1_9-<pubkey>.bin` or the older
    /// `tower-<pubkey>.bin`), or from etcd with `--identity` and the etcd
    /// flags. The tower is refused (exit 1) when its signature does not verify
    /// or it belongs to another node.
    Show(ShowArgs),
    /// Copy the tower of an identity from etcd into agave's tower file.
    Export(ExportArgs),
    /// Copy an agave tower file into etcd (the migration path from file
    /// storage). Takes the identity's fence in etcd, so no validator may be
    /// running with that identity on etcd.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// The tower file (omit it to read from etcd).
    #[arg(required_unless_present = "identity")]
    file: Option<PathBuf>,
    /// The node the tower must belong to [default: the pubkey in the file
    /// name, else the node the tower claims]
    #[arg(long, conflicts_with = "identity")]
    pubkey: Option<Pubkey>,
    /// Read the tower of this identity from etcd.
    #[arg(
        long,
        value_name = "PUBKEY",
        requires = "etcd_endpoint",
        conflicts_with = "file"
    )]
    identity: Option<Pubkey>,
    #[command(flatten)]
    etcd: Option<EtcdArgs>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(mut_arg("etcd_endpoint", |arg| arg.required(true)))]
struct ExportArgs {
    /// The identity whose tower to export.
    #[arg(long, value_name = "PUBKEY")]
    identity: Pubkey,
    /// Directory to write `tower-1_9-<identity>.bin` into (agave's --tower).
    #[arg(long, value_name = "DIR")]
    tower: PathBuf,
    /// Replace an existing tower file.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    etcd: EtcdArgs,
}

#[derive(Debug, Args)]
#[command(mut_arg("etcd_endpoint", |arg| arg.required(true)))]
struct ImportArgs {
    /// The agave tower file to import.
    file: PathBuf,
    /// The identity the tower must belong to [default: from the file name]
    #[arg(long, value_name = "PUBKEY")]
    identity: Option<Pubkey>,
    /// Import even when etcd holds a tower with newer votes, or one that
    /// cannot be read.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    etcd: EtcdArgs,
}

impl TowerCmd {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            TowerCommand::Show(args) => show(args).await,
            TowerCommand::Export(args) => export(args).await,
            TowerCommand::Import(args) => import(args).await,
        }
    }
}

pub(super) async fn connect(args: &EtcdArgs) -> anyhow::Result<EtcdTowerStorage> {
    let config = EtcdConfig::from(args);
    EtcdTowerStorage::connect(&config)
        .await
        .context("cannot connect to etcd")
}

async fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let (saved, source) = match (&args.file, args.identity, &args.etcd) {
        (Some(file), _, _) => read_tower_file(file, args.pubkey)?,
        (None, Some(identity), Some(etcd)) => {
            let storage = connect(etcd).await?;
            let saved = storage
                .load_unfenced(&identity)
                .await
                .with_context(|| format!("cannot show the tower of {identity}"))?;
            (
                saved,
                format!("etcd key {}", storage.key(&identity, "tower")),
            )
        }
        _ => bail!("give a tower file, or --identity with the etcd flags"),
    };
    print_tower(&saved, &source, args.json);
    Ok(ExitCode::SUCCESS)
}

async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let storage = connect(&args.etcd).await?;
    let saved = storage
        .load_unfenced(&args.identity)
        .await
        .with_context(|| format!("cannot export the tower of {}", args.identity))?;
    let path = args.tower.join(tower_file_name(&args.identity));
    if path.exists() && !args.force {
        bail!(
            "{} exists; pass --force to replace it (it is left untouched)",
            path.display()
        );
    }
    fs::create_dir_all(&args.tower)
        .with_context(|| format!("cannot create {}", args.tower.display()))?;
    // The file store's durable write: a failure leaves the old file whole.
    write_tower_file(&args.tower, &args.identity, &saved.to_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "exported the tower of {} (last vote {}) to {}",
        args.identity,
        describe_last_vote(saved.tower()),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A fence holder is a validator that may still be running: importing
/// would fence it out in the middle of its work, so an import refuses unless
/// forced. (An orderly exit releases the fence: a holder is running, crashed
/// or hung; the age of its last store tells which is likelier.)
pub(super) async fn refuse_running_holder(
    storage: &EtcdTowerStorage,
    identity: &Pubkey,
    force: bool,
) -> anyhow::Result<()> {
    let status = storage.fence_status(identity).await?;
    if let Some(holder) = &status.holder {
        let holder = &holder.record;
        if !force {
            bail!(
                "{holder} holds the fence of {identity} in etcd{}: importing would stop that validator if it runs; \
                 stop it (`exit` releases the fence), or if it crashed, pass --force",
                last_store_age(&status)
            );
        }
        eprintln!("note: taking the fence of {identity} from {holder}");
    }
    Ok(())
}

async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let (saved, _) = read_tower_file(&args.file, args.identity)?;
    let identity = saved.node_pubkey();
    let storage = connect(&args.etcd).await?;

    // Decide before touching the fence, so that a refusal changes nothing.
    match storage.load_unfenced(&identity).await {
        Ok(existing) => {
            let theirs = existing.tower().last_voted_slot();
            let ours = saved.tower().last_voted_slot();
            if theirs > ours && !args.force {
                bail!(
                    "etcd holds a tower for {identity} with newer votes (last vote {}) than {} (last vote {}); pass --force to replace it",
                    describe_last_vote(existing.tower()),
                    args.file.display(),
                    describe_last_vote(saved.tower()),
                );
            }
        }
        Err(StorageError::NotFound { .. }) => {}
        Err(err) if !args.force => return Err(anyhow::Error::new(err).context(
            "refusing to replace a tower in etcd that cannot be read (pass --force to replace it)",
        )),
        Err(err) => eprintln!("warning: replacing an unreadable tower: {err}"),
    }

    refuse_running_holder(&storage, &identity, args.force).await?;

    let token = if args.force {
        storage.force_takeover(&identity).await?
    } else {
        let taken = storage.takeover(&identity).await?;
        // Decide again on the tower read with the fence, in case a store
        // landed since the first look.
        if let Some(existing) = &taken.tower {
            if existing.tower().last_voted_slot() > saved.tower().last_voted_slot() {
                storage.release(&taken.token).await?;
                bail!(
                    "etcd now holds a tower for {identity} with newer votes (last vote {}); nothing was imported",
                    describe_last_vote(existing.tower())
                );
            }
        }
        taken.token
    };
    let stored = storage
        .store(&token, &saved)
        .await
        .with_context(|| format!("cannot store the tower of {identity}"))?;
    // Leave no instance record behind: the next validator to start takes the
    // fence as if this tool had never held it.
    storage.release(&token).await?;
    println!(
        "imported the tower of {identity} (last vote {}) into etcd at revision {}",
        describe_last_vote(saved.tower()),
        stored.revision()
    );
    Ok(ExitCode::SUCCESS)
}

/// ", last store N s ago" by the stored tower's last vote timestamp.
fn last_store_age(status: &towerlock_storage::FenceStatus) -> String {
    let value = super::fence::status_json(status, super::fence::now_secs());
    value["tower"]["seconds_since_last_vote"]
        .as_i64()
        .map_or(String::new(), |age| format!(", last store {age} s ago"))
}

fn describe_last_vote(tower: &Tower) -> String {
    tower
        .last_voted_slot()
        .map_or("none".to_string(), |slot| format!("slot {slot}"))
}

/// Reads and verifies a tower file; the pubkey comes from `pubkey`, the file
/// name, or (failing both) the tower's own claim.
fn read_tower_file(path: &Path, pubkey: Option<Pubkey>) -> anyhow::Result<(SavedTower, String)> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_tower_file_name);
    let legacy = named.is_some_and(|n| n.legacy);
    let identity = match (pubkey, named) {
        (Some(pubkey), _) => pubkey,
        (None, Some(named)) => named.identity,
        (None, None) => SavedTower::claimed_node(&bytes, legacy)
            .with_context(|| format!("{} is not a saved tower", path.display()))?,
    };
    let decoded = if legacy {
        SavedTower::from_legacy_bytes(&bytes, &identity)
    } else {
        SavedTower::from_bytes(&bytes, &identity)
    };
    match decoded {
        Ok(saved) => Ok((saved, path.display().to_string())),
        Err(err) => bail!("refusing tower {}: {err}", path.display()),
    }
}

fn format_name(format: SavedTowerFormat) -> &'static str {
    match format {
        SavedTowerFormat::Current => "current (SavedTowerVersions::Current, Tower1_14_11)",
        SavedTowerFormat::Versioned1_7_14 => "1.7.14 (SavedTowerVersions::V1_17_14)",
        SavedTowerFormat::Legacy1_7_14 => "1.7.14 (bare, tower-<pubkey>.bin)",
    }
}

fn print_tower(saved: &SavedTower, source: &str, as_json: bool) {
    let tower: &Tower = saved.tower();
    let last_vote = tower.last_vote();
    if as_json {
        let lockouts: Vec<_> = tower
            .lockouts()
            .iter()
            .map(|l| json!([l.slot(), l.confirmation_count()]))
            .collect();
        let value = json!({
            "node": tower.node_pubkey().to_string(),
            "root": tower.root(),
            "lockouts": lockouts,
            "last_vote": {
                "slot": last_vote.last_voted_slot(),
                "hash": last_vote.hash().to_string(),
                "timestamp": last_vote.timestamp(),
            },
            "signature_valid": true,
        });
        println!("{value}");
        return;
    }
    println!("tower      {source}");
    println!("node       {}", tower.node_pubkey());
    println!("signature  valid ({})", saved.signature());
    println!("format     {}", format_name(saved.format()));
    match tower.root() {
        Some(root) => println!("root       {root}"),
        None => println!("root       none"),
    }
    match last_vote.last_voted_slot() {
        Some(slot) => println!(
            "last vote  slot {slot}, hash {}, timestamp {}",
            last_vote.hash(),
            last_vote
                .timestamp()
                .map_or("none".to_string(), |t| t.to_string())
        ),
        None => println!("last vote  none"),
    }
    println!("lockouts   {} (deepest first)", tower.lockouts().len());
    println!(
        "  {:>12}  {:>13}  {:>16}",
        "slot", "confirmations", "locked out until"
    );
    for lockout in tower.lockouts() {
        println!(
            "  {:>12}  {:>13}  {:>16}",
            lockout.slot(),
            lockout.confirmation_count(),
            lockout.last_locked_out_slot()
        );
    }
}
