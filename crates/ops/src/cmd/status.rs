//! `towerlock status`: the pair on one screen — which node is active and
//! which is the hot spare, the identity's last vote, each node's health,
//! the fence holder, the sentinel's state.
//!
//! Only standard Solana RPC (getIdentity, getHealth, getSlot,
//! getVoteAccounts), etcd (read-only) and the sentinel's metrics page are
//! read, so it works the same beside agave.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};
use solana_pubkey::Pubkey;
use towerlock_etcd::{EtcdArgs, EtcdConfig};
use towerlock_storage::EtcdTowerStorage;
use towerlock_validator::{health::Health, restart_window::NodeRpc};
use towerlock_wire::client::RpcClient;

/// Show the pair on one screen.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The staked identity the pair shares.
    #[arg(long, value_name = "PUBKEY")]
    identity: Pubkey,
    /// A node's JSON-RPC (repeat: the primary's, the secondary's).
    #[arg(long = "node-rpc-url", value_name = "URL", required = true)]
    nodes: Vec<String>,
    /// A JSON-RPC of the cluster [default: the first node's].
    #[arg(long, value_name = "URL")]
    cluster_rpc_url: Option<String>,
    /// The sentinel's metrics page (http://HOST:PORT/metrics).
    #[arg(long, value_name = "URL")]
    sentinel_metrics_url: Option<String>,
    #[command(flatten)]
    etcd: Option<EtcdArgs>,
    /// Redraw the screen every --interval-ms until Ctrl-C.
    #[arg(long)]
    watch: bool,
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    interval_ms: u64,
    /// Print JSON instead of text (once).
    #[arg(long, conflicts_with = "watch")]
    json: bool,
}

/// A call that does not answer in time counts as no answer.
const CALL: Duration = Duration::from_secs(2);

impl StatusArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let fence = match &self.etcd {
            Some(etcd) => Some(
                EtcdTowerStorage::connect(&EtcdConfig::from(etcd))
                    .await
                    .context("cannot connect to etcd")?,
            ),
            None => None,
        };
        loop {
            let value = self.read(fence.as_ref()).await;
            if self.json {
                println!("{value}");
                return Ok(ExitCode::SUCCESS);
            }
            if self.watch && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                // Clear the screen and home the cursor: one screen, redrawn
                // (into a file or a pipe, one screen after the other).
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", render(&value));
            if !self.watch {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                () = tokio::time::sleep(Duration::from_millis(self.interval_ms)) => {}
            }
        }
    }

    /// Everything, read at once.
    async fn read(&self, fence: Option<&EtcdTowerStorage>) -> Value {
        let cluster_url = self.cluster_rpc_url.as_ref().unwrap_or(&self.nodes[0]);
        let mut nodes = Vec::new();
        for url in &self.nodes {
            nodes.push(node(url, &self.identity).await);
        }
        let (vote, fence, sentinel) = tokio::join!(
            last_vote(cluster_url, &self.identity),
            fence_holder(fence, &self.identity),
            sentinel_state(self.sentinel_metrics_url.as_deref()),
        );
        json!({
            "identity": self.identity.to_string(),
            "nodes": nodes,
            "vote": vote,
            "fence": fence,
            "sentinel": sentinel,
        })
    }
}

async fn bounded<T>(future: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(CALL, future).await.ok()
}

/// One node: its identity (active when it is the staked one), health, slot.
async fn node(url: &str, staked: &Pubkey) -> Value {
    let rpc = NodeRpc::new(url);
    let (identity, health, slot) = tokio::join!(
        bounded(rpc.identity()),
        bounded(rpc.health()),
        bounded(rpc.slot())
    );
    let identity = identity.and_then(Result::ok);
    let health = match health {
        Some(Health::Ok) => "ok".to_string(),
        Some(Health::Behind { slots }) => format!("behind by {slots} slots"),
        Some(Health::Unknown) | None => "unknown".to_string(),
    };
    let role = match identity {
        None => "unreachable",
        Some(id) if id == *staked => "active",
        Some(_) => "hot spare",
    };
    json!({
        "rpc": url,
        "identity": identity.map(|id| id.to_string()),
        "role": role,
        "health": health,
        "slot": slot.and_then(Result::ok),
    })
}

/// The identity's vote account as the cluster sees it.
async fn last_vote(cluster_url: &str, identity: &Pubkey) -> Value {
    let cluster = RpcClient::new(cluster_url);
    let params = json!([{ "commitment": "processed", "keepUnstakedDelinquents": true }]);
    let (accounts, slot) = tokio::join!(
        bounded(cluster.call("getVoteAccounts", params)),
        bounded(cluster.call("getSlot", json!([{ "commitment": "processed" }]))),
    );
    let Some(Ok(accounts)) = accounts else {
        return json!({ "error": format!("getVoteAccounts from {cluster_url} failed") });
    };
    let me = identity.to_string();
    let find = |list: &str| {
        accounts[list]
            .as_array()
            .and_then(|a| a.iter().find(|v| v["nodePubkey"] == me.as_str()).cloned())
    };
    let (account, delinquent) = match (find("current"), find("delinquent")) {
        (Some(account), _) => (account, false),
        (None, Some(account)) => (account, true),
        (None, None) => {
            return json!({ "error": format!("no vote account names {me} as its node") })
        }
    };
    json!({
        "vote_account": account["votePubkey"],
        "last_vote": account["lastVote"],
        "root": account["rootSlot"],
        "delinquent": delinquent,
        "cluster_slot": slot.and_then(Result::ok),
    })
}

