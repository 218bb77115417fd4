//! `towerlock cluster init` and `towerlock cluster run` as processes: a client
//! sends a real TowerSync vote with `sendTransaction` and sees it land; the
//! audit trail records banks and the vote; SIGTERM stops the cluster cleanly.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use solana_signer::Signer;
use tokio::io::{AsyncBufReadExt, BufReader};
use towerlock_audit::Event;
use towerlock_cluster::api::{self, BankHash, BankNotification, BANK_SUBSCRIBE};
use towerlock_cluster::client::{RpcClient, Subscription};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_sent_to_a_running_cluster_lands_and_sigterm_stops_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    // No minor forks: a vote for a tip that a fork abandons never lands,
    // which is right but not what this test is about.
    let out = init(
        &dir,
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
        .arg(&dir)
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
    assert_eq!(Path::new(&audit), dir.join("audit.jsonl"));
    assert!(!rpc_url.ends_with(":0"), "{rpc_url}");
    let rpc = RpcClient::new(rpc_url);

    let identity = solana_keypair::read_keypair_file(dir.join("validator-keypair.json")).unwrap();
    let vote_account = solana_keypair::read_keypair_file(dir.join("vote-account-keypair.json"))
        .unwrap()
        .pubkey();

    // Vote on a bank of the tip's fork, as a validator would.
    let mut banks = within("subscribe", Subscription::open(&ws_url, BANK_SUBSCRIBE))
        .await
        .unwrap();
    let bank: BankNotification = within("a fresh tip", async {
        loop {
            let bank: BankNotification = banks.next().await.unwrap();
            if bank.slot == bank.tip && bank.slot > bank.root + 2 {
                return bank;
            }
        }
    })
    .await;
    let tower_sync = api::tower_sync(&[(bank.slot, 1)], None, &bank.hash, &bank.block_id).unwrap();
    let blockhash: BankHash = bank.blockhash.parse().unwrap();
    let tx = api::vote_transaction(&identity, &identity, &vote_account, tower_sync, blockhash);
    let signature = within(
        "sendTransaction",
        rpc.send_transaction(&tx, Some("e2e"), false),
    )
    .await
    .unwrap();
    assert_eq!(signature, tx.signatures[0].to_string());

    // It lands: getVoteAccounts (processed) shows it as the last vote.
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
            if landed == Some(bank.slot) {
                break;
            }
            // Look again after the next bank froze.
            let _: BankNotification = banks.next().await.unwrap();
        }
    })
    .await;

    // SIGTERM: a clean stop that saves the state.
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = within("exit after SIGTERM", child.wait()).await.unwrap();
    assert!(status.success(), "{status}");
    let mut rest = vec![];
    while let Some(line) = lines.next_line().await.unwrap() {
        rest.push(line);
    }
    assert!(
        rest.iter().any(|l| l.starts_with("stopped after")),
        "{rest:?}"
    );
    assert!(dir.join("state.bin").exists());

    let trail: Vec<Event> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| Event::from_line(l).unwrap())
        .collect();
    assert!(trail
        .iter()
        .any(|e| matches!(e, Event::Bank(b) if b.slot == bank.slot && b.hash == bank.hash)));
    let votes: Vec<_> = trail
        .iter()
        .filter_map(|e| match e {
            Event::Vote(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(votes.len(), 1);
    assert_eq!(votes[0].result, "ok");
    assert_eq!(votes[0].instance, "e2e");
    assert_eq!(votes[0].lockouts, vec![(bank.slot, 1)]);
    assert_eq!(votes[0].hash, bank.hash);
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
