//! `votorSubscribe` over a real socket (port 0, fast slots): the stream
//! delivers blocks, certificates, finalizations and the current slot of an
//! Alpenglow cluster, and a TowerBFT cluster refuses the subscription.

use std::time::Duration;

use towerlock_cluster::genesis::{self, Consensus, InitOptions};
use towerlock_cluster::server::{Server, ServerConfig};
use towerlock_wire::client::Subscription;
use towerlock_wire::votor::{CertificateKind, VotorNotification, VOTOR_SUBSCRIBE};

const DEADLINE: Duration = Duration::from_secs(20);

async fn serve(
    consensus: Consensus,
) -> (tempfile::TempDir, String, tokio::sync::oneshot::Sender<()>) {
    let dir = tempfile::tempdir().unwrap();
    let options = InitOptions {
        slots_per_epoch: 64,
        fork_rate: 0.0,
        synthetic: 6,
        ..InitOptions::default()
    };
    genesis::init_with(dir.path(), &options, consensus, 0).unwrap();
    let server = Server::bind(ServerConfig {
        dir: dir.path().to_path_buf(),
        slot_ms: Some(20),
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
    })
    .await
    .unwrap();
    let ws = server.websocket_url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        server
            .run(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap()
    });
    (dir, ws, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votor_subscribe_streams_blocks_certificates_and_slots() {
    let (_dir, ws, stop) = serve(Consensus::Alpenglow).await;
    let mut sub = Subscription::open(&ws, VOTOR_SUBSCRIBE).await.unwrap();
    let (mut block, mut fast, mut finalized, mut slot) = (None, false, false, false);
    let seen = tokio::time::timeout(DEADLINE, async {
        while !(block.is_some() && fast && finalized && slot) {
            match sub.next::<VotorNotification>().await.unwrap() {
                VotorNotification::Block(b) if b.slot > 0 => block = Some(b),
                VotorNotification::Certificate(c)
                    if c.kind == CertificateKind::FastFinalization
                        && Some(c.slot) == block.map(|b| b.slot) =>
                {
                    assert_eq!(c.block_id, block.map(|b| b.block_id));
                    fast = true;
                }
                VotorNotification::Finalized { slot, .. }
                    if Some(slot) == block.map(|b| b.slot) =>
                {
                    finalized = true
                }
                VotorNotification::Slot { .. } => slot = true,
                _ => {}
            }
        }
    })
    .await;
    assert!(
        seen.is_ok(),
        "block {block:?}, fast {fast}, finalized {finalized}, slot {slot}"
    );
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_cluster_refuses_the_subscription() {
    let (_dir, ws, stop) = serve(Consensus::Tower).await;
    let refused = Subscription::open(&ws, VOTOR_SUBSCRIBE).await;
    let Err(error) = refused else {
        panic!("a TowerBFT cluster took votorSubscribe")
    };
    assert!(
        error.to_string().contains("--consensus alpenglow"),
        "{error}"
    );
    let _ = stop.send(());
}
