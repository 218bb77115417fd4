//! The published Python Solana client (solana-py and solders) calls every
//! served method — against the cluster, websocket subscriptions included, and
//! against a voting node's RPC, which passes cluster-wide methods through —
//! and parses every answer with its strict typed parsers.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use solana_signer::Signer;
use towerlock_cluster::client::RpcClient;
use towerlock_cluster::rpc::methods::{SOLANA_METHODS, SOLANA_SUBSCRIPTIONS};
use towerlock_testsupport::lab::{wait_until, Lab};
use towerlock_testsupport::solana_py;
use towerlock_testsupport::Must;

const SLOT_MS: u64 = 100;
const WAIT: Duration = Duration::from_secs(60);

fn bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_towerlock-validator"))
}

async fn check(http: String, ws: Option<String>, identity: Option<String>) -> BTreeSet<String> {
    tokio::task::spawn_blocking(move || {
        solana_py::check_rpc(&http, ws.as_deref(), identity.as_deref())
            .unwrap_or_else(|e| panic!("{e}"))
    })
    .await
    .unwrap()
    .into_iter()
    .collect()
}

fn names(lists: &[&[&str]]) -> BTreeSet<String> {
    lists
        .iter()
        .flat_map(|l| l.iter().map(|m| m.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_solana_client_parses_every_served_method() {
    // Made first: the first run installs the client from PyPI.
    tokio::task::spawn_blocking(solana_py::python)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let mut primary = lab.spawn_validator("primary", &lab.primary_args()).must();
    let instance = primary.instance(WAIT).await.must();
    let vote = lab.cluster.wait_for_vote(&instance, 0, WAIT).await.must();
    // The script looks for a vote in a block every commitment shows (the
    // client's calls without a commitment read finalized): wait for one.
    let cluster = RpcClient::new(lab.cluster.url.clone());
    wait_until(WAIT, "a landed vote finalized", async || {
        let statuses = cluster
            .call("getSignatureStatuses", json!([[vote.signature]]))
            .await
            .ok();
        let status = statuses.and_then(|s| {
            s["value"][0]["confirmationStatus"]
                .as_str()
                .map(str::to_string)
        });
        Ok(status.filter(|s| s == "finalized"))
    })
    .await
    .must();

    let ws = lab.cluster.url.replacen("http://", "ws://", 1);
    let checked = check(lab.cluster.url.clone(), Some(ws), None).await;
    let expected = names(&[SOLANA_METHODS, SOLANA_SUBSCRIPTIONS]);
    let missing: Vec<_> = expected.difference(&checked).collect();
    assert!(
        missing.is_empty(),
        "not checked against the cluster: {missing:?}"
    );

    let rpc_addr = primary
        .admin_client()
        .await
        .must()
        .rpc_address()
        .await
        .unwrap()
        .expect("the node serves RPC");
    let identity = lab.cluster.keys.identity.pubkey().to_string();
    let checked = check(format!("http://{rpc_addr}"), None, Some(identity)).await;
    let expected = names(&[SOLANA_METHODS]);
    let missing: Vec<_> = expected.difference(&checked).collect();
    assert!(
        missing.is_empty(),
        "not checked against the node: {missing:?}"
    );
}
