//! The seed's failover on an Alpenglow cluster, end to end: a real etcd with
//! mutual TLS, the local cluster running Votor, and `towerlock-validator`
//! processes with `--consensus alpenglow`. The vote history is stored in
//! etcd under the fence before each vote; every run ends with the
//! independent audit of the trail (Votor's offences) and a check of every
//! landed vote against the vote history left in etcd.

use std::time::Duration;

use solana_keypair::read_keypair_file;
use solana_signer::Signer;
use towerlock_audit::{event::Event, ViolationKind};
use towerlock_cluster::genesis::{Consensus, InitOptions};
use towerlock_storage::{EtcdTowerStorage, TowerStorage};
use towerlock_testsupport::lab::{now_ms, votes_missing_from_etcd, Lab, Role, ValidatorProcess};
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
    let missing = votes_missing_from_etcd(&lab.etcd.config(), &identity, &events)
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
    // Thawed, it may still send what it had stored before the takeover
    // (the new holder loaded that); its next store fails and it stops. The
    // audit below checks every vote it landed against the history in etcd.
    secondary.resume().must();
    let status = secondary.wait_exit(WAIT).await.must();
    assert_eq!(status.code(), Some(1), "{}", secondary.log_tail(20));
    assert!(
        secondary.log_text().contains("Lost etcd instance lock")
            || secondary
                .log_text()
                .contains("duplicate running instances of the same validator node"),
        "{}",
        secondary.log_tail(20)
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
    // Refused before the fence moved: nobody holds it.
    let storage = self::storage(&lab).await;
    assert_eq!(storage.holder(&keypair.pubkey()).await.unwrap(), None);

    // set-identity on a hot spare is refused the same way (agave's rule),
    // and the spare stays as it was.
    let (spare, _) = lab.start_hot_spare("secondary", WAIT).await.must();
    let identity_file = lab.cluster.identity_file();
    let out = spare
        .admin(&["set-identity", identity_file.to_str().unwrap()])
        .await
        .must();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Unable to load vote history for identity"),
        "{stderr}"
    );
    assert_eq!(storage.holder(&keypair.pubkey()).await.unwrap(), None);
    assert_eq!(spare.status().await.must().role, Role::HotSpare);
}

/// `args` without the flags (each with its value) that `drop` says, plus
/// `extra`.
fn replacing(args: Vec<String>, drop: impl Fn(&str) -> bool, extra: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if drop(&arg) {
            args.next();
            continue;
        }
        out.push(arg);
    }
    out.extend(extra.iter().map(|s| s.to_string()));
    out
}

/// The second instance's flags: impatient, with `extra`.
fn impatient(args: Vec<String>, extra: &[&str]) -> Vec<String> {
    let mut all = IMPATIENT.to_vec();
    all.extend(extra);
    replacing(args, |flag| flag.starts_with("--votor-"), &all)
}

/// `args` with the vote history in a local file instead of etcd (agave's
/// default).
fn with_file_storage(args: Vec<String>) -> Vec<String> {
    replacing(
        args,
        |flag| flag == "--tower-storage" || flag.starts_with("--etcd-"),
        &["--tower-storage", "file"],
    )
}

/// A second instance that skips every slot at once, as a node that sees no
/// block in time would (the flags stand in for its different view of the
/// network).
const IMPATIENT: [&str; 4] = ["--votor-timeout-ms", "1", "--votor-block-ms", "1"];

/// The scenario of the next two tests: the first instance votes, is frozen
/// (SIGSTOP); a second instance of the identity starts and, seeing no block
/// in time, skips; the first is thawed and acts on everything it missed.
/// Returns the two nodes with their instance ids.
async fn freeze_start_second_thaw(
    lab: &Lab,
    first_args: &[String],
    second_args: &[String],
) -> [(ValidatorProcess, String); 2] {
    let mut first = lab.spawn_validator("first", first_args).must();
    let a = first.instance(WAIT).await.must();
    wait_for_more_landed(lab, &first, &a, 5).await;
    first.pause().must();
    let mut second = lab.spawn_validator("second", second_args).must();
    let b = second.instance(WAIT).await.must();
    wait_for_more_landed(lab, &second, &b, 8).await;
    first.resume().must();
    // The thawed one stops: fenced out, or a duplicate instance.
    assert_eq!(
        first.wait_exit(WAIT).await.must().code(),
        Some(1),
        "{}",
        first.log_tail(20)
    );
    [(first, a), (second, b)]
}

/// Fenced, the second instance loads the first one's vote history from
/// etcd and never skips a slot the first one notarized, and the thawed
/// first one lands nothing: the audit is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_behind_the_fence_never_contradicts_the_first() {
    let mut lab = alpenglow_lab().await;
    let [_, (second, b)] = freeze_start_second_thaw(
        &lab,
        &lab.primary_args(),
        &impatient(lab.primary_args(), &[]),
    )
    .await;
    wait_for_more_landed(&lab, &second, &b, 3).await;
    audit_clean(&mut lab).await;
}

/// The control: the same scenario, each instance with its vote history in
/// a local file and the history check switched off (the only way the
/// second one votes at all). The thawed first one notarizes slots the
/// second skipped: the audit must report it. A harness that passed this
/// would prove nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_with_local_vote_histories_is_caught() {
    let mut lab = alpenglow_lab().await;
    let [_, (second, _)] = freeze_start_second_thaw(
        &lab,
        &with_file_storage(lab.primary_args()),
        &impatient(
            with_file_storage(lab.primary_args()),
            &["--do-not-require-vote-history"],
        ),
    )
    .await;
    lab.cluster.stop().await;
    let report = towerlock_audit::check_file(&lab.cluster.audit_path()).unwrap();
    let kinds: Vec<ViolationKind> = report.violations.iter().map(|v| v.kind()).collect();
    assert!(
        kinds.contains(&ViolationKind::NotarizeAndSkip),
        "the control went uncaught: {kinds:?}\n{report}\n{}",
        second.log_tail(20)
    );
}
