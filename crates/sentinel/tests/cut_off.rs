//! The active node cut off from the cluster while it still reaches etcd:
//! the lab (etcd with TLS, the local cluster, 400 ms slots), the primary's
//! cluster link through a fault proxy (its RPC and websocket share the
//! cluster's port, so one TCP link carries both), etcd direct; the hot
//! spare and the sentinel beside it direct. The run is audited.
//!
//! Needs `towerlock-validator` built next to the test binary's folder
//! (`cargo build -p towerlock-validator`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use towerlock_lab::{now_ms, voted_slot, Fault, FaultProxy, Lab, Role, ValidatorProcess};
use towerlock_sentinel::Event;

mod common;
use common::{config, start, validator_bin, Running, WAIT};

const SLOT_MS: u64 = 400;
/// Our validator's stake: enough leader rotations that the primary
/// produces (and fences) a block within [`WAIT`] before it is cut off.
const STAKE_PERCENT: f64 = 20.0;
/// How long the validator retries a dropped stream before it gives up on
/// the cluster (`RECONNECT_FOR` in the node's streams): the link must heal
/// before, or the old primary exits for a reason this test is not about.
const NODE_GIVES_UP_AFTER: Duration = Duration::from_secs(30);

/// The lab, the primary (cluster link through `link`) voting and having
/// produced a block, and the hot spare (direct).
struct Pair {
    lab: Lab,
    link: FaultProxy,
    primary: ValidatorProcess,
    p_instance: String,
    spare: ValidatorProcess,
    s_instance: String,
}

/// `args` with the value of `--entrypoint` replaced by `url`.
fn with_entrypoint(mut args: Vec<String>, url: &str) -> Vec<String> {
    let at = args
        .iter()
        .position(|a| a == "--entrypoint")
        .expect("the seed's command line names --entrypoint");
    args[at + 1] = url.to_string();
    args
}

async fn pair_with_proxied_primary() -> Pair {
    let lab = Lab::start_with_stake(&validator_bin(), SLOT_MS, None, STAKE_PERCENT)
        .await
        .expect("the lab starts");
    let cluster: SocketAddr = lab
        .cluster
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("the cluster's address");
    let link = FaultProxy::start("primary->cluster", cluster)
        .await
        .expect("the primary's cluster link");
    let args = with_entrypoint(lab.primary_args(), &format!("http://{}", link.addr()));
    let (primary, p_instance) = lab
        .start_validator("primary", &args, Role::Voting, WAIT)
        .await
        .expect("the primary votes");
    lab.cluster
        .wait_for_more_votes(&p_instance, 3, WAIT)
        .await
        .expect("primary votes through the link");
    lab.cluster
        .trail
        .wait_for(WAIT, "a block of the primary", |e| match e {
            towerlock_audit::event::Event::Block(b) if b.instance == p_instance => Some(b.slot),
            _ => None,
        })
        .await
        .expect("the primary produces a block through the link");
    let (spare, s_instance) = lab
        .start_hot_spare("secondary", WAIT)
        .await
        .expect("a hot spare");
    Pair {
        lab,
        link,
        primary,
        p_instance,
        spare,
        s_instance,
    }
}

/// The staked identity's `leader` key (the last fenced leader slot) as of
/// etcd revision `revision`; `None` when no slot had been fenced.
async fn leader_slot_at(lab: &Lab, identity: &str, revision: i64) -> Option<u64> {
    use towerlock_etcd::etcd_client::GetOptions;
    let mut client = lab.etcd.client().await.expect("an etcd client");
    let leader = client
        .get(
            format!("{identity}/leader"),
            Some(GetOptions::new().with_revision(revision)),
        )
        .await
        .expect("the leader key at the takeover's revision");
    leader
        .kvs()
        .first()
        .map(|kv| towerlock_storage::parse_leader_record(kv.value()).expect("a leader record"))
}

async fn audit_clean(lab: &mut Lab) {
    lab.cluster.stop().await;
    let report = towerlock_audit::check_file(&lab.cluster.audit_path()).expect("auditable");
    assert!(report.is_clean(), "audit: {report}");
}

/// What the new holder had when it took over.
struct Takeover {
    /// The last vote of the tower it loaded.
    loaded: u64,
    /// The last leader slot fenced before the takeover.
    fenced_leader: Option<u64>,
    /// Why the sentinel promoted.
    detected: String,
}

