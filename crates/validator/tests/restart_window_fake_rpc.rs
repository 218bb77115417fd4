//! The poller against a small fake node RPC, for what the local cluster
//! cannot show: the cluster always answers `getHealth` with "ok" and has no
//! `getIdentity` (that is the node's). This is a stand-in for a node, not
//! for the cluster: it answers fixed JSON over a plain TCP listener.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use solana_pubkey::Pubkey;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use towerlock_validator::restart_window::decision::{Health, WaitKind};
use towerlock_validator::restart_window::status::{PollStatus, StatusSink};
use towerlock_validator::restart_window::{
    wait_for_restart_window, NodeRpc, Outcome, WaitForRestartWindowArgs, WaitReason,
};

/// A node whose slot advances every 20 ms from 1000 (epoch 1 of 1000-slot
/// epochs), whose identity leads nowhere, and which is behind by 40 slots
/// for its first `behind_polls` health checks.
struct FakeNode {
    identity: Pubkey,
    started: Instant,
    behind_polls: u64,
    health_calls: AtomicU64,
    /// The identities `getLeaderSchedule` was asked for.
    schedule_asked: std::sync::Mutex<Vec<String>>,
}

impl FakeNode {
    fn slot(&self) -> u64 {
        1000 + self.started.elapsed().as_millis() as u64 / 20
    }

    fn answer(&self, call: &Value) -> Value {
        let id = call["id"].clone();
        let ok = |result: Value| json!({ "jsonrpc": "2.0", "result": result, "id": id });
        match call["method"].as_str().unwrap_or_default() {
            "getIdentity" => ok(json!({ "identity": self.identity.to_string() })),
            "getSlot" => ok(json!(self.slot())),
            "getEpochInfo" => {
                let slot = self.slot();
                ok(json!({
                    "epoch": slot / 1000, "slotIndex": slot % 1000, "slotsInEpoch": 1000,
                    "absoluteSlot": slot, "blockHeight": slot, "transactionCount": null,
                }))
            }
            "getHealth" => {
                let n = self.health_calls.fetch_add(1, Ordering::SeqCst);
                if n < self.behind_polls {
                    json!({ "jsonrpc": "2.0", "id": id, "error": {
                        "code": -32005, "message": "Node is behind by 40 slots",
                        "data": { "numSlotsBehind": 40 } } })
                } else {
                    ok(json!("ok"))
                }
            }
            "getLeaderSchedule" => {
                let asked = call["params"][1]["identity"].as_str().unwrap_or_default();
                self.schedule_asked.lock().unwrap().push(asked.to_string());
                ok(json!({}))
            }
            "getVoteAccounts" => ok(json!({
                "current": [{ "activatedStake": 99 }],
                "delinquent": [{ "activatedStake": 1 }],
            })),
            _ => json!({ "jsonrpc": "2.0", "id": id,
                         "error": { "code": -32601, "message": "Method not found" } }),
        }
    }
}

/// Serves `node` over HTTP/1.1 (keep-alive) on a free port; returns the URL.
async fn serve(node: Arc<FakeNode>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let node = node.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                loop {
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if read.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let call: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let answer = node.answer(&call).to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if write.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[derive(Default)]
struct Recorder {
    waits: Vec<WaitReason>,
    shown: Vec<String>,
}

impl StatusSink for Recorder {
    fn waiting(&mut self, _now: Instant, status: &PollStatus<'_>) {
        self.waits.push(status.reason.clone());
        self.shown
            .push(towerlock_validator::restart_window::status::status_text(
                status,
            ));
    }
    fn note(&mut self, _now: Instant, _text: &str) {}
    fn finish(&mut self) {}
}

fn node(behind_polls: u64) -> Arc<FakeNode> {
    Arc::new(FakeNode {
        identity: Pubkey::new_unique(),
        started: Instant::now(),
        behind_polls,
        health_calls: AtomicU64::new(0),
        schedule_asked: Default::default(),
    })
}

#[tokio::test]
async fn waits_while_the_node_is_behind_then_ready_with_the_nodes_own_identity() {
    let node = node(3);
    let url = serve(node.clone()).await;
    let args = WaitForRestartWindowArgs {
        min_idle_slots: Some(50),
        timeout: Some(Duration::from_secs(30)),
        ..WaitForRestartWindowArgs::new()
    };
    let mut recorder = Recorder::default();
    let mut out = Vec::new();
    let outcome = wait_for_restart_window(&NodeRpc::new(url), &args, &mut recorder, &mut out)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Ready { .. }), "{outcome:?}");
    // Three polls found the node behind, the fourth ready.
    assert_eq!(
        recorder.waits,
        vec![
            WaitReason::Unhealthy {
                health: Health::Behind { slots: 40 }
            };
            3
        ]
    );
    assert!(
        recorder.shown[0]
            .ends_with("| 1 % delinquent stake | Node is unhealthy: node behind by 40 slots"),
        "{}",
        recorder.shown[0]
    );
    // No --identity: the node's own, from getIdentity.
    let header = String::from_utf8(out).unwrap();
    assert!(header.contains(&format!("Identity: {}", node.identity)));
    assert_eq!(
        *node.schedule_asked.lock().unwrap(),
        vec![node.identity.to_string()]
    );
}

#[tokio::test]
async fn skip_health_check_does_not_ask() {
    let node = node(u64::MAX);
    let url = serve(node.clone()).await;
    let args = WaitForRestartWindowArgs {
        min_idle_slots: Some(50),
        skip_health_check: true,
        timeout: Some(Duration::from_secs(30)),
        ..WaitForRestartWindowArgs::new()
    };
    let mut recorder = Recorder::default();
    let outcome =
        wait_for_restart_window(&NodeRpc::new(url), &args, &mut recorder, &mut Vec::new())
            .await
            .unwrap();
    assert!(matches!(outcome, Outcome::Ready { .. }), "{outcome:?}");
    assert!(recorder.waits.is_empty());
    assert_eq!(node.health_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn timeout_reports_what_it_waited_for() {
    let node = node(u64::MAX);
    let url = serve(node).await;
    let args = WaitForRestartWindowArgs {
        min_idle_slots: Some(50),
        timeout: Some(Duration::from_millis(500)),
        ..WaitForRestartWindowArgs::new()
    };
    let mut recorder = Recorder::default();
    let outcome =
        wait_for_restart_window(&NodeRpc::new(url), &args, &mut recorder, &mut Vec::new())
            .await
            .unwrap();
    let Outcome::TimedOut { last: Some(reason) } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(reason.kind(), WaitKind::Unhealthy);
    let report = towerlock_validator::restart_window::Report {
        outcome: &outcome,
        timeout: args.timeout,
    }
    .to_string();
    assert_eq!(
        report,
        "Timed out after 500ms waiting: Node is unhealthy: node behind by 40 slots"
    );
}
