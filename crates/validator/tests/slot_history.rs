//! The node reads the cluster's SlotHistory sysvar over RPC (what it places
//! a restored tower's old votes with): the finalized bank's history, the
//! rooted chain up to the root.

use std::time::Duration;

use serde_json::json;
use solana_slot_history::Check;
use towerlock_cluster::client::RpcClient;
use towerlock_cluster::genesis::InitOptions;
use towerlock_testsupport::lab::{wait_until, LabCluster};
use towerlock_testsupport::Must;
use towerlock_validator::node::slot_history;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_reads_the_rooted_chain_from_the_clusters_slot_history() {
    let dir = tempfile::tempdir().unwrap();
    let options = InitOptions {
        slot_ms: 20,
        fork_rate: 0.3,
        synthetic: 10,
        ..InitOptions::default()
    };
    let cluster = LabCluster::start(dir.path(), &options).await.must();
    let rpc = RpcClient::new(cluster.url.clone());
    let finalized = || async {
        rpc.call("getSlot", json!([{ "commitment": "finalized" }]))
            .await
            .ok()
            .and_then(|slot| slot.as_u64())
    };
    let root = wait_until(Duration::from_secs(30), "a root past slot 40", async || {
        Ok(finalized().await.filter(|root| *root > 40))
    })
    .await
    .must();
    let history = slot_history::fetch(&rpc).await.unwrap();
    assert!(history.newest() >= root, "{} < {root}", history.newest());
    // The blocks the cluster finalized (as far back as it keeps them) are
    // exactly the history's slots.
    let newest = history.newest();
    let first: u64 = rpc
        .call_as("getFirstAvailableBlock", json!([]))
        .await
        .unwrap();
    let blocks: Vec<u64> = rpc
        .call_as("getBlocks", json!([first, newest]))
        .await
        .unwrap();
    let blocks: std::collections::BTreeSet<u64> = blocks.into_iter().collect();
    for slot in first..=newest {
        let expected = if blocks.contains(&slot) {
            Check::Found
        } else {
            Check::NotFound
        };
        assert_eq!(history.check(slot), expected, "slot {slot}");
    }
    assert!(
        blocks.len() < (newest - first) as usize + 1,
        "forks or skips left slots out"
    );
}
