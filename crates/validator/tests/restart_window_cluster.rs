//! `wait-for-restart-window` against a real local cluster, started in
//! process with fast slots.
//!
//! The identity's leader slots are placed by choosing the genesis seed: the
//! schedule is a pure function of the genesis, so each test searches seeds
//! until the identity's epoch-0 schedule has the shape the test needs, then
//! starts the cluster with that genesis. Our validators do not run here, so
//! their leader slots are skipped and their vote accounts are delinquent
//! (which is how the delinquency test gets its delinquent stake).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use solana_pubkey::Pubkey;
use towerlock_cluster::core::Cluster;
use towerlock_cluster::genesis::{self, Genesis, InitOptions, GENESIS_FILE, IDENTITY_FILE};
use towerlock_testsupport::lab::ClusterServer;
use towerlock_testsupport::Must;
use towerlock_validator::restart_window::decision::WaitKind;
use towerlock_validator::restart_window::status::{PollStatus, StatusSink};
use towerlock_validator::restart_window::{
    self, wait_for_restart_window, IdentitySource, ImpossibleReason, NodeRpc, Outcome,
    WaitForRestartWindowArgs, WaitReason,
};

const SLOT_MS: u64 = 20;
const EPOCH_SLOTS: u64 = 512;

/// A cluster running in this process; stops when dropped.
struct LocalCluster {
    /// Declared before `dir`: stops (and flushes) before the folder goes.
    _server: ClusterServer,
    dir: tempfile::TempDir,
    url: String,
    identity: Pubkey,
    identity_file: PathBuf,
    /// The identity's leader slots in epoch 0.
    leader_slots: Vec<u64>,
}

