//! The seed's failover on an Alpenglow cluster, end to end: a real etcd with
//! mutual TLS, the local cluster running Votor, and `towerlock-validator`
//! processes with `--consensus alpenglow`. The vote history is stored in
//! etcd under the fence before each vote; every run ends with the
//! independent audit of the trail (Votor's offences) and a check of every
//! landed vote against the vote history left in etcd.

use std::time::Duration;

use solana_keypair::read_keypair_file;
use solana_signer::Signer;
use towerlock_audit::event::Event;
use towerlock_cluster::genesis::{Consensus, InitOptions};
use towerlock_storage::{EtcdTowerStorage, TowerStorage};
use towerlock_testsupport::lab::{now_ms, votes_missing_from_etcd, Lab, ValidatorProcess};
use towerlock_testsupport::Must;
use towerlock_tower::{SavedVoteHistory, VoteHistory};

const SLOT_MS: u64 = 150;
const WAIT: Duration = Duration::from_secs(60);

fn bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_towerlock-validator"))
}

async fn alpenglow_lab() -> Lab {
    let options = InitOptions {
        slot_ms: SLOT_MS,
        slots_per_epoch: 8192,
        fork_rate: 0.0,
        synthetic: 10,
        stake_percent: 10.0,
        ..InitOptions::default()
    };
    Lab::start_with_consensus(bin(), None, options, Consensus::Alpenglow)
        .await
        .must()
}

async fn wait_for_more_landed(lab: &Lab, node: &ValidatorProcess, instance: &str, n: usize) {
    lab.cluster
        .wait_for_more_landed(instance, n, WAIT)
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", node.log_tail(40)));
}

/// `set-identity validator-keypair.json` on `node`, which must succeed.
async fn set_identity(lab: &Lab, node: &ValidatorProcess) {
    let identity = lab.cluster.identity_file();
    let out = node
        .admin(&["set-identity", identity.to_str().unwrap()])
        .await
        .must();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn storage(lab: &Lab) -> EtcdTowerStorage {
    EtcdTowerStorage::connect(&lab.etcd.config()).await.unwrap()
}

/// The vote history of the staked identity in etcd.
async fn stored_history(lab: &Lab) -> VoteHistory {
    let identity = lab.cluster.keys.identity.pubkey();
    storage(lab)
        .await
        .load_vote_history_unfenced(&identity)
        .await
        .unwrap()
        .into_history()
}

/// The audit is clean (no Votor offence), and every landed vote of the
/// staked identity is in the vote history left in etcd.
async fn audit_clean(lab: &mut Lab) -> towerlock_audit::Report {
    lab.cluster.stop().await;
    let report = towerlock_audit::check_file(&lab.cluster.audit_path()).unwrap();
    assert!(report.is_clean(), "audit found violations:\n{report}");
    let events = lab.cluster.events().must();
    let identity = lab.cluster.keys.identity.pubkey();
    let missing = votes_missing_from_etcd(&lab.etcd, &identity, &events)
        .await
        .must()
        .expect("a vote history in etcd");
    assert!(
        missing.is_empty(),
        "landed votes not in the history: {missing:?}"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_restart_and_zombie_on_alpenglow_never_vote_against_the_history() {
    let mut lab = alpenglow_lab().await;
    let mut primary = lab.spawn_validator("primary", &lab.primary_args()).must();
    let a = primary.instance(WAIT).await.must();
    wait_for_more_landed(&lab, &primary, &a, 5).await;
    // Each vote was stored before it left: the history in etcd reaches
    // at least as far as the votes that landed.
    let landed = lab.cluster.landed_votes(&a).must();
    let newest_landed = landed.iter().map(|v| v.slot).max();
    assert!(stored_history(&lab).await.last_voted_slot() >= newest_landed);

    // Manual failover: the secondary takes the identity, the primary stops
    // at its next store.
    let (mut secondary, b) = lab.start_hot_spare("secondary", WAIT).await.must();
    assert!(lab.cluster.landed_votes(&b).must().is_empty());
    set_identity(&lab, &secondary).await;
    let status = primary.wait_exit(WAIT).await.must();
    assert_eq!(status.code(), Some(1), "{}", primary.log_tail(20));
    // Fenced out at its next store, or stopped by the new instance's
    // contact info, whichever comes first.
    let log = primary.log_text();
    assert!(
        log.contains("Lost etcd instance lock")
            || log.contains("duplicate running instances of the same validator node"),
        "{}",
        primary.log_tail(20)
    );
    wait_for_more_landed(&lab, &secondary, &b, 5).await;

    // The zombie: the holder frozen, the restarted primary takes the
    // identity back; thawed, the old holder must not land a vote.
    secondary.pause().must();
    let mut restarted = lab
        .spawn_validator("primary-restarted", &lab.primary_args())
        .must();
    let c = restarted.instance(WAIT).await.must();
    wait_for_more_landed(&lab, &restarted, &c, 5).await;
    let thawed_at = now_ms();
    secondary.resume().must();
    let status = secondary.wait_exit(WAIT).await.must();
    assert_eq!(status.code(), Some(1), "{}", secondary.log_tail(20));
    assert!(
        lab.cluster
            .landed_votes(&b)
            .must()
            .iter()
            .all(|v| v.ts_ms < thawed_at),
        "the zombie landed a vote after it was thawed"
    );
    wait_for_more_landed(&lab, &restarted, &c, 3).await;
    let report = audit_clean(&mut lab).await;
    assert!(report.votor_votes > 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_history_older_than_the_landed_votes_refuses_to_start() {
    let lab = alpenglow_lab().await;
    let mut primary = lab.spawn_validator("primary", &lab.primary_args()).must();
    let a = primary.instance(WAIT).await.must();
    wait_for_more_landed(&lab, &primary, &a, 8).await;
    primary.kill();

    // An older history (its newest votes dropped), signed by the identity,
    // replaces the one in etcd: as after a restore of an old backup.
    let keypair = read_keypair_file(lab.cluster.identity_file()).unwrap();
    let mut older = stored_history(&lab).await;
    let newest = older.last_voted_slot().unwrap();
    older.votes_cast.retain(|slot, _| *slot + 4 < newest);
    for set in [&mut older.voted, &mut older.skipped, &mut older.its_over] {
        set.retain(|slot| *slot + 4 < newest);
    }
    older.voted_notar.retain(|slot, _| *slot + 4 < newest);
    let saved = SavedVoteHistory::new(&older, &keypair).unwrap();
    let storage = storage(&lab).await;
    let token = storage.force_takeover(&keypair.pubkey()).await.unwrap();
    let _stored = storage.store_vote_history(&token, &saved).await.unwrap();
    assert!(storage.release(&token).await.unwrap());

    let restarted_at = now_ms();
    let mut restarted = lab
        .spawn_validator("primary-restarted", &lab.primary_args())
        .must();
    let status = restarted.wait_exit(WAIT).await.must();
    assert_eq!(status.code(), Some(1), "{}", restarted.log_tail(20));
    let log = restarted.log_text();
    assert!(
        log.contains("its vote history goes no further than"),
        "{}",
        restarted.log_tail(20)
    );
    // Nothing of the identity landed after the restart.
    let identity = lab.cluster.keys.identity.pubkey().to_string();
    let late: Vec<_> = lab
        .cluster
        .events()
        .must()
        .into_iter()
        .filter_map(|e| match e {
            Event::VotorVote(v) if v.identity == identity && v.ts_ms >= restarted_at => Some(v),
            _ => None,
        })
        .collect();
    assert!(late.is_empty(), "votes after the refusal: {late:?}");
}
