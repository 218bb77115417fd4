//! The seed's failover, end to end: a real etcd with mutual TLS, the local
//! cluster, and `towerlock-validator` processes started with the seed's
//! command lines. Every run ends with the independent audit of the trail.

use std::time::Duration;

use towerlock_audit::event::VoteEvent;
use towerlock_testsupport::lab::{now_ms, voted_slot, Lab, Role, ValidatorProcess};
use towerlock_testsupport::Must;

/// Accepted votes of `instance` in `votes`.
fn votes_of<'a>(votes: &'a [VoteEvent], instance: &str) -> Vec<&'a VoteEvent> {
    votes
        .iter()
        .filter(|v| v.instance == instance && v.result == "ok")
        .collect()
}

async fn wait_for_more_votes(lab: &Lab, instance: &str, n: usize) {
    lab.cluster
        .wait_for_more_votes(instance, n, WAIT)
        .await
        .must();
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
    assert!(String::from_utf8_lossy(&out.stdout).contains("New validator identity"));
}

const SLOT_MS: u64 = 150;
const WAIT: Duration = Duration::from_secs(60);

fn bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_towerlock-validator"))
}

async fn start_primary(lab: &Lab, args: &[String]) -> (ValidatorProcess, String) {
    let mut primary = lab.spawn_validator("primary", args).must();
    let instance = primary.instance(WAIT).await.must();
    lab.cluster
        .wait_for_vote(&instance, 0, WAIT)
        .await
        .unwrap_or_else(|err| panic!("the primary never voted: {err}\n{}", primary.log_text()));
    (primary, instance)
}

async fn start_hot_spare(lab: &Lab, name: &str) -> (ValidatorProcess, String) {
    lab.start_hot_spare(name, WAIT).await.must()
}

/// The last voted slot of the tower the new holder loaded.
async fn loaded_last_vote(node: &mut ValidatorProcess) -> u64 {
    node.loaded_last_vote(WAIT)
        .await
        .must()
        .expect("a tower with votes")
}

