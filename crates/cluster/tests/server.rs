//! The served cluster: websocket streams, block submission, gossip, audit
//! trail and resume, over real sockets (port 0) with fast slots.

use std::time::Duration;

use serde_json::json;
use solana_signer::Signer;
use towerlock_audit::Event;
use towerlock_cluster::genesis::{self, InitOptions};
use towerlock_cluster::server::{Server, ServerConfig};
use towerlock_wire::api::{
    BankNotification, ContactAddresses, ContactInfo, SignedContactInfo, SubmitBlock,
    BANK_SUBSCRIBE, GOSSIP_SUBSCRIBE, SLOT_SUBSCRIBE,
};
use towerlock_wire::client::{ClientError, RpcClient, Subscription};

const DEADLINE: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

struct Running {
    rpc: RpcClient,
    ws: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<towerlock_cluster::server::RunReport>,
}

async fn start(dir: &std::path::Path) -> Running {
    let server = Server::bind(ServerConfig {
        dir: dir.to_path_buf(),
        slot_ms: Some(20),
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
    })
    .await
    .unwrap();
    let rpc = RpcClient::new(server.rpc_url());
    let ws = server.websocket_url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap()
    });
    Running {
        rpc,
        ws,
        stop,
        task,
    }
}

fn read_trail(dir: &std::path::Path) -> Vec<Event> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| Event::from_line(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_gossip_streams_trail_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut keys) = genesis::init(
        dir.path(),
        &InitOptions {
            stake_percent: 30.0,
            slots_per_epoch: 64,
            fork_rate: 0.0,
            synthetic: 10,
            ..InitOptions::default()
        },
        1,
    )
    .unwrap();
    let keys = keys.remove(0);
    let cluster = start(dir.path()).await;

    // Banks: the stream replays from the root, then follows the clock.
    let mut banks = within(
        "bank subscription",
        Subscription::open(&cluster.ws, BANK_SUBSCRIBE),
    )
    .await
    .unwrap();
    let mut slots = within(
        "slot subscription",
        Subscription::open(&cluster.ws, SLOT_SUBSCRIBE),
    )
    .await
    .unwrap();
    let first: BankNotification = within("first bank", banks.next()).await.unwrap();
    assert_eq!(first.slot, first.root, "the replay starts at the root");
    let slot: serde_json::Value = within("slot notification", slots.next()).await.unwrap();
    assert!(slot["slot"].is_u64() && slot["parent"].is_u64() && slot["root"].is_u64());

    let (leader_slot, parent) = leader_slot_near_the_tip(&cluster, &keys, &mut slots).await;
    let other = submit_blocks(&cluster, &keys, leader_slot, parent).await;
    gossip(&cluster, &keys).await;

    // The block becomes the bank of our leader slot.
    let bank = within("our bank", async {
        loop {
            let bank: BankNotification = banks.next().await.unwrap();
            if bank.slot >= leader_slot {
                return bank;
            }
        }
    })
    .await;
    assert_eq!(bank.slot, leader_slot);
    assert_eq!(bank.leader, keys.identity.pubkey());
    assert_eq!(bank.parent, parent);
    assert_eq!(bank.block_id, solana_hash::Hash::new_from_array([1; 32]));
    // Too late now: refused, but recorded.
    match cluster.rpc.submit_block(&other).await {
        Err(ClientError::Rpc { message, .. }) => {
            assert!(message.contains("has ended"), "{message}")
        }
        other => panic!("late block accepted: {other:?}"),
    }

    let tip_before_stop = processed_slot(&cluster.rpc).await;
    let _ = cluster.stop.send(());
    let report = within("shutdown", cluster.task).await.unwrap();
    assert!(report.slots > 0);
    let trail = check_trail(dir.path(), leader_slot);
    resume(dir.path(), &trail, tip_before_stop).await;
}

async fn processed_slot(rpc: &RpcClient) -> u64 {
    rpc.call("getSlot", json!([{"commitment":"processed"}]))
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

/// Our leader slots after `now + 8`, in this epoch and the next.
async fn our_slot_after(rpc: &RpcClient, identity: &str, now: u64) -> Option<u64> {
    let mut ours = vec![];
    for epoch_first in [now / 64 * 64, now / 64 * 64 + 64] {
        let schedule = rpc
            .call(
                "getLeaderSchedule",
                json!([epoch_first, {"identity": identity}]),
            )
            .await
            .unwrap();
        ours.extend(
            schedule[identity]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|s| epoch_first + s.as_u64().unwrap()),
        );
    }
    ours.into_iter().find(|s| *s > now + 8)
}

