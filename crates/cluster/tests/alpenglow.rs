//! A cluster made with `--consensus alpenglow`, driven without IO: Votor
//! finalizes and the root follows, the RPC answers as under TowerBFT,
//! `sendVotorVote` counts well-signed votes of staked identities and
//! refuses the rest with a clear error, our leader's submitted block is
//! taken, and every vote and certificate is in the audit trail.

mod common;

use common::{result, Fixture};
use serde_json::{json, Value};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_audit::{Event, VoteResult};
use towerlock_cluster::core::votor::window::is_window_start;
use towerlock_cluster::core::Notification;
use towerlock_cluster::genesis::{Consensus, InitOptions};
use towerlock_wire::api::SubmitBlock;
use towerlock_wire::votor::{
    CertificateKind, VotorNotification, VotorVote, VotorVoteMessage, GET_VOTOR_LAST_VOTE,
    SEND_VOTOR_VOTE,
};

fn alpenglow() -> Fixture {
    Fixture::with_consensus(Fixture::default_options(), Consensus::Alpenglow)
}

fn send(f: &mut Fixture, message: &VotorVoteMessage) -> Value {
    f.rpc(SEND_VOTOR_VOTE, json!([message]))
}

fn last_votor_vote(f: &Fixture) -> &towerlock_audit::VotorVoteEvent {
    f.events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::VotorVote(v) => Some(v),
            _ => None,
        })
        .expect("a votor_vote line")
}

