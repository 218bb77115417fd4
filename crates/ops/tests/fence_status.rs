//! `towerlock fence status` as an operator runs it, against a real etcd
//! with mutual TLS and a real validator: while it holds the fence, after an
//! orderly exit (which releases it), and after a kill (which does not).

use std::{path::PathBuf, process::Command, time::Duration};

use serde_json::Value;
use solana_signer::Signer;
use towerlock_testsupport::lab::Lab;
use towerlock_testsupport::Must;

const SLOT_MS: u64 = 200;
const WAIT: Duration = Duration::from_secs(60);

fn validator_bin() -> PathBuf {
    towerlock_testsupport::validator_beside(std::path::Path::new(env!("CARGO_BIN_EXE_towerlock")))
}

/// `fence status --json` of the lab's staked identity.
fn fence_status(lab: &Lab) -> Value {
    let identity = lab.cluster.keys.identity.pubkey().to_string();
    let mut args = vec!["fence", "status", "--json", "--identity", &identity];
    let flags = lab.etcd.cli_flags();
    args.extend(flags.iter().map(String::as_str));
    let out = Command::new(env!("CARGO_BIN_EXE_towerlock"))
        .args(&args)
        .output()
        .expect("run towerlock");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_status_follows_a_holder_through_an_orderly_exit_and_a_kill() {
    let lab = Lab::start(&validator_bin(), SLOT_MS, None).await.must();
    let mut primary = lab.spawn_validator("primary", &lab.primary_args()).must();
    let instance = primary.instance(WAIT).await.must();
    lab.cluster.wait_for_vote(&instance, 0, WAIT).await.must();

    // Running: the primary holds the fence, with its token and tower.
    let running = fence_status(&lab);
    let holder = &running["holder"];
    assert_eq!(holder["instance"], instance.as_str());
    assert_eq!(holder["pid"], primary.pid().unwrap());
    let token = holder["fence_token"].as_i64().unwrap();
    assert_eq!(primary.status().await.must().fence_token, Some(token));
    assert!(
        running["tower"]["last_vote"].as_u64().is_some(),
        "{running}"
    );

    // An orderly exit releases the fence and keeps the tower.
    let out = primary.admin(&["exit", "--force"]).await.must();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(primary.wait_exit(WAIT).await.must().code(), Some(0));
    let released = fence_status(&lab);
    assert!(released["holder"].is_null(), "{released}");
    let last_vote = released["tower"]["last_vote"].as_u64().unwrap();
    assert!(last_vote >= running["tower"]["last_vote"].as_u64().unwrap());

    // A kill leaves the fence held by the dead process; the age of its
    // last store says since when nobody stored.
    primary.restart().must();
    let instance = primary.instance(WAIT).await.must();
    lab.cluster
        .wait_for_vote(&instance, last_vote, WAIT)
        .await
        .must();
    let pid = primary.pid().unwrap();
    primary.kill();
    let killed = fence_status(&lab);
    assert_eq!(killed["holder"]["instance"], instance.as_str());
    assert_eq!(killed["holder"]["pid"], pid);
    assert!(
        killed["tower"]["seconds_since_last_vote"]
            .as_i64()
            .is_some(),
        "{killed}"
    );
}
