//! The sentinel against the lab: real etcd with TLS, the local cluster
//! (400 ms slots), `towerlock-validator` processes; every run audited.
//!
//! Needs `towerlock-validator` built next to the test binary's folder
//! (`cargo build -p towerlock-validator`). The active node cut off from the
//! cluster while it still reaches etcd is in `cut_off.rs` (behind a fault
//! proxy).

use std::time::Duration;

use towerlock_lab::{now_ms, Lab, Role, ValidatorProcess};
use towerlock_sentinel::{Entry, Event};

mod common;
use common::{config, start, validator_bin, WAIT};

const SLOT_MS: u64 = 400;

async fn lab_with_pair() -> (Lab, ValidatorProcess, String, ValidatorProcess, String) {
    let lab = Lab::start(&validator_bin(), SLOT_MS, None)
        .await
        .expect("the lab starts");
    let (primary, p_instance) = lab
        .start_validator("primary", &lab.primary_args(), Role::Voting, WAIT)
        .await
        .expect("the primary votes");
    lab.cluster
        .wait_for_more_votes(&p_instance, 3, WAIT)
        .await
        .expect("primary votes");
    let (spare, s_instance) = lab
        .start_hot_spare("secondary", WAIT)
        .await
        .expect("a hot spare");
    (lab, primary, p_instance, spare, s_instance)
}

async fn audit_clean(lab: &mut Lab) {
    lab.cluster.stop().await;
    let report = towerlock_audit::check_file(&lab.cluster.audit_path()).expect("auditable");
    assert!(report.is_clean(), "audit: {report}");
}

fn promotions(entries: &[Entry]) -> usize {
    entries
        .iter()
        .filter(|e| e.event == Event::PromotionSent)
        .count()
}

/// kill -9 of the primary, seen by three sentinels in turn: without a fence
/// (agave mode) it refuses; `--dry-run` changes nothing; with the spare
/// frozen (not caught up) it waits; thawed, the spare is promoted and votes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_agave_refusal_dry_run_local_behind_then_promotion() {
    let (mut lab, mut primary, _, mut spare, s_instance) = lab_with_pair().await;
    let mut agave = start(config(&lab, &spare, false));
    agave
        .wait_for(Event::Decision, |e| e.fields["state"] == "healthy")
        .await;
    primary.kill();
    let killed_ms = now_ms();
    agave
        .wait_for(Event::Decision, |e| {
            e.fields["reason"]
                .as_str()
                .unwrap_or("")
                .contains("no fence")
        })
        .await;
    let seen = agave.drain();
    let report = agave.finish().await;
    assert!(report.promotions.is_empty() && promotions(&seen) == 0);

    let mut dry = config(&lab, &spare, true);
    dry.dry_run = true;
    let mut dry = start(dry);
    let sent = dry.wait_for(Event::PromotionSent, |_| true).await;
    assert_eq!(sent.fields["dry_run"], true);
    let report = dry.finish().await;
    assert!(report.promotions.iter().all(|p| p.dry_run));
    let status = spare.status().await.expect("status");
    assert_eq!(status.role, Role::HotSpare, "a dry run changed the spare");

    let mut admin = spare.admin_client().await.expect("admin");
    let rpc = admin
        .rpc_address()
        .await
        .expect("rpcAddress")
        .expect("an RPC");
    spare.pause().expect("freeze the spare");
    let mut real = config(&lab, &spare, true);
    real.local_rpc_url = Some(format!("http://{rpc}"));
    let mut real = start(real);
    real.wait_for(Event::Decision, |e| {
        e.fields["reason"]
            .as_str()
            .unwrap_or("")
            .contains("not caught up")
    })
    .await;
    assert_eq!(promotions(&real.drain()), 0, "promoted a frozen spare");
    spare.resume().expect("thaw the spare");
    real.wait_for(Event::TakeoverCommitted, |_| true).await;
    let landed = real.wait_for(Event::FirstVoteLanded, |_| true).await;
    let report = real.finish().await;
    assert_eq!(report.promotions.len(), 1);
    spare.wait_role(Role::Voting, WAIT).await.expect("voting");
    lab.cluster
        .wait_for_vote(&s_instance, killed_ms, WAIT)
        .await
        .expect("the spare votes");
    eprintln!("first vote landed at {} ms", landed.ts_ms);
    audit_clean(&mut lab).await;
}

/// SIGSTOP of the primary: the sentinel promotes; thawed, the old primary
/// sends no vote past the tower the new holder loaded, produces no block,
/// and exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zombie_primary_is_fenced_out_and_exits() {
    let (mut lab, mut primary, p_instance, mut spare, s_instance) = lab_with_pair().await;
    let mut sentinel = start(config(&lab, &spare, true));
    sentinel
        .wait_for(Event::Decision, |e| e.fields["state"] == "healthy")
        .await;
    primary.pause().expect("freeze");
    let frozen_ms = now_ms();
    sentinel.wait_for(Event::TakeoverCommitted, |_| true).await;
    sentinel.wait_for(Event::FirstVoteLanded, |_| true).await;
    let loaded = spare
        .loaded_last_vote(WAIT)
        .await
        .expect("the spare holds the fence");
    lab.cluster
        .wait_for_vote(&s_instance, frozen_ms, WAIT)
        .await
        .expect("the spare votes");
    let thawed_ms = now_ms();
    primary.resume().expect("thaw");
    let status = primary
        .wait_exit(WAIT)
        .await
        .expect("the old primary exits");
    assert_eq!(status.code(), Some(1));
    let _ = sentinel.finish().await;
    let late: Vec<_> = lab
        .cluster
        .accepted_votes(&p_instance)
        .expect("votes")
        .into_iter()
        .filter(|v| v.ts_ms >= thawed_ms)
        .filter(|v| Some(towerlock_lab::voted_slot(v)) > loaded)
        .collect();
    assert!(late.is_empty(), "votes past the loaded tower: {late:?}");
    let blocks = lab.cluster.blocks().expect("blocks");
    let late_blocks: Vec<_> = blocks
        .iter()
        .filter(|b| b.instance == p_instance && b.ts_ms >= thawed_ms)
        .collect();
    assert!(
        late_blocks.is_empty(),
        "blocks after the thaw: {late_blocks:?}"
    );
    audit_clean(&mut lab).await;
}

/// A healthy primary for about a minute, then the cluster stops for a few
/// seconds and comes back: no promotion at the defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_promotion_for_a_healthy_primary_or_a_stalled_cluster() {
    let (mut lab, _primary, _, spare, _) = lab_with_pair().await;
    let mut sentinel = start(config(&lab, &spare, true));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let healthy = sentinel.drain();
    assert_eq!(promotions(&healthy), 0, "false promotion: {healthy:?}");
    lab.cluster.stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    lab.cluster.restart().await.expect("the cluster comes back");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = sentinel.drain();
    let report = sentinel.finish().await;
    assert!(report.promotions.is_empty(), "promoted: {after:?}");
    assert_eq!(spare.status().await.expect("status").role, Role::HotSpare);
    audit_clean(&mut lab).await;
}
