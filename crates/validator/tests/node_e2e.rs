//! The node's own surfaces, against a real etcd and the local cluster: its
//! JSON-RPC, its Prometheus metrics, and the start-up checks that stop it
//! with one clear sentence.

use std::time::Duration;

use serde_json::{json, Value};
use solana_signer::Signer;
use towerlock_cluster::client::RpcClient;
use towerlock_testsupport::lab::Lab;

const SLOT_MS: u64 = 150;
const WAIT: Duration = Duration::from_secs(60);

fn bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_towerlock-validator"))
}

fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .to_string()
}

async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_rpc_and_metrics_report_a_voting_primary() {
    let lab = Lab::start(bin(), SLOT_MS, None).await;
    let mut args = lab.primary_args();
    args.extend(["--metrics-addr".into(), "127.0.0.1:0".into()]);
    let mut primary = lab.spawn_validator("primary", &args);
    let instance = primary.instance(WAIT).await.unwrap();
    let rpc_line = primary.wait_for_log("node RPC", WAIT).await.unwrap();
    let metrics_line = primary.wait_for_log(" metrics", WAIT).await.unwrap();
    let first = lab.cluster.wait_for_vote(&instance, 0, WAIT).await.unwrap();
    // A second vote: the node has finished with the first (sent, counted).
    let vote = lab
        .cluster
        .wait_for_vote(&instance, first.ts_ms, WAIT)
        .await
        .unwrap();
    let voted = vote.lockouts.last().unwrap().0;

    let rpc = RpcClient::new(format!("http://{}", field(&rpc_line, "addr")));
    let identity = lab.cluster.keys.identity.pubkey().to_string();
    assert_eq!(
        rpc.call("getIdentity", json!([])).await.unwrap(),
        json!({ "identity": identity })
    );
    assert_eq!(rpc.call("getHealth", json!([])).await.unwrap(), json!("ok"));
    assert!(
        rpc.call("getSlot", json!([]))
            .await
            .unwrap()
            .as_u64()
            .unwrap()
            >= voted
    );
    // Cluster-wide methods pass through, with Solana's shapes.
    let epoch: Value = rpc.call("getEpochInfo", json!([])).await.unwrap();
    assert!(epoch["slotsInEpoch"].as_u64().is_some(), "{epoch}");
    // The admin socket names the same RPC address.
    let out = primary.admin(&["rpc-address"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains(&field(&rpc_line, "addr")));

    let metrics = http_get(&field(&metrics_line, "addr"), "/metrics").await;
    assert!(metrics.contains("towerlock_role 1"), "{metrics}");
    let sent: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("towerlock_votes_sent_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(sent >= 1, "{metrics}");
    assert!(
        metrics.contains("towerlock_store_seconds_count"),
        "{metrics}"
    );
    assert!(!metrics.contains("towerlock_fence_token 0\n"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refusals_are_one_sentence_and_touch_nothing() {
    let lab = Lab::start(bin(), SLOT_MS, None).await;

    // The seed's secondary without --no-check-vote-account.
    let args: Vec<String> = lab
        .secondary_args()
        .into_iter()
        .filter(|a| a != "--no-check-vote-account")
        .collect();
    let mut secondary = lab.spawn_validator("secondary", &args);
    assert_eq!(secondary.wait_exit(WAIT).await.unwrap().code(), Some(1));
    let log = secondary.log_text();
    assert!(log.contains("--no-check-vote-account"), "{log}");

    // A corrupt tower in etcd stops the primary and is left in place.
    let staked = lab.cluster.keys.identity.pubkey();
    let mut client = lab.etcd.client().await;
    client
        .put(format!("{staked}/tower"), b"not a tower".to_vec(), None)
        .await
        .unwrap();
    let mut primary = lab.spawn_validator("primary", &lab.primary_args());
    assert_eq!(primary.wait_exit(WAIT).await.unwrap().code(), Some(1));
    let log = primary.log_text();
    assert!(
        log.contains("corrupt") && log.contains("left untouched"),
        "{log}"
    );
    let tower = client.get(format!("{staked}/tower"), None).await.unwrap();
    assert_eq!(tower.kvs()[0].value(), b"not a tower");
    let instance = client
        .get(format!("{staked}/instance"), None)
        .await
        .unwrap();
    assert!(instance.kvs().is_empty(), "nobody's fence moved");

    // A keypair file others can read.
    let loose = lab.dir.join("loose-keypair.json");
    std::fs::copy(lab.cluster.identity_file(), &loose).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut args = lab.primary_args();
    args[1] = loose.display().to_string();
    let mut node = lab.spawn_validator("loose", &args);
    assert_eq!(node.wait_exit(WAIT).await.unwrap().code(), Some(1));
    let log = node.log_text();
    assert!(log.contains("chmod 600"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_exit_stops_the_node_cleanly() {
    let lab = Lab::start(bin(), SLOT_MS, None).await;
    let mut primary = lab.spawn_validator("primary", &lab.primary_args());
    let instance = primary.instance(WAIT).await.unwrap();
    lab.cluster.wait_for_vote(&instance, 0, WAIT).await.unwrap();
    let out = primary.admin(&["exit"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = primary.wait_exit(WAIT).await.expect("the node exits");
    assert_eq!(status.code(), Some(0));
    assert!(!primary.ledger.join("admin.rpc").exists(), "socket removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voting_primary_produces_its_leader_slots() {
    // Half the stake: leader rotations come often.
    let mut lab = Lab::start_with_stake(bin(), SLOT_MS, None, 50.0).await;
    let mut primary = lab.spawn_validator("primary", &lab.primary_args());
    let instance = primary.instance(WAIT).await.unwrap();
    let until = std::time::Instant::now() + WAIT;
    let block = loop {
        if let Some(block) = lab
            .cluster
            .blocks()
            .into_iter()
            .find(|b| b.instance == instance)
        {
            break block;
        }
        assert!(std::time::Instant::now() < until, "no block produced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let identity = lab.cluster.keys.identity.pubkey().to_string();
    assert_eq!(block.leader, identity);
    assert!(!block.duplicate);
    // The block was fenced first: etcd's leader key names a slot at least
    // as new.
    let mut client = lab.etcd.client().await;
    let leader = client
        .get(format!("{identity}/leader"), None)
        .await
        .unwrap();
    let fenced: u64 = std::str::from_utf8(leader.kvs()[0].value())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        fenced >= block.slot,
        "fenced {fenced}, produced {}",
        block.slot
    );
    drop(primary);
    lab.cluster.stop().await;
    let report = towerlock_audit::check_file(&lab.cluster.audit_path()).unwrap();
    assert!(report.is_clean(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_slots_follow_the_schedule_across_epochs() {
    // 32-slot epochs of 60 ms slots: a new leader schedule every 2 s.
    let options = towerlock_cluster::genesis::InitOptions {
        slot_ms: 60,
        slots_per_epoch: 32,
        fork_rate: 0.0,
        synthetic: 6,
        stake_percent: 50.0,
        ..Default::default()
    };
    let mut lab = Lab::start_with(bin(), None, options).await;
    let mut primary = lab.spawn_validator("primary", &lab.primary_args());
    let instance = primary.instance(WAIT).await.unwrap();
    // Blocks produced in three different epochs.
    let until = std::time::Instant::now() + WAIT;
    loop {
        let epochs: std::collections::BTreeSet<u64> = lab
            .cluster
            .blocks()
            .iter()
            .filter(|b| b.instance == instance)
            .map(|b| b.slot / 32)
            .collect();
        if epochs.len() >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "blocks only in epochs {epochs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(primary.is_running());
    drop(primary);
    lab.cluster.stop().await;
    let report = towerlock_audit::check_file(&lab.cluster.audit_path()).unwrap();
    assert!(report.is_clean(), "{report}");
    // Every block of ours was in a leader slot of ours (the cluster refuses
    // others; none was refused as a duplicate or late).
    assert!(lab.cluster.blocks().iter().all(|b| !b.duplicate));
}