async fn fence_holder(fence: Option<&EtcdTowerStorage>, identity: &Pubkey) -> Value {
    let Some(storage) = fence else {
        return Value::Null;
    };
    match storage.fence_status(identity).await {
        Ok(status) => super::fence::status_json(&status, super::fence::now_secs()),
        Err(err) => json!({ "error": err.to_string() }),
    }
}

/// The sentinel's state: the `towerlock_sentinel_state` series set to 1.
async fn sentinel_state(url: Option<&str>) -> Value {
    let Some(url) = url else {
        return Value::Null;
    };
    match bounded(towerlock_wire::client::get_text(url)).await {
        Some(Ok(text)) => json!({ "state": parse_sentinel_state(&text) }),
        Some(Err(err)) => json!({ "error": err.to_string() }),
        None => json!({ "error": format!("{url} did not answer") }),
    }
}

/// `towerlock_sentinel_state{state="suspect"} 1` → `suspect`.
fn parse_sentinel_state(metrics: &str) -> Option<String> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix("towerlock_sentinel_state{state=\"")?;
        let (state, value) = rest.split_once("\"}")?;
        (value.trim() == "1").then(|| state.to_string())
    })
}

/// The screen.
fn render(value: &Value) -> String {
    let mut lines = vec![format!(
        "Identity  {}",
        value["identity"].as_str().unwrap_or("?")
    )];
    lines.push(String::new());
    lines.push(format!(
        "{:<12} {:<46} {:<24} {}",
        "ROLE", "NODE IDENTITY", "HEALTH", "RPC"
    ));
    for node in value["nodes"].as_array().into_iter().flatten() {
        lines.push(format!(
            "{:<12} {:<46} {:<24} {}",
            node["role"].as_str().unwrap_or("?"),
            node["identity"].as_str().unwrap_or("-"),
            node["health"].as_str().unwrap_or("?"),
            node["rpc"].as_str().unwrap_or("?"),
        ));
    }
    let actives = value["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["role"] == "active")
        .count();
    if actives != 1 {
        lines.push(format!(
            "WARNING: {actives} nodes report the staked identity (expected 1)"
        ));
    }
    lines.push(String::new());
    let vote = &value["vote"];
    lines.push(match vote.get("error") {
        Some(err) => format!("Last vote       unknown: {}", err.as_str().unwrap_or("?")),
        None => format!(
            "Last vote       {} (cluster slot {}, root {}){}",
            vote["last_vote"],
            vote["cluster_slot"],
            vote["root"],
            if vote["delinquent"] == true {
                ", DELINQUENT"
            } else {
                ""
            }
        ),
    });
    lines.push(match &value["fence"] {
        Value::Null => "Fence holder    (no etcd flags given)".to_string(),
        fence if fence.get("error").is_some() => format!(
            "Fence holder    unknown: {}",
            fence["error"].as_str().unwrap_or("?")
        ),
        fence => match &fence["holder"] {
            Value::Null => "Fence holder    nobody".to_string(),
            holder => format!(
                "Fence holder    instance {} (host {}, pid {}), token {}",
                holder["instance"].as_str().unwrap_or("?"),
                holder["host"].as_str().unwrap_or("?"),
                holder["pid"],
                holder["fence_token"]
            ),
        },
    });
    lines.push(match &value["sentinel"] {
        Value::Null => "Sentinel        (no --sentinel-metrics-url given)".to_string(),
        sentinel => match (sentinel["state"].as_str(), sentinel["error"].as_str()) {
            (Some(state), _) => format!("Sentinel        {state}"),
            (None, Some(err)) => format!("Sentinel        unreachable: {err}"),
            (None, None) => "Sentinel        state unknown".to_string(),
        },
    });
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentinel_state_is_the_series_set_to_one() {
        let page = "# HELP x\ntowerlock_sentinel_state{state=\"healthy\"} 0\n\
                    towerlock_sentinel_state{state=\"suspect\"} 1\n";
        assert_eq!(parse_sentinel_state(page), Some("suspect".into()));
        assert_eq!(parse_sentinel_state("nothing"), None);
    }

    #[test]
    fn two_active_nodes_are_shouted() {
        let value = json!({
            "identity": "I",
            "nodes": [{"role": "active"}, {"role": "active"}],
            "vote": {"error": "x"}, "fence": null, "sentinel": null,
        });
        assert!(render(&value).contains("WARNING: 2 nodes report the staked identity"));
    }
}
