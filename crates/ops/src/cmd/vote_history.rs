//! `towerlock vote-history`: look at Alpenglow vote histories and move them
//! between agave's files and etcd, as `towerlock tower` does for towers
//! (docs/vote-history.md).

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use solana_pubkey::Pubkey;
use towerlock_etcd::EtcdArgs;
use towerlock_storage::{
    parse_vote_history_file_name, vote_history_file_name, write_vote_history_file,
    EtcdTowerStorage, StorageError, TowerStorage,
};
use towerlock_tower::vote_history::{
    Block, SavedVoteHistory, VoteHistory, MAX_SAVED_VOTE_HISTORY_BYTES,
};

use super::tower::{connect, refuse_running_holder};

#[derive(Debug, Args)]
pub struct VoteHistoryCmd {
    #[command(subcommand)]
    command: VoteHistoryCommand,
}

#[derive(Debug, Subcommand)]
enum VoteHistoryCommand {
    /// Print a saved vote history: node, root, votes cast, signature check.
    ///
    /// From a file (agave's `vote_history-<pubkey>.bin`), or from etcd with
    /// `--identity` and the etcd flags. The history is refused (exit 1) when
    /// its signature does not verify or it belongs to another node.
    Show(ShowArgs),
    /// Copy the vote history of an identity from etcd into agave's file.
    Export(ExportArgs),
    /// Copy an agave vote history file into etcd. Takes the identity's fence
    /// in etcd, so no validator may be running with that identity on etcd.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// The vote history file (omit it to read from etcd).
    #[arg(required_unless_present = "identity")]
    file: Option<PathBuf>,
    /// The node the history must belong to [default: the pubkey in the file
    /// name, else the node the history claims]
    #[arg(long, conflicts_with = "identity")]
    pubkey: Option<Pubkey>,
    /// Read the vote history of this identity from etcd.
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
    /// The identity whose vote history to export.
    #[arg(long, value_name = "PUBKEY")]
    identity: Pubkey,
    /// Directory to write `vote_history-<identity>.bin` into.
    #[arg(long, value_name = "DIR")]
    tower: PathBuf,
    /// Replace an existing vote history file.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    etcd: EtcdArgs,
}

#[derive(Debug, Args)]
#[command(mut_arg("etcd_endpoint", |arg| arg.required(true)))]
struct ImportArgs {
    /// The agave vote history file to import.
    file: PathBuf,
    /// The identity the history must belong to [default: from the file name]
    #[arg(long, value_name = "PUBKEY")]
    identity: Option<Pubkey>,
    /// Import even when etcd holds a history with newer votes, or one that
    /// cannot be read, or a validator holds the fence.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    etcd: EtcdArgs,
}

impl VoteHistoryCmd {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            VoteHistoryCommand::Show(args) => show(args).await,
            VoteHistoryCommand::Export(args) => export(args).await,
            VoteHistoryCommand::Import(args) => import(args).await,
        }
    }
}

async fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let (saved, source) = match (&args.file, args.identity, &args.etcd) {
        (Some(file), _, _) => read_file(file, args.pubkey)?,
        (None, Some(identity), Some(etcd)) => {
            let storage = connect(etcd).await?;
            let saved = storage
                .load_vote_history_unfenced(&identity)
                .await
                .with_context(|| format!("cannot show the vote history of {identity}"))?;
            (
                saved,
                format!("etcd key {}", storage.key(&identity, "vote_history")),
            )
        }
        _ => bail!("give a vote history file, or --identity with the etcd flags"),
    };
    if args.json {
        println!("{}", history_json(&saved));
    } else {
        print_text(&saved, &source);
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let storage = connect(&args.etcd).await?;
    let saved = storage
        .load_vote_history_unfenced(&args.identity)
        .await
        .with_context(|| format!("cannot export the vote history of {}", args.identity))?;
    let path = args.tower.join(vote_history_file_name(&args.identity));
    if path.exists() && !args.force {
        bail!(
            "{} exists; pass --force to replace it (it is left untouched)",
            path.display()
        );
    }
    fs::create_dir_all(&args.tower)
        .with_context(|| format!("cannot create {}", args.tower.display()))?;
    write_vote_history_file(&args.tower, &args.identity, &saved.to_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "exported the vote history of {} (last vote {}) to {}",
        args.identity,
        describe_last_vote(saved.history()),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let (saved, _) = read_file(&args.file, args.identity)?;
    let identity = saved.node_pubkey();
    let storage = connect(&args.etcd).await?;

    // Decide before touching the fence, so that a refusal changes nothing.
    refuse_older(&storage, &saved, &args, "").await?;

    refuse_running_holder(&storage, &identity, args.force).await?;

    let token = if args.force {
        storage.force_takeover(&identity).await?
    } else {
        let token = storage.takeover(&identity).await?.token;
        // Decide again now that no earlier holder can store, in case a
        // store landed since the first look.
        if let Err(err) = refuse_older(&storage, &saved, &args, " now").await {
            storage.release(&token).await?;
            return Err(err.context("nothing was imported"));
        }
        token
    };
    let revision = storage
        .store_vote_history(&token, &saved)
        .await
        .map(|receipt| receipt.revision())
        .with_context(|| format!("cannot store the vote history of {identity}"))?;
    // Leave no instance record behind: the next validator to start takes the
    // fence as if this tool had never held it.
    storage.release(&token).await?;
    println!(
        "imported the vote history of {identity} (last vote {}) into etcd at revision {revision}",
        describe_last_vote(saved.history()),
    );
    Ok(ExitCode::SUCCESS)
}

/// Refuses (unless `--force`) to replace a history in etcd with newer votes
/// than `saved`, or one that cannot be read. None at all is fine.
async fn refuse_older(
    storage: &EtcdTowerStorage,
    saved: &SavedVoteHistory,
    args: &ImportArgs,
    now: &str,
) -> anyhow::Result<()> {
    let identity = saved.node_pubkey();
    match storage.load_vote_history_unfenced(&identity).await {
        Ok(existing) => {
            let theirs = existing.history().last_voted_slot();
            if theirs > saved.history().last_voted_slot() && !args.force {
                bail!(
                    "etcd{now} holds a vote history for {identity} with newer votes (last vote {}) than {} (last vote {}); pass --force to replace it",
                    describe_last_vote(existing.history()),
                    args.file.display(),
                    describe_last_vote(saved.history()),
                );
            }
            Ok(())
        }
        Err(StorageError::VoteHistoryNotFound { .. }) => Ok(()),
        Err(err) if !args.force => Err(anyhow::Error::new(err).context(
            "refusing to replace a vote history in etcd that cannot be read (pass --force to replace it)",
        )),
        Err(err) => {
            eprintln!("warning: replacing an unreadable vote history: {err}");
            Ok(())
        }
    }
}

fn describe_last_vote(history: &VoteHistory) -> String {
    history
        .last_voted_slot()
        .map_or("none".to_string(), |slot| format!("slot {slot}"))
}

/// Reads and verifies a vote history file; the pubkey comes from `pubkey`,
/// the file name, or (failing both) the history's own claim.
fn read_file(path: &Path, pubkey: Option<Pubkey>) -> anyhow::Result<(SavedVoteHistory, String)> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|file| {
            // One byte over the bound is enough to refuse the file unread.
            file.take(MAX_SAVED_VOTE_HISTORY_BYTES + 1)
                .read_to_end(&mut bytes)
        })
        .with_context(|| format!("cannot read {}", path.display()))?;
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_vote_history_file_name);
    let identity = match (pubkey, named) {
        (Some(pubkey), _) => pubkey,
        (None, Some(named)) => named,
        (None, None) => SavedVoteHistory::claimed_node(&bytes)
            .with_context(|| format!("{} is not a saved vote history", path.display()))?,
    };
    match SavedVoteHistory::from_bytes(&bytes, &identity) {
        Ok(saved) => Ok((saved, path.display().to_string())),
        Err(err) => bail!("refusing vote history {}: {err}", path.display()),
    }
}

fn block_json(block: &Block) -> Value {
    json!({ "slot": block.slot, "block_id": block.block_id.to_string() })
}

fn history_json(saved: &SavedVoteHistory) -> Value {
    let h = saved.history();
    let votes: Vec<Value> = h
        .votes()
        .map(|vote| {
            let mut value = json!({ "slot": vote.slot(), "kind": vote.kind() });
            if let Some(block) = vote.block() {
                value["block_id"] = json!(block.block_id.to_string());
            }
            value
        })
        .collect();
    json!({
        "node": h.node_pubkey.to_string(),
        "root": h.root,
        "last_voted_slot": h.last_voted_slot(),
        "voted": h.voted,
        "voted_notar": h.voted_notar.iter()
            .map(|(slot, id)| json!({ "slot": slot, "block_id": id.to_string() }))
            .collect::<Vec<_>>(),
        "voted_notar_fallback": h.voted_notar_fallback.iter()
            .map(|(slot, ids)| json!({
                "slot": slot,
                "block_ids": ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>(),
        "voted_skip_fallback": h.voted_skip_fallback,
        "skipped": h.skipped,
        "its_over": h.its_over,
        "votes_cast": votes,
        "notarized_blocks": h.notarized_blocks.iter().map(block_json).collect::<Vec<_>>(),
        "parent_ready_slots": h.parent_ready_slots.iter()
            .map(|(slot, parents)| json!({
                "slot": slot,
                "parents": parents.iter().map(block_json).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>(),
        "signature_valid": true,
    })
}

fn print_text(saved: &SavedVoteHistory, source: &str) {
    let h = saved.history();
    println!("vote history  {source}");
    println!("node          {}", h.node_pubkey);
    println!("signature     valid ({})", saved.signature());
    println!("root          {}", h.root);
    println!("last vote     {}", describe_last_vote(h));
    println!(
        "certificates  {} notarized blocks, {} parent-ready slots",
        h.notarized_blocks.len(),
        h.parent_ready_slots.len()
    );
    println!(
        "votes cast    {} in {} slots (oldest first)",
        h.votes().count(),
        h.votes_cast.len()
    );
    println!("  {:>12}  {:<17}  block id", "slot", "kind");
    for vote in h.votes() {
        println!(
            "  {:>12}  {:<17}  {}",
            vote.slot(),
            vote.kind(),
            vote.block()
                .map_or(String::new(), |block| block.block_id.to_string())
        );
    }
}
