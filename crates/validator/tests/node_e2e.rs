//! The node's own surfaces, against a real etcd and the local cluster: its
//! JSON-RPC, its Prometheus metrics, and the start-up checks that stop it
//! with one clear sentence.

use std::time::Duration;

use serde_json::{json, Value};
use solana_signer::Signer;
use std::sync::{Arc, Mutex};
use towerlock_cluster::client::RpcClient;

use towerlock_audit::event::Event;
use towerlock_testsupport::lab::{free_port, now_ms, Lab};
use towerlock_testsupport::Must;

const SLOT_MS: u64 = 150;
const WAIT: Duration = Duration::from_secs(60);

fn bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_towerlock-validator"))
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
    let lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let mut args = lab.primary_args();
    let metrics_addr = format!("127.0.0.1:{}", free_port().must());
    args.extend(["--metrics-addr".into(), metrics_addr.clone()]);
    let mut primary = lab.spawn_validator("primary", &args).must();
    let instance = primary.instance(WAIT).await.must();
    let first = lab.cluster.wait_for_vote(&instance, 0, WAIT).await.must();
    // A second vote: the node has finished with the first (sent, counted).
    let vote = lab
        .cluster
        .wait_for_vote(&instance, first.ts_ms, WAIT)
        .await
        .must();
    let voted = vote.lockouts.last().unwrap().0;

    // The node's RPC address, as its admin socket names it.
    let rpc_addr = primary
        .admin_client()
        .await
        .must()
        .rpc_address()
        .await
        .unwrap()
        .expect("the node serves RPC")
        .to_string();
    let rpc = RpcClient::new(format!("http://{rpc_addr}"));
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
    // The admin command line names the same RPC address.
    let out = primary.admin(&["rpc-address"]).await.must();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&rpc_addr));

    let metrics = http_get(&metrics_addr, "/metrics").await;
    assert!(metrics.contains("towerlock_role 1"), "{metrics}");
    // The lab's certificates last a day: their end is exported, the log
    // warns to renew them, and the last vote's time is exported.
    let expiry: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("towerlock_etcd_cert_expiry_timestamp_seconds "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no certificate expiry in {metrics}"));
    let now = now_ms() as i64 / 1000;
    assert!(expiry > now && expiry <= now + 86_400, "{expiry}");
    let log = primary.log_text();
    assert!(log.contains("expires in 0 days: renew it with"), "{log}");
    assert!(
        metrics.contains("towerlock_last_vote_timestamp_seconds 1"),
        "{metrics}"
    );
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
    let lab = Lab::start(bin(), SLOT_MS, None).await.must();

    // The seed's secondary without --no-check-vote-account.
    let args: Vec<String> = lab
        .secondary_args()
        .into_iter()
        .filter(|a| a != "--no-check-vote-account")
        .collect();
    let mut secondary = lab.spawn_validator("secondary", &args).must();
    assert_eq!(secondary.wait_exit(WAIT).await.must().code(), Some(1));
    let log = secondary.log_text();
    assert!(log.contains("--no-check-vote-account"), "{log}");

    // A corrupt tower in etcd stops the primary and is left in place.
    let staked = lab.cluster.keys.identity.pubkey();
    let mut client = lab.etcd.client().await.must();
    client
        .put(format!("{staked}/tower"), b"not a tower".to_vec(), None)
        .await
        .unwrap();
    let mut primary = lab.spawn_validator("primary", &lab.primary_args()).must();
    assert_eq!(primary.wait_exit(WAIT).await.must().code(), Some(1));
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
    let mut node = lab.spawn_validator("loose", &args).must();
    assert_eq!(node.wait_exit(WAIT).await.must().code(), Some(1));
    let log = node.log_text();
    assert!(log.contains("chmod 600"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_exit_stops_the_node_cleanly() {
    let lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let mut primary = lab.spawn_validator("primary", &lab.primary_args()).must();
    let instance = primary.instance(WAIT).await.must();
    lab.cluster.wait_for_vote(&instance, 0, WAIT).await.must();
    // agave's `exit`: a restart window first (a short idle time: the test
    // exercises the wait, not its length), then the exit, then the wait
    // for the process to end.
    let out = primary
        .admin(&["exit", "--min-idle-time", "0.01"])
        .await
        .must();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = primary.wait_exit(WAIT).await.must();
    assert_eq!(status.code(), Some(0));
    assert!(!primary.ledger.join("admin.rpc").exists(), "socket removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voting_primary_produces_its_leader_slots() {
    // Half the stake: leader rotations come often.
    let mut lab = Lab::start_with_stake(bin(), SLOT_MS, None, 50.0)
        .await
        .must();
    let identity = lab.cluster.keys.identity.pubkey().to_string();
    // Watching the fence from before the node runs: every value the
    // `leader` key takes, with when this process learnt it.
    let fences = watch_fences(&lab, &identity).await;
    let mut primary = lab.spawn_validator("primary", &lab.primary_args()).must();
    let instance = primary.instance(WAIT).await.must();
    let block = lab
        .cluster
        .trail
        .wait_for(WAIT, "a block of ours", |e| match e {
            Event::Block(b) if b.instance == instance => Some(b.clone()),
            _ => None,
        })
        .await
        .must();
    assert_eq!(block.leader, identity);
    assert!(!block.duplicate);
    drop(primary);
    lab.cluster.stop().await;

    // Each block was fenced before it was produced. A watch cannot report a
    // write before etcd committed it, so the moment we learnt of the fence
    // of slot S (`fenced_ms`) is at or after its commit; the block's time
    // is when the cluster (in this process, on the same clock) received it.
    // `fenced_ms <= block.ts_ms` therefore proves commit <= block. A node
    // that submits the block first, or never fences it, fails: its commit
    // comes after the block, and so does the watch's report of it.
    let fences = fences.lock().unwrap().clone();
    let ours: Vec<_> = lab
        .cluster
        .blocks()
        .must()
        .into_iter()
        .filter(|b| b.instance == instance)
        .collect();
    assert!(!ours.is_empty());
    for block in &ours {
        let fenced_ms = fences
            .iter()
            .find(|(slot, _)| *slot >= block.slot)
            .map(|(_, ms)| *ms);
        assert!(
            fenced_ms.is_some_and(|fenced_ms| fenced_ms <= block.ts_ms),
            "block {} received at {} ms, its fence seen at {fenced_ms:?} ms (fences: {fences:?})",
            block.slot,
            block.ts_ms
        );
    }
    let report = towerlock_audit::check_file(&lab.cluster.audit_path()).unwrap();
    assert!(report.is_clean(), "{report}");
}

/// Watches `<identity>/leader` on a thread and runtime of its own (so that
/// the test's own work cannot delay it); returns once the watch is in place
/// the list it fills with (fenced slot, ms since the epoch when it arrived).
async fn watch_fences(lab: &Lab, identity: &str) -> Arc<Mutex<Vec<(u64, u64)>>> {
    let fences = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let config = lab.etcd.config();
    let key = format!("{identity}/leader");
    let list = Arc::clone(&fences);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut client = towerlock_etcd::connect(&config).await.unwrap();
            let mut stream = client.watch(key, None).await.unwrap();
            let _ = ready_tx.send(());
            // Ends when etcd goes away with the lab.
            while let Ok(Some(response)) = stream.message().await {
                let arrived = now_ms();
                for event in response.events() {
                    let slot = event
                        .kv()
                        .and_then(|kv| towerlock_storage::parse_leader_record(kv.value()).ok());
                    if let Some(slot) = slot {
                        list.lock().unwrap().push((slot, arrived));
                    }
                }
            }
        });
    });
    ready.await.expect("the watch started");
    fences
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
    let mut lab = Lab::start_with(bin(), None, options).await.must();
    let mut primary = lab.spawn_validator("primary", &lab.primary_args()).must();
    let instance = primary.instance(WAIT).await.must();
    // Blocks produced in three different epochs.
    let mut epochs = std::collections::BTreeSet::new();
    lab.cluster
        .trail
        .wait_for(WAIT, "blocks of ours in three epochs", |e| match e {
            Event::Block(b) if b.instance == instance => {
                epochs.insert(b.slot / 32);
                (epochs.len() >= 3).then_some(())
            }
            _ => None,
        })
        .await
        .unwrap_or_else(|err| panic!("{err}; blocks only in epochs {epochs:?}"));
    assert!(primary.is_running());
    drop(primary);
    lab.cluster.stop().await;
    let report = towerlock_audit::check_file(&lab.cluster.audit_path()).unwrap();
    assert!(report.is_clean(), "{report}");
    // Every block of ours was in a leader slot of ours (the cluster refuses
    // others; none was refused as a duplicate or late).
    assert!(lab.cluster.blocks().must().iter().all(|b| !b.duplicate));
}