impl LocalCluster {
    /// `validators` of ours holding `stake_percent` each; the first one's
    /// epoch-0 leader slots satisfy `accept`.
    async fn start(validators: u32, stake_percent: f64, accept: impl Fn(&[u64]) -> bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let options = InitOptions {
            validators,
            stake_percent,
            slots_per_epoch: EPOCH_SLOTS,
            slot_ms: SLOT_MS,
            fork_rate: 0.0,
            synthetic: 8,
        };
        let (mut genesis, keys) = genesis::init(dir.path(), &options, 0).unwrap();
        let identity = genesis.validators[0].identity;
        let leader_slots = choose_seed(&mut genesis, &identity, accept);
        std::fs::write(
            dir.path().join(GENESIS_FILE),
            serde_json::to_string_pretty(&genesis).unwrap(),
        )
        .unwrap();
        let server = ClusterServer::start(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .must();
        Self {
            url: server.url().to_string(),
            identity,
            identity_file: keys[0].dir.join(IDENTITY_FILE),
            leader_slots,
            _server: server,
            dir,
        }
    }

    fn ledger(&self) -> &Path {
        self.dir.path()
    }

    /// The seed's `--identity validator-keypair.json`, against this cluster.
    fn args(&self, min_idle_slots: u64) -> WaitForRestartWindowArgs {
        WaitForRestartWindowArgs {
            identity: Some(IdentitySource::KeypairFile(self.identity_file.clone())),
            min_idle_slots: Some(min_idle_slots),
            rpc_url: Some(self.url.clone()),
            ..WaitForRestartWindowArgs::new()
        }
    }
}

/// Rewrites the genesis seed until `accept` takes the identity's epoch-0
/// leader slots; returns them.
fn choose_seed(
    genesis: &mut Genesis,
    identity: &Pubkey,
    accept: impl Fn(&[u64]) -> bool,
) -> Vec<u64> {
    for i in 0u64..200_000 {
        let mut seed = [7u8; 32];
        seed[..8].copy_from_slice(&i.to_le_bytes());
        genesis.seed = bs58::encode(seed).into_string();
        let (mut cluster, _) = Cluster::new(genesis.clone(), 0);
        let slots = cluster
            .leader_schedule(0)
            .slots_by_leader()
            .remove(identity)
            .unwrap_or_default();
        if accept(&slots) {
            return slots;
        }
    }
    panic!("no seed gives the leader schedule this test needs");
}

/// Whether `[s, s + min)` holds no leader slot for some start in
/// `[from, end - min]`.
fn has_free_window(from: u64, end: u64, min: u64, leaders: &[u64]) -> bool {
    (from..=end.saturating_sub(min)).any(|s| !leaders.iter().any(|&l| l >= s && l < s + min))
}

/// Records what the wait showed.
#[derive(Default)]
struct Recorder {
    waits: Vec<(u64, WaitReason)>,
    notes: Vec<String>,
}

impl StatusSink for Recorder {
    fn waiting(&mut self, _now: Instant, status: &PollStatus<'_>) {
        self.waits.push((status.slot, status.reason.clone()));
    }
    fn note(&mut self, _now: Instant, text: &str) {
        self.notes.push(text.to_string());
    }
    fn finish(&mut self) {}
}

async fn wait_with_recorder(
    cluster: &LocalCluster,
    args: &WaitForRestartWindowArgs,
) -> (Outcome, Recorder, String) {
    let rpc = NodeRpc::new(cluster.url.clone());
    let mut recorder = Recorder::default();
    let mut out = Vec::new();
    let outcome = wait_for_restart_window(&rpc, args, &mut recorder, &mut out)
        .await
        .unwrap();
    (outcome, recorder, String::from_utf8(out).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_0_when_no_leader_slot_of_the_identity_is_near() {
    // 2 % stake: delinquent, but below the default 5 %.
    let cluster = LocalCluster::start(1, 2.0, |slots| slots.iter().all(|&s| s >= 400)).await;
    let args = cluster.args(100);
    let code = tokio::time::timeout(
        Duration::from_secs(60),
        restart_window::run(cluster.ledger(), args.clone()),
    )
    .await
    .expect("ready long before the first leader slot")
    .unwrap();
    assert_eq!(code, ExitCode::SUCCESS);

    let (outcome, recorder, header) = wait_with_recorder(&cluster, &args).await;
    let Outcome::Ready { slot } = outcome else {
        panic!("{outcome:?}")
    };
    let first_leader = cluster.leader_slots.first().copied().unwrap_or(EPOCH_SLOTS);
    assert!(slot + 100 <= first_leader, "ready at {slot}");
    assert!(recorder.waits.is_empty(), "{:?}", recorder.waits);
    assert!(
        header.contains(&format!("Identity: {}", cluster.identity)),
        "{header}"
    );
    assert!(header.contains("Minimum Idle Time: 100 slots"), "{header}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_while_the_identity_leads_soon_and_returns_after_the_leader_slots() {
    const MIN_IDLE: u64 = 260;
    // The identity's first rotation at L in [150, 240] (the wait starts
    // well before it), then nothing for more than the idle window.
    let cluster = LocalCluster::start(1, 3.0, |slots| {
        let Some(&first) = slots.first() else {
            return false;
        };
        (150..=240).contains(&first)
            && slots
                .iter()
                .all(|&s| s < first + 4 || s >= first + 4 + MIN_IDLE + 20)
    })
    .await;
    let first_leader = cluster.leader_slots[0];
    let last_of_rotation = first_leader + 3;
    let mut args = cluster.args(MIN_IDLE);
    // Only the leader slots matter here (the cluster's first root takes a
    // few slots, and until then every vote account reads as delinquent).
    args.max_delinquent_stake = 50.0;

    let (outcome, recorder, _) =
        tokio::time::timeout(Duration::from_secs(60), wait_with_recorder(&cluster, &args))
            .await
            .expect("ready once the leader slots passed");

    let (first_slot, first_reason) = recorder.waits.first().expect("it waited").clone();
    assert!(
        first_slot < first_leader,
        "the wait began at {first_slot}, after the leader slot {first_leader}: too slow a start"
    );
    match first_reason {
        WaitReason::LeaderSoon {
            next_leader_slot,
            next_window,
            ..
        } => {
            assert_eq!(next_leader_slot, first_leader);
            assert_eq!(next_window.start, first_leader + 4);
        }
        other => panic!("first waited for {other}"),
    }
    assert!(recorder
        .waits
        .iter()
        .all(|(_, r)| r.kind() == WaitKind::LeaderSoon));
    let Outcome::Ready { slot } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        slot > last_of_rotation,
        "ready at {slot}, before the leader slots {first_leader}..={last_of_rotation} passed"
    );
    // And promptly: within a few polls after the rotation.
    // (2 s at 20 ms slots: a loaded machine still polls well within it.)
    assert!(slot <= last_of_rotation + 100, "ready only at {slot}");
    // The cluster agrees that the rotation is behind us.
    let now = NodeRpc::new(cluster.url.clone()).slot().await.unwrap();
    assert!(now > last_of_rotation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_when_the_epoch_has_no_idle_window() {
    const MIN_IDLE: u64 = 200;
    let cluster = LocalCluster::start(1, 10.0, |slots| {
        !has_free_window(0, EPOCH_SLOTS, MIN_IDLE, slots)
    })
    .await;
    let mut args = cluster.args(MIN_IDLE);
    args.max_delinquent_stake = 50.0;

    let (outcome, _, _) =
        tokio::time::timeout(Duration::from_secs(60), wait_with_recorder(&cluster, &args))
            .await
            .expect("fails at the first poll");
    match &outcome {
        Outcome::Impossible {
            reason:
                ImpossibleReason::NoIdleWindow {
                    epoch,
                    min_idle_slots,
                    largest,
                },
            ..
        } => {
            assert_eq!((*epoch, *min_idle_slots), (0, MIN_IDLE));
            assert!(*largest < MIN_IDLE);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(restart_window::exit_code(&outcome), ExitCode::from(1));

    let code = restart_window::run(cluster.ledger(), args).await.unwrap();
    assert_eq!(code, ExitCode::from(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respects_max_delinquent_stake() {
    // Two validators of ours with 4 % each, neither running: 8 % of the
    // stake is delinquent. The identity (the first) leads late if at all.
    let cluster = LocalCluster::start(2, 4.0, |slots| slots.iter().all(|&s| s >= 400)).await;

    // Default maximum 5 %: waits for the delinquency until the timeout.
    let mut args = cluster.args(100);
    args.timeout = Some(Duration::from_secs(3));
    let (outcome, recorder, _) = wait_with_recorder(&cluster, &args).await;
    match &outcome {
        Outcome::TimedOut {
            last:
                Some(WaitReason::DelinquencyTooHigh {
                    percent,
                    max_percent,
                }),
        } => {
            assert!((7.5..8.5).contains(percent), "{percent}");
            assert_eq!(*max_percent, 5.0);
        }
        other => panic!("{other:?}"),
    }
    assert!(!recorder.waits.is_empty());
    assert!(recorder
        .waits
        .iter()
        .all(|(_, r)| r.kind() == WaitKind::DelinquencyTooHigh));
    assert_eq!(restart_window::exit_code(&outcome), ExitCode::from(1));
    let shown = recorder.waits[0].1.to_string();
    assert!(shown.contains("≥ 5 %"), "{shown}");

    // 10 %: ready.
    args.max_delinquent_stake = 10.0;
    args.timeout = Some(Duration::from_secs(30));
    let (outcome, _, _) = wait_with_recorder(&cluster, &args).await;
    assert!(matches!(outcome, Outcome::Ready { .. }), "{outcome:?}");
    let code = restart_window::run(cluster.ledger(), args).await.unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_rpc_url_the_admin_socket_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let err = restart_window::run(dir.path(), WaitForRestartWindowArgs::new())
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("admin.rpc"), "{text}");
}