/// Waits for the sentinel's promotion and the new holder's first vote.
async fn promoted(pair: &mut Pair, sentinel: &mut Running, identity: &str) -> Takeover {
    let detected = sentinel.wait_for(Event::Detected, |_| true).await;
    let detected = detected.fields["reason"].to_string();
    sentinel.wait_for(Event::TakeoverCommitted, |_| true).await;
    let loaded = pair
        .spare
        .loaded_last_vote(WAIT)
        .await
        .expect("the spare holds the fence")
        .expect("a tower with the primary's votes");
    let status = pair.spare.status().await.expect("status");
    assert_eq!(status.identity.to_string(), identity, "the staked identity");
    let token = status.fence_token.expect("a fencing token");
    let fenced_leader = leader_slot_at(&pair.lab, identity, token).await;
    sentinel.wait_for(Event::FirstVoteLanded, |_| true).await;
    Takeover {
        loaded,
        fenced_leader,
        detected,
    }
}

/// The primary cut off from the cluster (both ways) but still reaching
/// etcd stops voting: the sentinel promotes the spare. Healed, the old
/// primary meets the fence (or the new instance's gossip) before any vote
/// and exits 1, having sent no vote past the tower the new holder loaded
/// and produced no block past the leader slot fenced before the takeover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_primary_is_replaced_and_fenced_out_when_healed() {
    let mut pair = pair_with_proxied_primary().await;
    let mut sentinel = start(config(&pair.lab, &pair.spare, true));
    sentinel
        .wait_for(Event::Decision, |e| e.fields["state"] == "healthy")
        .await;
    let identity = pair.primary.status().await.expect("status").identity;
    let identity = identity.to_string();

    pair.link.set(Fault::Partition);
    let cut = Instant::now();
    let cut_ms = now_ms();
    let takeover = promoted(&mut pair, &mut sentinel, &identity).await;
    pair.lab
        .cluster
        .wait_for_vote(&pair.s_instance, cut_ms, WAIT)
        .await
        .expect("the new holder votes");
    assert!(
        pair.primary.is_running(),
        "the cut-off primary exited before the heal: {}",
        pair.primary.log_tail(30)
    );
    assert!(pair.link.stats().refused > 0, "the primary never retried");
    let cut_for = cut.elapsed();
    assert!(cut_for < NODE_GIVES_UP_AFTER, "promotion took {cut_for:?}");

    pair.link.heal();
    let healed_ms = now_ms();
    let status = pair
        .primary
        .wait_exit(WAIT)
        .await
        .expect("the old primary exits");
    let exit_after = now_ms() - healed_ms;
    let reason = pair.primary.exit_reason().unwrap_or_default();
    assert_eq!(status.code(), Some(1), "{}", pair.primary.log_tail(30));
    assert!(
        reason.contains("Lost etcd instance lock")
            || reason.contains("duplicate running instances"),
        "exited for another reason: {reason}"
    );
    let report = sentinel.finish().await;
    assert_eq!(report.promotions.len(), 1, "{:?}", report.promotions);
    assert_eq!(
        pair.spare.status().await.expect("status").role,
        Role::Voting
    );
    pair.lab
        .cluster
        .wait_for_vote(&pair.s_instance, healed_ms, WAIT)
        .await
        .expect("the new holder still votes");
    check_old_instance(&pair, &takeover);
    eprintln!(
        "detected: {}; cut for {cut_for:?} until the heal; the old primary exited \
         {exit_after} ms after it: {reason}",
        takeover.detected
    );
    audit_clean(&mut pair.lab).await;
}

/// Every vote of the old instance (accepted or not) is within the tower
/// the new holder loaded; none of its blocks is past the leader slot
/// fenced before the takeover.
fn check_old_instance(pair: &Pair, takeover: &Takeover) {
    let votes = pair.lab.cluster.votes().expect("votes");
    let old: Vec<_> = votes
        .iter()
        .filter(|v| v.instance == pair.p_instance)
        .collect();
    assert!(!old.is_empty(), "the primary never voted");
    let unloaded: Vec<_> = old
        .iter()
        .filter(|v| voted_slot(v) > takeover.loaded)
        .collect();
    assert!(
        unloaded.is_empty(),
        "votes past the loaded tower ({}): {unloaded:?}",
        takeover.loaded
    );
    let blocks = pair.lab.cluster.blocks().expect("blocks");
    let fenced = takeover.fenced_leader;
    let late: Vec<_> = blocks
        .iter()
        .filter(|b| b.instance == pair.p_instance && fenced.is_none_or(|f| b.slot > f))
        .collect();
    assert!(
        late.is_empty(),
        "blocks past the leader slot fenced before the takeover ({fenced:?}): {late:?}"
    );
    let last = old.iter().map(|v| voted_slot(v)).max();
    eprintln!(
        "old instance: {} votes, the last for slot {last:?}; loaded {}; leader fenced \
         before the takeover {fenced:?}",
        old.len(),
        takeover.loaded
    );
}