/// A stand-in for a Solana RPC node that is not towerlock's local cluster
/// (agave cannot run here): it answers `getSlot` and `getVersion` as agave
/// does, "Method not found" to towerlock's own methods, and no websocket.
async fn fake_solana_rpc() -> String {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = n.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body).await;
                let call: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let id = call["id"].clone();
                let answer = match call["method"].as_str() {
                    Some("getSlot") => json!({"jsonrpc": "2.0", "result": 1000, "id": id}),
                    Some("getVersion") => json!({"jsonrpc": "2.0", "id": id,
                        "result": {"solana-core": "2.3.13", "feature-set": 1}}),
                    _ => json!({"jsonrpc": "2.0", "id": id,
                        "error": {"code": -32601, "message": "Method not found"}}),
                };
                let text = answer.to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = reader.get_mut().write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

/// Pointed at a Solana RPC that is not towerlock's local cluster, the
/// validator says so in one sentence instead of "cannot reach the cluster".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_solana_rpc_that_is_not_a_local_cluster_is_named_as_such() {
    let lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let url = fake_solana_rpc().await;
    let mut args = lab.secondary_args();
    let at = args.iter().position(|a| a == "--entrypoint").unwrap();
    args[at + 1] = url.clone();
    let mut node = lab.spawn_validator("pointed-at-agave", &args).must();
    assert_eq!(node.wait_exit(WAIT).await.must().code(), Some(1));
    let log = node.log_text();
    assert!(
        log.contains(&format!(
            "{url} is a Solana RPC (solana-core 2.3.13), not a towerlock local cluster"
        )),
        "{log}"
    );
}

/// `--log FILE` with logrotate's routine: the file is moved away, SIGUSR1
/// arrives, and later lines go to a new file under the old name while the
/// moved one keeps what was written before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_file_is_reopened_on_sigusr1() {
    let lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let log = lab.dir.join("validator.log");
    let mut args = lab.primary_args();
    args.extend(["--log".into(), log.display().to_string()]);
    let mut primary = lab.spawn_validator("primary", &args).must();
    let instance = primary.instance(WAIT).await.must();
    lab.cluster.wait_for_vote(&instance, 0, WAIT).await.must();
    let rotated = lab.dir.join("validator.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    let pid = primary.pid().unwrap();
    let sent = std::process::Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let reopened =
        towerlock_testsupport::lab::wait_until(WAIT, "the log file reopened", async || {
            Ok(std::fs::read_to_string(&log)
                .ok()
                .filter(|text| text.contains("log file reopened")))
        })
        .await
        .must();
    assert!(
        !reopened.contains("replaying"),
        "start-up lines stay in the moved file"
    );
    let before = std::fs::read_to_string(&rotated).unwrap();
    assert!(before.contains("replaying"), "{before}");
    assert!(primary.is_running());
}
