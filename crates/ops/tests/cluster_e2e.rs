//! `towerlock cluster init` and `towerlock cluster run` as processes: a client
//! sends a real TowerSync vote with `sendTransaction` and sees it land; the
//! audit trail records banks and the vote; SIGTERM stops the cluster cleanly.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use solana_signer::Signer;
use tokio::io::{AsyncBufReadExt, BufReader};
use towerlock_audit::{Event, VoteResult};
use towerlock_wire::api::{BankNotification, BANK_SUBSCRIBE};
use towerlock_wire::client::{RpcClient, Subscription};
use towerlock_wire::vote;

const DEADLINE: Duration = Duration::from_secs(30);

fn towerlock() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_towerlock"));
    command.kill_on_drop(true);
    command
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

async fn init(dir: &Path, extra: &[&str]) -> std::process::Output {
    towerlock()
        .args(["cluster", "init", "--dir"])
        .arg(dir)
        .args(extra)
        .output()
        .await
        .unwrap()
}

/// A `towerlock cluster run` process and what it printed at startup.
struct Running {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    rpc: RpcClient,
    ws_url: String,
    audit: String,
}

/// Initializes a cluster without minor forks in `dir` and runs it with fast
/// slots on a free port.
async fn run_cluster(dir: &Path) -> Running {
    // No minor forks: a vote for a tip that a fork abandons never lands,
    // which is right but not what the tests are about.
    let out = init(
        dir,
        &[
            "--epoch-slots",
            "64",
            "--synthetic",
            "10",
            "--fork-rate",
            "0",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut child = towerlock()
        .args([
            "cluster",
            "run",
            "--slot-ms",
            "20",
            "--rpc-port",
            "0",
            "--dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut rpc_url, mut ws_url, mut audit) = (None, None, None);
    while rpc_url.is_none() || ws_url.is_none() || audit.is_none() {
        let line = within("startup lines", lines.next_line())
            .await
            .unwrap()
            .expect("the cluster exited before printing its addresses");
        if let Some(url) = line.strip_prefix("rpc: ") {
            rpc_url = Some(url.to_string());
        } else if let Some(url) = line.strip_prefix("websocket: ") {
            ws_url = Some(url.to_string());
        } else if let Some(path) = line.strip_prefix("audit: ") {
            audit = Some(path.to_string());
        }
    }
    let (rpc_url, ws_url, audit) = (rpc_url.unwrap(), ws_url.unwrap(), audit.unwrap());
    assert!(!rpc_url.ends_with(":0"), "{rpc_url}");
    Running {
        child,
        lines,
        rpc: RpcClient::new(rpc_url),
        ws_url,
        audit,
    }
}

/// A bank at the tip of its fork, a few slots above the root.
async fn fresh_tip(banks: &mut Subscription) -> BankNotification {
    within("a fresh tip", async {
        loop {
            let bank: BankNotification = banks.next().await.unwrap();
            if bank.slot == bank.tip && bank.slot > bank.root + 2 {
                return bank;
            }
        }
    })
    .await
}

/// Waits until getVoteAccounts (processed) shows `slot` as the account's
/// last vote, looking again after each bank.
async fn wait_landed(
    rpc: &RpcClient,
    banks: &mut Subscription,
    vote_account: &solana_pubkey::Pubkey,
    slot: u64,
) {
    within("the vote to land", async {
        loop {
            let accounts = rpc
                .call(
                    "getVoteAccounts",
                    json!([{"commitment": "processed", "votePubkey": vote_account.to_string()}]),
                )
                .await
                .unwrap();
            // Current, or delinquent if this test was held up for long.
            let landed = ["current", "delinquent"]
                .iter()
                .filter_map(|k| accounts[k].as_array())
                .flatten()
                .find(|a| a["votePubkey"] == vote_account.to_string())
                .map(|a| a["lastVote"].as_u64().unwrap());
            if landed == Some(slot) {
                break;
            }
            let _: BankNotification = banks.next().await.unwrap();
        }
    })
    .await;
}

/// SIGTERM: a clean stop that saves the state.
async fn stop(running: &mut Running, dir: &Path) {
    let pid = running.child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = within("exit after SIGTERM", running.child.wait())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    let mut rest = vec![];
    while let Some(line) = running.lines.next_line().await.unwrap() {
        rest.push(line);
    }
    assert!(
        rest.iter().any(|l| l.starts_with("stopped after")),
        "{rest:?}"
    );
    assert!(dir.join("state.bin").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_sent_to_a_running_cluster_lands_and_sigterm_stops_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let mut running = run_cluster(&dir).await;
    assert_eq!(Path::new(&running.audit), dir.join("audit.jsonl"));

    let identity = solana_keypair::read_keypair_file(dir.join("validator-keypair.json")).unwrap();
    let vote_account = solana_keypair::read_keypair_file(dir.join("vote-account-keypair.json"))
        .unwrap()
        .pubkey();

    // Vote on a bank of the tip's fork, as a validator would.
    let mut banks = within(
        "subscribe",
        Subscription::open(&running.ws_url, BANK_SUBSCRIBE),
    )
    .await
    .unwrap();
    let bank = fresh_tip(&mut banks).await;
    let tower_sync = vote::tower_sync(&[(bank.slot, 1)], None, bank.hash, bank.block_id);
    let tx = vote::vote_transaction(
        &identity,
        &identity,
        &vote_account,
        tower_sync,
        bank.blockhash,
    );
    let signature = within(
        "sendTransaction",
        running.rpc.send_transaction(&tx, Some("e2e"), false),
    )
    .await
    .unwrap();
    assert_eq!(signature, tx.signatures[0].to_string());
    wait_landed(&running.rpc, &mut banks, &vote_account, bank.slot).await;

    stop(&mut running, &dir).await;

    let trail: Vec<Event> = std::fs::read_to_string(&running.audit)
        .unwrap()
        .lines()
        .map(|l| Event::from_line(l).unwrap())
        .collect();
    let bank_hash = bank.hash.to_string();
    assert!(trail
        .iter()
        .any(|e| matches!(e, Event::Bank(b) if b.slot == bank.slot && b.hash == bank_hash)));
    let votes: Vec<_> = trail
        .iter()
        .filter_map(|e| match e {
            Event::Vote(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(votes.len(), 1);
    assert_eq!(votes[0].result, VoteResult::Accepted);
    assert_eq!(votes[0].instance, "e2e");
    assert_eq!(votes[0].lockouts, vec![(bank.slot, 1)]);
    assert_eq!(votes[0].hash, bank_hash);
    assert_eq!(votes[0].vote_account, vote_account.to_string());
}

#[tokio::test]
async fn init_writes_keygen_files_private_and_refuses_an_existing_cluster() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("two");
    let out = init(&dir, &["--validators", "2", "--stake-percent", "20"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for sub in ["validator-0", "validator-1"] {
        for file in [
            "validator-keypair.json",
            "secondary-validator-keypair.json",
            "vote-account-keypair.json",
        ] {
            let path = dir.join(sub).join(file);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
            let bytes: Vec<u8> =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(bytes.len(), 64);
            solana_keypair::read_keypair_file(&path).unwrap();
        }
    }
    let again = init(&dir, &[]).await;
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already holds a genesis"), "{stderr}");
    let too_much = init(
        &tmp.path().join("x"),
        &["--validators", "5", "--stake-percent", "25"],
    )
    .await;
    assert!(!too_much.status.success());
}
