//! `towerlock fence status`: who holds an identity's fence in etcd, and
//! what is stored under it.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use solana_pubkey::Pubkey;
use towerlock_etcd::{EtcdArgs, EtcdConfig};
use towerlock_storage::{EtcdTowerStorage, FenceStatus};

#[derive(Debug, Args)]
pub struct FenceCmd {
    #[command(subcommand)]
    command: FenceCommand,
}

#[derive(Debug, Subcommand)]
enum FenceCommand {
    /// Show who holds an identity's fence (host, pid, version, start
    /// time), the fence token, the last stored vote and root, the last
    /// fenced leader slot, and how long ago the holder last stored.
    ///
    /// Read-only: the reader's certificate is enough. An orderly exit
    /// releases the fence; a crashed or hung holder keeps it, and the age
    /// of its last store tells since when.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
#[command(mut_arg("etcd_endpoint", |arg| arg.required(true)))]
struct StatusArgs {
    /// The staked identity.
    #[arg(long, value_name = "PUBKEY")]
    identity: Pubkey,
    #[command(flatten)]
    etcd: EtcdArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl FenceCmd {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            FenceCommand::Status(args) => status(args).await,
        }
    }
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let storage = EtcdTowerStorage::connect(&EtcdConfig::from(&args.etcd))
        .await
        .context("cannot connect to etcd")?;
    let status = storage
        .fence_status(&args.identity)
        .await
        .with_context(|| format!("cannot read the fence of {}", args.identity))?;
    let value = status_json(&status, now_secs());
    if args.json {
        println!("{value}");
    } else {
        print!("{}", status_text(&value));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The status as JSON (what `--json` prints, and what the text renders).
pub fn status_json(status: &FenceStatus, now: i64) -> Value {
    let holder = status.holder.as_ref().map(|holder| {
        json!({
            "instance": holder.record.id.to_string(),
            "host": holder.record.host,
            "pid": holder.record.pid,
            "version": holder.record.version,
            "started_at_ms": holder.record.started_at_ms,
            "fence_token": holder.token,
        })
    });
    let tower = status.tower.as_ref().map(|tower| match tower {
        Ok(stored) => {
            let tower = stored.tower.tower();
            let stamp = tower.last_timestamp();
            let stamped = (stamp.timestamp > 0).then_some(stamp.timestamp);
            json!({
                "last_vote": tower.last_voted_slot(),
                "root": tower.root(),
                "store_revision": stored.revision,
                "last_vote_timestamp": stamped,
                "seconds_since_last_vote": stamped.map(|t| (now - t).max(0)),
            })
        }
        Err(err) => json!({ "error": err.to_string() }),
    });
    let leader = status.last_leader_slot.as_ref().map(|slot| match slot {
        Ok(slot) => json!(slot),
        Err(err) => json!({ "error": err.to_string() }),
    });
    let vote_history = status.vote_history.as_ref().map(|stored| match stored {
        Ok(stored) => {
            let history = stored.history.history();
            json!({
                "last_voted_slot": history.last_voted_slot(),
                "root": history.root,
                "votes": history.votes().count(),
                "store_revision": stored.revision,
            })
        }
        Err(err) => json!({ "error": err.to_string() }),
    });
    json!({
        "identity": status.identity.to_string(),
        "revision": status.revision,
        "holder": holder,
        "tower": tower,
        "last_leader_slot": leader,
        "vote_history": vote_history,
    })
}

/// The status as an operator reads it.
pub fn status_text(value: &Value) -> String {
    let mut lines = vec![format!(
        "Identity:          {}",
        value["identity"].as_str().unwrap_or("?")
    )];
    lines.push(match &value["holder"] {
        Value::Null => {
            "Fence:             nobody holds it (released by an orderly exit, or never taken)"
                .into()
        }
        holder => format!(
            "Fence:             held by instance {} (host {}, pid {}, version {}, started {})",
            holder["instance"].as_str().unwrap_or("?"),
            holder["host"].as_str().unwrap_or("?"),
            holder["pid"],
            holder["version"].as_str().unwrap_or("?"),
            started(holder["started_at_ms"].as_u64()),
        ),
    });
    if let Some(token) = value["holder"]["fence_token"].as_i64() {
        lines.push(format!(
            "Fence token:       {token} (etcd revision of its takeover)"
        ));
    }
    lines.push(tower_line(&value["tower"]));
    if let Some(age) = value["tower"]["seconds_since_last_vote"].as_i64() {
        let note = if value["holder"].is_null() {
            ""
        } else {
            " (a holder that stopped storing may have crashed or hung)"
        };
        lines.push(format!(
            "Last store:        {age} s ago, by its vote's timestamp{}",
            if age > 60 { note } else { "" }
        ));
    }
    lines.push(match &value["last_leader_slot"] {
        Value::Null => "Last leader slot:  none fenced".into(),
        Value::Object(err) => format!(
            "Last leader slot:  unreadable: {}",
            err["error"].as_str().unwrap_or("?")
        ),
        slot => format!("Last leader slot:  {slot}"),
    });
    lines.push(match &value["vote_history"] {
        Value::Null => "Vote history:      none stored (Alpenglow only)".into(),
        history if history.get("error").is_some() => format!(
            "Vote history:      unusable: {}",
            history["error"].as_str().unwrap_or("?")
        ),
        history => format!(
            "Vote history:      last vote {} (root {}, {} votes), stored at revision {}",
            history["last_voted_slot"]
                .as_u64()
                .map_or("none".into(), |s| format!("slot {s}")),
            history["root"],
            history["votes"],
            history["store_revision"],
        ),
    });
    lines.push(format!("Read at revision:  {}", value["revision"]));
    lines.join("\n") + "\n"
}

fn tower_line(tower: &Value) -> String {
    match tower {
        Value::Null => "Last stored vote:  no tower stored".into(),
        tower if tower.get("error").is_some() => {
            format!(
                "Last stored vote:  the stored tower is unusable: {}",
                tower["error"].as_str().unwrap_or("?")
            )
        }
        tower => format!(
            "Last stored vote:  {} (root {}), stored at revision {}",
            tower["last_vote"]
                .as_u64()
                .map_or("none".into(), |s| format!("slot {s}")),
            tower["root"]
                .as_u64()
                .map_or("none".into(), |s| s.to_string()),
            tower["store_revision"],
        ),
    }
}

fn started(ms: Option<u64>) -> String {
    let Some(ms) = ms.filter(|ms| *ms > 0) else {
        return "unknown".into();
    };
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms after the epoch"))
}