/// One of our leader slots a little ahead (this epoch or the next), and the
/// current tip as parent: near enough that the root cannot pass the parent
/// before the slot, far enough to submit in time.
async fn leader_slot_near_the_tip(
    cluster: &Running,
    keys: &genesis::ValidatorKeys,
    slots: &mut Subscription,
) -> (u64, u64) {
    let identity = keys.identity.pubkey().to_string();
    within("a leader slot of ours near the tip", async {
        loop {
            let now = processed_slot(&cluster.rpc).await;
            let next = our_slot_after(&cluster.rpc, &identity, now)
                .await
                .expect("30% of the stake leads");
            if next <= now + 24 {
                return (next, now);
            }
            let _: serde_json::Value = slots.next().await.unwrap();
        }
    })
    .await
}

/// Our block for the slot is taken (and again, harmlessly); another one is
/// a duplicate; a stranger's is refused. Returns the other block.
async fn submit_blocks(
    cluster: &Running,
    keys: &genesis::ValidatorKeys,
    leader_slot: u64,
    parent: u64,
) -> SubmitBlock {
    let block = SubmitBlock::new_signed(
        &keys.identity,
        leader_slot,
        parent,
        solana_hash::Hash::new_from_array([1; 32]),
        "primary",
    );
    let result = cluster.rpc.submit_block(&block).await.unwrap();
    assert!(!result.duplicate);
    // Re-sending the same block is harmless.
    assert!(!cluster.rpc.submit_block(&block).await.unwrap().duplicate);
    // Another block for the slot is a duplicate.
    let other = SubmitBlock::new_signed(
        &keys.identity,
        leader_slot,
        parent,
        solana_hash::Hash::new_from_array([2; 32]),
        "secondary",
    );
    assert!(cluster.rpc.submit_block(&other).await.unwrap().duplicate);
    // Someone else may not produce our slot.
    let forged = SubmitBlock::new_signed(
        &keys.secondary_identity,
        leader_slot,
        parent,
        solana_hash::Hash::new_from_array([3; 32]),
        "x",
    );
    match cluster.rpc.submit_block(&forged).await {
        Err(ClientError::Rpc { message, .. }) => {
            assert!(message.contains("not the leader"), "{message}")
        }
        other => panic!("forged block accepted: {other:?}"),
    }
    other
}

/// A subscriber sees what is published; a forged contact info is refused;
/// getClusterNodes lists the node.
async fn gossip(cluster: &Running, keys: &genesis::ValidatorKeys) {
    let mut gossip = within(
        "gossip subscription",
        Subscription::open(&cluster.ws, GOSSIP_SUBSCRIBE),
    )
    .await
    .unwrap();
    let contact = ContactInfo {
        pubkey: keys.identity.pubkey(),
        outset: 1_700_000_000_000_000,
        instance: "primary".into(),
        version: "0.1.0".into(),
        addresses: ContactAddresses {
            rpc: Some("127.0.0.1:8899".into()),
            ..ContactAddresses::default()
        },
    }
    .sign(&keys.identity);
    cluster.rpc.publish_contact_info(&contact).await.unwrap();
    let pushed: SignedContactInfo = within("gossip push", gossip.next()).await.unwrap();
    assert_eq!(pushed, contact);
    let mut forged = contact.clone();
    forged.info.outset += 1;
    assert!(cluster.rpc.publish_contact_info(&forged).await.is_err());
    let nodes = cluster
        .rpc
        .call("getClusterNodes", json!([]))
        .await
        .unwrap();
    let identity = keys.identity.pubkey().to_string();
    assert!(nodes
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["pubkey"] == identity.as_str() && n["rpc"] == "127.0.0.1:8899"));
}

/// The trail lists both blocks of the leader slot (flagged duplicate), the
/// contact info and banks.
fn check_trail(dir: &std::path::Path, leader_slot: u64) -> Vec<Event> {
    let trail = read_trail(dir);
    let blocks: Vec<_> = trail
        .iter()
        .filter_map(|e| match e {
            Event::Block(b) if b.slot == leader_slot => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert!(blocks.iter().all(|b| b.duplicate));
    assert_eq!(
        blocks
            .iter()
            .map(|b| b.instance.as_str())
            .collect::<Vec<_>>(),
        ["primary", "secondary"]
    );
    assert!(trail
        .iter()
        .any(|e| matches!(e, Event::Contact(c) if c.instance == "primary")));
    let bank_lines = trail.iter().filter(|e| matches!(e, Event::Bank(_))).count();
    assert!(bank_lines > 0);
    trail
}

/// Resume: the clock goes on from the saved slot; the trail is appended.
async fn resume(dir: &std::path::Path, trail: &[Event], tip_before_stop: u64) {
    let resumed = start(dir).await;
    let slot = processed_slot(&resumed.rpc).await;
    assert!(slot >= tip_before_stop, "{slot} after {tip_before_stop}");
    let _ = resumed.stop.send(());
    within("second shutdown", resumed.task).await.unwrap();
    let again = read_trail(dir);
    assert!(again.len() >= trail.len());
    assert_eq!(again[..trail.len()], trail[..]);
}
