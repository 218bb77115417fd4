//! `towerlock status` as an operator runs it beside a real pair: a voting
//! primary and the seed's secondary as hot spare, etcd with mutual TLS.

use std::{process::Command, time::Duration};

use serde_json::Value;
use solana_signer::Signer;
use towerlock_testsupport::lab::{Lab, Role, ValidatorProcess};
use towerlock_testsupport::Must;

const SLOT_MS: u64 = 200;
const WAIT: Duration = Duration::from_secs(60);

async fn rpc_url(node: &ValidatorProcess) -> String {
    let mut admin = node.admin_client().await.must();
    let address = admin.rpc_address().await.unwrap().expect("an RPC");
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_active_node_the_hot_spare_and_the_fence_holder() {
    let towerlock = std::path::Path::new(env!("CARGO_BIN_EXE_towerlock"));
    let lab = Lab::start(
        &towerlock.with_file_name("towerlock-validator"),
        SLOT_MS,
        None,
    )
    .await
    .must();
    let (primary, instance) = lab
        .start_validator("primary", &lab.primary_args(), Role::Voting, WAIT)
        .await
        .must();
    let (secondary, _) = lab.start_hot_spare("secondary", WAIT).await.must();
    lab.cluster.wait_for_vote(&instance, 0, WAIT).await.must();
    let (primary_rpc, secondary_rpc) = (rpc_url(&primary).await, rpc_url(&secondary).await);
    let identity = lab.cluster.keys.identity.pubkey().to_string();
    let etcd = lab.etcd.cli_flags();
    let out = Command::new(towerlock)
        .args(["status", "--json", "--identity", &identity])
        .args([
            "--node-rpc-url",
            &secondary_rpc,
            "--node-rpc-url",
            &primary_rpc,
        ])
        .args(&etcd)
        .output()
        .expect("run towerlock status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = value["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["role"], "hot spare", "{value}");
    assert_eq!(nodes[0]["rpc"], secondary_rpc.as_str());
    assert_eq!(nodes[1]["role"], "active", "{value}");
    assert_eq!(nodes[1]["identity"], identity.as_str());
    assert_eq!(nodes[1]["health"], "ok", "{value}");
    assert_eq!(value["fence"]["holder"]["instance"], instance.as_str());
    assert!(value["vote"]["last_vote"].as_u64().is_some(), "{value}");

    // The text screen says the same.
    let out = Command::new(towerlock)
        .args([
            "status",
            "--identity",
            &identity,
            "--node-rpc-url",
            &primary_rpc,
        ])
        .args(["--node-rpc-url", &secondary_rpc])
        .args(&etcd)
        .output()
        .expect("run towerlock status");
    let screen = String::from_utf8(out.stdout).unwrap();
    assert!(
        screen.contains(&format!("Fence holder    instance {instance}")),
        "{screen}"
    );
    assert!(!screen.contains("WARNING"), "{screen}");
}