async fn audit_clean(lab: &mut Lab) -> towerlock_audit::Report {
    lab.cluster.stop().await;
    let report = towerlock_audit::check_file(&lab.cluster.audit_path()).unwrap();
    assert!(report.is_clean(), "audit found violations:\n{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_failover_moves_the_vote_without_a_double_vote() {
    let mut lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let (mut primary, a) = start_primary(&lab, &lab.primary_args()).await;
    let (mut secondary, b) = start_hot_spare(&lab, "secondary").await;
    // A hot spare replays but never votes.
    wait_for_more_votes(&lab, &a, 3).await;
    assert!(votes_of(&lab.cluster.votes().must(), &b).is_empty());

    set_identity(&lab, &secondary).await;
    let loaded = loaded_last_vote(&mut secondary).await;

    let status = primary.wait_exit(WAIT).await.must();
    assert_eq!(status.code(), Some(1));
    let log = primary.log_text();
    assert!(
        log.contains("duplicate running instances of the same validator node")
            || log.contains("Lost etcd instance lock"),
        "{log}"
    );
    wait_for_more_votes(&lab, &b, 5).await;

    let votes = lab.cluster.votes().must();
    // The old primary sent nothing the new holder had not loaded.
    let a_votes = votes_of(&votes, &a);
    assert!(
        a_votes.iter().all(|v| voted_slot(v) <= loaded),
        "primary voted past {loaded}"
    );
    // At most 2 votable slots missed across the switch.
    let last_a = a_votes.iter().map(|v| voted_slot(v)).max().unwrap();
    let first_b = votes_of(&votes, &b)
        .iter()
        .map(|v| voted_slot(v))
        .min()
        .unwrap();
    let missed = lab.cluster.banks_between(last_a, first_b).must();
    assert!(
        missed <= 2,
        "missed {missed} slots between {last_a} and {first_b}"
    );
    drop(secondary);
    audit_clean(&mut lab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_cycle_of_the_seed() {
    let mut lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let (mut primary, _a) = start_primary(&lab, &lab.primary_args()).await;
    let (mut secondary, b) = start_hot_spare(&lab, "secondary").await;
    set_identity(&lab, &secondary).await;
    assert_eq!(primary.wait_exit(WAIT).await.must().code(), Some(1));
    wait_for_more_votes(&lab, &b, 3).await;

    // The primary restarts: it reclaims its identity once caught up, and
    // the secondary (now holding that identity) exits.
    let restarted_at = now_ms();
    let mut primary = lab
        .spawn_validator("primary-restarted", &lab.primary_args())
        .must();
    // It took the fence: it votes with a fencing token.
    let a2 = primary
        .wait_status(WAIT, "took the fence", |s| {
            s.role == Role::Voting && s.fence_token.is_some()
        })
        .await
        .must()
        .instance;
    let status = secondary.wait_exit(WAIT).await.must();
    assert_eq!(status.code(), Some(1));
    lab.cluster
        .wait_for_vote(&a2, restarted_at, WAIT)
        .await
        .must();

    // The secondary restarts with its own identity: a hot spare again.
    let (secondary, b2) = start_hot_spare(&lab, "secondary-restarted").await;
    wait_for_more_votes(&lab, &a2, 5).await;
    assert!(votes_of(&lab.cluster.votes().must(), &b2).is_empty());
    drop((primary, secondary));
    audit_clean(&mut lab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_primary_cannot_vote_or_produce_after_the_takeover() {
    let mut lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let (mut primary, a) = start_primary(&lab, &lab.primary_args()).await;
    let (mut secondary, b) = start_hot_spare(&lab, "secondary").await;

    primary.pause().must();
    // A bank reaches the frozen primary before the takeover's gossip does:
    // thawed, it handles that bank first and meets the fence on its vote.
    let paused_at = now_ms();
    lab.cluster.wait_for_banks(paused_at, 1, WAIT).await.must();
    set_identity(&lab, &secondary).await;
    let loaded = loaded_last_vote(&mut secondary).await;
    // The last leader slot fenced before the takeover: the `leader` key as
    // of the takeover's revision (the new holder's fencing token). The old
    // primary may have produced up to that slot, never past it.
    let token = secondary.status().await.must().fence_token.expect("fenced");
    let fenced_before_takeover = leader_slot_at(&lab, token).await;
    wait_for_more_votes(&lab, &b, 5).await;

    primary.resume().must();
    let status = primary.wait_exit(WAIT).await.must();
    assert_eq!(status.code(), Some(1));
    // It met the fence (its next store), not just the gossip of the new
    // instance: banks are handled before gossip.
    let log = primary.log_text();
    assert!(log.contains("Lost etcd instance lock"), "{log}");
    wait_for_more_votes(&lab, &b, 2).await;

    let votes = lab.cluster.votes().must();
    assert!(
        votes_of(&votes, &a).iter().all(|v| voted_slot(v) <= loaded),
        "the thawed primary sent a vote after the takeover"
    );
    let late_blocks: Vec<_> = lab
        .cluster
        .blocks()
        .must()
        .into_iter()
        .filter(|blk| blk.instance == a && fenced_before_takeover.is_none_or(|f| blk.slot > f))
        .collect();
    assert!(
        late_blocks.is_empty(),
        "blocks past the leader slot fenced before the takeover ({fenced_before_takeover:?}): {late_blocks:?}"
    );
    drop(secondary);
    audit_clean(&mut lab).await;
}

/// The staked identity's `leader` key (the last fenced leader slot) as of
/// etcd revision `revision`; `None` when no slot had been fenced.
async fn leader_slot_at(lab: &Lab, revision: i64) -> Option<u64> {
    use solana_signer::Signer;
    use towerlock_etcd::etcd_client::GetOptions;
    let identity = lab.cluster.keys.identity.pubkey();
    let mut client = lab.etcd.client().await.must();
    let leader = client
        .get(
            format!("{identity}/leader"),
            Some(GetOptions::new().with_revision(revision)),
        )
        .await
        .unwrap();
    leader
        .kvs()
        .first()
        .map(|kv| towerlock_storage::parse_leader_record(kv.value()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_down_under_a_voting_primary_exits_without_an_unstored_vote() {
    let mut lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let (mut primary, a) = start_primary(&lab, &lab.primary_args()).await;
    wait_for_more_votes(&lab, &a, 3).await;
    lab.etcd.kill();
    let status = primary.wait_exit(WAIT).await.must();
    assert_eq!(status.code(), Some(1));
    assert!(primary
        .log_text()
        .contains("Unable to save tower to storage"));

    // Every vote that left was stored first: none is newer than the tower
    // in etcd.
    lab.etcd.restart().await.must();
    let storage = towerlock_storage::EtcdTowerStorage::connect(&lab.etcd.config())
        .await
        .unwrap();
    let identity = lab.cluster.keys.identity.pubkey();
    use solana_signer::Signer;
    use towerlock_storage::TowerStorage;
    let stored = storage.load_unfenced(&identity).await.unwrap();
    let stored_last = stored.tower().last_voted_slot().unwrap();
    let votes = lab.cluster.votes().must();
    let sent_last = votes_of(&votes, &a)
        .iter()
        .map(|v| voted_slot(v))
        .max()
        .unwrap();
    assert!(
        sent_last <= stored_last,
        "sent {sent_last}, stored {stored_last}"
    );
    audit_clean(&mut lab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_vote_stays_up_silent_and_resumes() {
    let mut lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let mut args = lab.primary_args();
    args.extend(["--etcd-unavailable".into(), "skip-vote".into()]);
    let (mut primary, a) = start_primary(&lab, &args).await;
    wait_for_more_votes(&lab, &a, 3).await;

    lab.etcd.kill();
    let down_at = now_ms();
    // Not voting until a store succeeds.
    primary.wait_role(Role::SkipVote, WAIT).await.must();
    // While etcd is down the node stays up and sends nothing (one slot of
    // grace for a vote stored just before the kill), for ten banks.
    let up_at = {
        lab.cluster.wait_for_banks(down_at, 10, WAIT).await.must();
        assert!(primary.is_running(), "skip-vote must not exit");
        // The window closes when etcd starts coming back.
        let restarting_at = now_ms();
        lab.etcd.restart().await.must();
        restarting_at
    };
    // A vote sent while etcd was down may only be for a bank frozen before
    // the kill (stored just in time, sent late); a vote for a newer bank
    // could not have been stored.
    let events = lab.cluster.events().must();
    let frozen_at = |slot: u64| {
        events.iter().find_map(|e| match e {
            towerlock_audit::event::Event::Bank(b) if b.slot == slot => Some(b.ts_ms),
            _ => None,
        })
    };
    let during: Vec<_> = votes_of(&lab.cluster.votes().must(), &a)
        .into_iter()
        .filter(|v| v.ts_ms > down_at && v.ts_ms < up_at)
        .filter(|v| frozen_at(voted_slot(v)).is_none_or(|ts| ts > down_at))
        .cloned()
        .collect();
    assert!(during.is_empty(), "voted without storage: {during:?}");
    // etcd answers again: the node votes again.
    primary.wait_role(Role::Voting, WAIT).await.must();
    lab.cluster.wait_for_vote(&a, up_at, WAIT).await.must();
    drop(primary);
    audit_clean(&mut lab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_identity_refusals_leave_the_node_unchanged() {
    let lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let (secondary, _b) = start_hot_spare(&lab, "secondary").await;
    let identity = lab.cluster.identity_file();
    let identity = identity.to_str().unwrap();
    let secondary_id = lab.cluster.keys.secondary_identity.pubkey().to_string();
    use solana_signer::Signer;

    // A keypair that is neither the vote account's node nor its voter.
    let stranger = lab.dir.join("stranger.json");
    towerlock_cluster::genesis::write_keypair_file(&solana_keypair::Keypair::new(), &stranger)
        .unwrap();
    let out = secondary
        .admin(&["set-identity", stranger.to_str().unwrap()])
        .await
        .must();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not vote"));

    // --require-tower when etcd holds no tower for the identity.
    let out = secondary
        .admin(&["set-identity", "--require-tower", identity])
        .await
        .must();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unable to load tower"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut client = lab.etcd.client().await.must();
    let staked = lab.cluster.keys.identity.pubkey();
    let instance = client
        .get(format!("{staked}/instance"), None)
        .await
        .unwrap();
    assert!(instance.kvs().is_empty(), "the fence did not move");

    // A corrupt tower in etcd.
    client
        .put(format!("{staked}/tower"), b"corrupt".to_vec(), None)
        .await
        .unwrap();
    let out = secondary.admin(&["set-identity", identity]).await.must();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("corrupt"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tower = client.get(format!("{staked}/tower"), None).await.unwrap();
    assert_eq!(tower.kvs()[0].value(), b"corrupt", "left in place");
    let instance = client
        .get(format!("{staked}/instance"), None)
        .await
        .unwrap();
    assert!(instance.kvs().is_empty(), "the fence did not move");

    // The staked identity, on a node without its authorized voter keypair.
    // (Its own identity is another stranger's: two nodes with one identity
    // would be a duplicate instance.)
    let args: Vec<String> = {
        let mut args = lab.secondary_args();
        let at = args.iter().position(|a| a == "--authorized-voter").unwrap();
        args.drain(at..at + 2);
        let own = lab.dir.join("voterless-identity.json");
        towerlock_cluster::genesis::write_keypair_file(&solana_keypair::Keypair::new(), &own)
            .unwrap();
        args[1] = own.display().to_string();
        args
    };
    let mut voterless = lab.spawn_validator("voterless", &args).must();
    voterless.wait_role(Role::HotSpare, WAIT).await.must();
    voterless.wait_ready(WAIT).await.must();
    let out = voterless.admin(&["set-identity", identity]).await.must();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("authorized voter"), "{stderr}");

    // Through all of it the node kept its identity and stayed a hot spare.
    let out = secondary.admin(&["contact-info"]).await.must();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&secondary_id));
    let log = secondary.log_text();
    assert!(!log.contains("identity switched"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_manual_failover_command_line_works_as_written() {
    let mut lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let (mut primary, a) = start_primary(&lab, &lab.primary_args()).await;
    let (secondary, b) = start_hot_spare(&lab, "secondary").await;

    // The seed's line, with the binary's name swapped (and an idle window
    // short enough for a test cluster).
    let ledger = secondary.ledger.display().to_string();
    let identity = lab.cluster.identity_file().display().to_string();
    let line = format!(
        "{bin} --ledger {ledger} wait-for-restart-window --identity {identity} --min-idle-time 0.05 --max-delinquent-stake 100 \
         && {bin} --ledger {ledger} set-identity {identity}",
        bin = bin().display()
    );
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&line)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Ready to restart"), "{stdout}");
    assert!(stdout.contains("New validator identity"), "{stdout}");

    assert_eq!(primary.wait_exit(WAIT).await.must().code(), Some(1));
    wait_for_more_votes(&lab, &b, 3).await;
    assert!(!votes_of(&lab.cluster.votes().must(), &a).is_empty());
    drop(secondary);
    audit_clean(&mut lab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_restart_does_not_stop_the_primary() {
    let mut lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let (mut primary, a) = start_primary(&lab, &lab.primary_args()).await;
    wait_for_more_votes(&lab, &a, 2).await;
    lab.cluster.restart().await.must();
    let back = now_ms();
    lab.cluster.wait_for_vote(&a, back, WAIT).await.must();
    assert!(primary.is_running());
    // It voted again because it noticed and resubscribed.
    let log = primary.log_text();
    assert!(log.contains("subscription restored"), "{log}");
    drop(primary);
    audit_clean(&mut lab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_back_after_a_long_outage_votes_again() {
    let mut lab = Lab::start(bin(), 60, None).await.must();
    let (mut primary, a) = start_primary(&lab, &lab.primary_args()).await;
    wait_for_more_votes(&lab, &a, 40).await;
    primary.kill();
    // Long enough for the cluster's root to pass every vote in its tower.
    let down_at = now_ms();
    lab.cluster.wait_for_banks(down_at, 80, WAIT).await.must();
    let back_at = now_ms();
    let mut primary = lab
        .spawn_validator("primary-back", &lab.primary_args())
        .must();
    let a2 = primary.instance(WAIT).await.must();
    lab.cluster
        .wait_for_vote(&a2, back_at, WAIT)
        .await
        .unwrap_or_else(|err| {
            panic!(
                "the primary never voted again: {err}\n{}",
                primary.log_text()
            )
        });
    drop(primary);
    audit_clean(&mut lab).await;
}

/// `--start-as-hot-spare`: after a failover, the primary's supervisor
/// restarts it with the staked identity (`Restart=always`). Started so, it
/// replays as a hot spare and leaves the identity with the secondary until
/// an operator runs `set-identity` on it; then it takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_started_as_hot_spare_takes_over_only_on_set_identity() {
    let mut lab = Lab::start(bin(), SLOT_MS, None).await.must();
    let (mut primary, a) = start_primary(&lab, &lab.primary_args()).await;
    let (mut secondary, b) = start_hot_spare(&lab, "secondary").await;
    set_identity(&lab, &secondary).await;
    assert_eq!(primary.wait_exit(WAIT).await.must().code(), Some(1));
    wait_for_more_votes(&lab, &b, 2).await;

    let mut args = lab.primary_args();
    args.push("--start-as-hot-spare".into());
    primary.restart_with(args).must();
    let restarted = primary.wait_role(Role::HotSpare, WAIT).await.must();
    assert_ne!(restarted.instance, a);
    // The secondary keeps the identity while the restarted primary replays.
    wait_for_more_votes(&lab, &b, 5).await;
    assert!(secondary.is_running(), "{}", secondary.log_text());
    let votes = lab.cluster.votes().must();
    assert!(votes_of(&votes, &restarted.instance).is_empty());
    assert_eq!(primary.status().await.must().fence_token, None);

    set_identity(&lab, &primary).await;
    assert_eq!(secondary.wait_exit(WAIT).await.must().code(), Some(1));
    lab.cluster
        .wait_for_more_votes(&restarted.instance, 3, WAIT)
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", primary.log_tail(40)));
    drop(secondary);
    audit_clean(&mut lab).await;
}