#[test]
fn the_genesis_stores_the_consensus_and_a_tower_genesis_keeps_its_bytes() {
    let f = alpenglow();
    assert_eq!(f.cluster.consensus(), Consensus::Alpenglow);
    let text = serde_json::to_string(f.cluster.genesis()).unwrap();
    assert!(text.contains(r#""consensus":"alpenglow""#), "{text}");
    let tower = Fixture::new(Fixture::default_options());
    let text = serde_json::to_string(tower.cluster.genesis()).unwrap();
    assert!(!text.contains("consensus"), "{text}");
    assert!(tower.cluster.votor().is_none());
}

#[test]
fn votor_finalizes_steadily_and_the_rpc_follows_it() {
    let mut f = alpenglow();
    f.step(400);
    let root = f.cluster.root();
    let (finalized, _) = f.cluster.votor().unwrap().finalized();
    assert_eq!(root, finalized);
    // Only our (silent) validator's windows are skipped: at most a window
    // and its grace behind.
    assert!(
        f.cluster.current_slot() - root <= 10,
        "root {root} at slot {}",
        f.cluster.current_slot()
    );
    assert_eq!(result(&f.rpc("getSlot", json!([]))), &json!(root));
    let processed = f.rpc("getSlot", json!([{"commitment": "processed"}]));
    assert_eq!(result(&processed), &json!(f.cluster.tip()));
    let info = f.rpc("getEpochInfo", json!([]));
    assert_eq!(result(&info)["absoluteSlot"], root);
    let schedule = f.rpc("getLeaderSchedule", json!([]));
    let slots: usize = result(&schedule)
        .as_object()
        .unwrap()
        .values()
        .map(|s| s.as_array().unwrap().len())
        .sum();
    assert_eq!(slots, 256);
    let block = f.rpc("getBlock", json!([root]));
    assert_eq!(
        result(&block)["blockhash"],
        f.cluster.bank(root).unwrap().blockhash.to_string()
    );
    let blocks = f.rpc("getBlocks", json!([root - 20, root]));
    assert!(result(&blocks).as_array().unwrap().len() >= 12);
    let accounts = f.rpc("getVoteAccounts", json!([]));
    assert_eq!(
        result(&accounts)["current"].as_array().unwrap().len(),
        10,
        "every synthetic validator votes: {accounts}"
    );
    // Certificates and finalizations are in the trail.
    let finalizations = f
        .events
        .iter()
        .filter(|e| matches!(e, Event::Finalized(_)))
        .count();
    let certificates = f
        .events
        .iter()
        .filter(|e| matches!(e, Event::Certificate(_)))
        .count();
    assert!(finalizations > 300, "{finalizations}");
    assert!(certificates > finalizations, "{certificates}");
}

/// Steps until the newest bank is a synthetic leader's, then returns it.
fn notarized_slot(f: &mut Fixture) -> (u64, Hash) {
    f.step(12);
    let slot = f.cluster.root();
    (slot, f.cluster.bank(slot).unwrap().block_id)
}

#[test]
fn a_well_signed_vote_of_a_staked_identity_lands() {
    let mut f = alpenglow();
    let (slot, block_id) = notarized_slot(&mut f);
    let identity = f.keys.identity.insecure_clone();
    let last_vote = |f: &mut Fixture| {
        let answer = f.rpc(GET_VOTOR_LAST_VOTE, json!([identity.pubkey().to_string()]));
        result(&answer).clone()
    };
    assert_eq!(
        last_vote(&mut f),
        json!({"slot": null}),
        "nothing landed yet"
    );
    let vote = VotorVote::Notarize { slot, block_id };
    let message = VotorVoteMessage::new_signed(&identity, f.vote_account(), vote, "primary-1");
    assert_eq!(result(&send(&mut f, &message)), &json!({"landed": true}));
    assert_eq!(last_vote(&mut f), json!({ "slot": slot }));
    let line = last_votor_vote(&f);
    assert_eq!(line.result, VoteResult::Accepted);
    assert_eq!(
        (line.vote.as_str(), line.slot, line.instance.as_str()),
        ("notarize", slot, "primary-1")
    );
    assert_eq!(line.block_id, Some(block_id.to_string()));
    assert_eq!(line.identity, identity.pubkey().to_string());
    // A repeat lands again; a finalize beside it too.
    assert_eq!(result(&send(&mut f, &message)), &json!({"landed": true}));
    let finalize = VotorVoteMessage::new_signed(
        &identity,
        f.vote_account(),
        VotorVote::Finalize { slot },
        "p",
    );
    assert_eq!(result(&send(&mut f, &finalize)), &json!({"landed": true}));
}

#[test]
fn a_bad_signature_an_unknown_identity_or_a_conflict_is_refused_clearly() {
    let mut f = alpenglow();
    let (slot, block_id) = notarized_slot(&mut f);
    let identity = f.keys.identity.insecure_clone();
    let vote = VotorVote::Notarize { slot, block_id };
    let mut forged = VotorVoteMessage::new_signed(&identity, f.vote_account(), vote, "a");
    forged.instance = "b".into();
    let answer = send(&mut f, &forged);
    assert_eq!(answer["error"]["code"], -32003, "{answer}");
    assert_eq!(answer["error"]["data"], "BadSignature");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("signature does not verify"));
    assert_eq!(last_votor_vote(&f).result, "BadSignature");

    // The secondary identity signs well but holds no stake.
    let secondary = f.keys.secondary_identity.insecure_clone();
    let message = VotorVoteMessage::new_signed(&secondary, f.vote_account(), vote, "a");
    let answer = send(&mut f, &message);
    assert_eq!(answer["error"]["code"], -32000, "{answer}");
    assert_eq!(answer["error"]["data"], "UnknownIdentity");
    assert_eq!(
        answer["error"]["message"],
        format!(
            "{} is not a staked validator of this cluster",
            secondary.pubkey()
        )
    );
    let stranger = Keypair::new();
    let message = VotorVoteMessage::new_signed(&stranger, f.vote_account(), vote, "a");
    assert_eq!(send(&mut f, &message)["error"]["data"], "UnknownIdentity");

    let skip =
        VotorVoteMessage::new_signed(&identity, f.vote_account(), VotorVote::Skip { slot }, "a");
    assert!(send(&mut f, &skip).get("error").is_none());
    let message = VotorVoteMessage::new_signed(&identity, f.vote_account(), vote, "a");
    let answer = send(&mut f, &message);
    assert_eq!(answer["error"]["data"], "ConflictingVote", "{answer}");
    assert_eq!(last_votor_vote(&f).result, "ConflictingVote");
    // The audit checker sees the offence in the trail.
    let report = towerlock_audit::check_events(f.events.clone()).unwrap();
    assert_eq!(
        report.counts_by_kind().keys().copied().collect::<Vec<_>>(),
        [towerlock_audit::ViolationKind::NotarizeAndSkip],
        "{report}"
    );
}

#[test]
fn a_tower_cluster_refuses_votor_votes() {
    let mut f = Fixture::new(Fixture::default_options());
    f.step(4);
    let identity = f.keys.identity.insecure_clone();
    let message = VotorVoteMessage::new_signed(
        &identity,
        f.vote_account(),
        VotorVote::Skip { slot: 2 },
        "a",
    );
    let answer = send(&mut f, &message);
    assert_eq!(answer["error"]["data"], "NotAlpenglow", "{answer}");
}

#[test]
fn our_leaders_submitted_block_is_taken_notarized_and_finalized() {
    let mut f = Fixture::with_consensus(
        InitOptions {
            stake_percent: 15.0,
            ..Fixture::default_options()
        },
        Consensus::Alpenglow,
    );
    let identity = f.keys.identity.insecure_clone();
    f.step(8);
    // Our next window, from its first slot.
    let start = (f.cluster.current_slot() + 8..f.cluster.current_slot() + 256)
        .find(|s| is_window_start(*s) && f.cluster.leader_of(*s) == identity.pubkey())
        .expect("our validator leads a window");
    while f.cluster.current_slot() < start {
        f.step(1);
    }
    let mut notifications = vec![];
    let mut parent = f
        .cluster
        .votor()
        .unwrap()
        .parent_ready(start)
        .expect("a ready parent")
        .0;
    for slot in start..start + 4 {
        let block_id = Hash::new_from_array([slot as u8; 32]);
        let block = SubmitBlock::new_signed(&identity, slot, parent, block_id, "ours");
        assert!(f.rpc("submitBlock", json!([block])).get("error").is_none());
        f.now_ms += 20;
        let outputs = f.cluster.end_slot(f.now_ms);
        notifications.extend(outputs.notifications.clone());
        f.absorb(outputs);
        let votor_block = f.cluster.votor().unwrap().block(slot).copied();
        assert_eq!(
            votor_block.map(|b| b.block_id),
            Some(block_id),
            "slot {slot}"
        );
        parent = slot;
    }
    assert!(
        f.cluster.root() >= start + 3,
        "finalized: {}",
        f.cluster.root()
    );
    let streamed: Vec<&VotorNotification> = notifications
        .iter()
        .filter_map(|n| match n {
            Notification::Votor(v) => Some(v),
            _ => None,
        })
        .collect();
    assert!(streamed.iter().any(|n| matches!(n, VotorNotification::Block(b) if b.slot == start && b.leader == identity.pubkey())));
    assert!(streamed.iter().any(|n| matches!(n, VotorNotification::Certificate(c) if c.slot == start && c.kind == CertificateKind::FastFinalization)));
    assert!(streamed
        .iter()
        .any(|n| matches!(n, VotorNotification::Slot { slot } if *slot == start + 4)));
}

#[test]
fn a_snapshot_resumes_votor_where_it_stopped() {
    let mut f = alpenglow();
    f.step(60);
    let bytes = f.cluster.snapshot();
    let mut resumed =
        towerlock_cluster::core::Cluster::restore(f.cluster.genesis().clone(), &bytes).unwrap();
    assert_eq!(resumed.votor(), f.cluster.votor());
    let root = resumed.root();
    for _ in 0..40 {
        let _ = resumed.end_slot(10_000);
    }
    assert!(
        resumed.root() >= root + 30,
        "{} after {root}",
        resumed.root()
    );
}
