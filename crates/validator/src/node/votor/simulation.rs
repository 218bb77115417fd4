//! A randomized simulation of the Votor machine: seeded runs over
//! interleavings of blocks (two in a slot, repeated, on any parent),
//! certificates of every kind (consistent or not: the cluster may be
//! faulty, this node must not be), stake tallies, slots and time jumps,
//! store answers that succeed, are lost after the write, or never reach
//! storage, stale answers, a rival taking the fence, and failovers: a new
//! instance loading the stored history, as a takeover reads it.
//!
//! Checked at every vote sent:
//! 1. it is in the history of the last store answered `Ok`, for the
//!    identity that sends it;
//! 2. across the whole run, every instance together, the identity commits
//!    no Votor offence: notarize and skip in one slot, two notarized blocks
//!    in one slot, finalize in a slot with a skip or fallback vote.
//!
//! And at every exit: it is one the run provoked (storage), never a refusal
//! of a history the run stored itself.

use std::collections::BTreeMap;

use rand::{rngs::StdRng, Rng, SeedableRng};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_storage::MemoryTowerStorage;

use super::harness::*;
use super::*;

/// Runs per `cargo test`, each of up to [`STEPS`] events.
const RUNS: u64 = 600;
const STEPS: usize = 120;

/// The simulated cluster, storage and the identity's record of votes.
struct World {
    seed: u64,
    rng: StdRng,
    keypair: Keypair,
    storage: MemoryTowerStorage,
    /// Every block shown to the machine: slot → (block, parent).
    blocks: BTreeMap<Slot, Vec<(Block, Option<Block>)>>,
    /// The cluster's slot.
    top: Slot,
    /// Every vote the identity sent, per slot, across instances.
    sent: BTreeMap<Slot, Vec<VotePayload>>,
    /// Votes already checked in the current instance's `sent`.
    checked: usize,
    /// Instances started (failovers + 1).
    instances: usize,
}

#[test]
fn random_interleavings_never_send_an_unstored_vote_or_an_offence() {
    for seed in 0..RUNS {
        run(seed);
    }
}

fn run(seed: u64) {
    let mut w = World {
        seed,
        rng: StdRng::seed_from_u64(seed),
        keypair: Keypair::new(),
        storage: MemoryTowerStorage::new(),
        blocks: BTreeMap::new(),
        top: 0,
        sent: BTreeMap::new(),
        checked: 0,
        instances: 0,
    };
    let mut h = failover(&mut w, START_MS, seed);
    for _ in 0..STEPS {
        if h.exit.is_some() {
            let now = h.now;
            h = failover(&mut w, now, seed);
            continue;
        }
        step(&mut h, &mut w);
        check(&h, &mut w, seed);
    }
}

/// A new instance takes the fence and loads what storage holds, with the
/// newest slot the cluster saw this identity vote in.
fn failover(w: &mut World, now: u64, seed: u64) -> Harness {
    let policy = if w.rng.gen_bool(0.3) {
        UnavailablePolicy::Exit
    } else {
        UnavailablePolicy::SkipVote
    };
    let mut h = Harness::on(w.keypair.insecure_clone(), w.storage.new_instance(), policy);
    h.now = now;
    w.checked = 0;
    w.instances += 1;
    let history = h.stored_history();
    let landed = w.sent.keys().next_back().copied();
    h.handle(Event::Loaded { history, landed });
    assert!(
        h.exit.is_none(),
        "seed {seed}: instance {} refused the stored history: {:?}",
        w.instances,
        h.exit
    );
    // The cluster shows its blocks again to a new instance.
    let known: Vec<_> = w.blocks.values().flatten().copied().collect();
    for (block, parent) in known {
        if w.rng.gen_bool(0.5) {
            h.handle(Event::Block {
                slot: block.slot,
                block_id: block.block_id,
                parent,
            });
        }
    }
    h
}

fn step(h: &mut Harness, w: &mut World) {
    let roll = w.rng.gen_range(0..100);
    match roll {
        0..=19 => new_block(h, w),
        20..=24 => repeat_block(h, w),
        25..=44 => {
            let certificate = certificate(h, w);
            h.certificate(certificate);
        }
        45..=51 => {
            let tally = tally(w);
            h.handle(Event::Tally(tally));
        }
        52..=57 => {
            w.top += w.rng.gen_range(1..=3);
            h.handle(Event::Slot(w.top));
        }
        58..=66 => {
            let jump = w.rng.gen_range(0..900);
            h.now += jump;
            h.handle(Event::Tick);
        }
        67..=86 => answer(h, w),
        87..=89 => {
            // A stale answer: an id not in flight.
            let op = OpId(w.rng.gen_range(0..40));
            if h.stores.front().is_none_or(|s| s.op != op) {
                let result = Err(unavailable());
                h.answer(op, result);
            }
        }
        90..=91 => {
            // A rival instance takes the fence: this one's next store
            // fails with LockLost.
            let rival = w.storage.new_instance();
            ready(towerlock_storage::TowerStorage::takeover(
                &rival,
                &w.keypair.pubkey(),
            ))
            .expect("takeover");
        }
        92..=93 => {
            let (now, seed) = (h.now, w.seed);
            *h = failover(w, now, seed);
        }
        _ => {
            h.now += 50;
            h.handle(Event::Tick);
        }
    }
}

fn random_id(w: &mut World) -> Hash {
    id(w.rng.gen_range(1..=3))
}

fn any_block(w: &mut World) -> Option<(Block, Option<Block>)> {
    let all: Vec<_> = w.blocks.values().flatten().copied().collect();
    (!all.is_empty()).then(|| all[w.rng.gen_range(0..all.len())])
}

fn new_block(h: &mut Harness, w: &mut World) {
    // Mostly the next slot of the chain, else any slot (a second block
    // there, or a late one).
    let slot = if w.rng.gen_bool(0.6) {
        w.top + 1
    } else {
        w.rng.gen_range(1..=w.top + 1)
    };
    w.top = w.top.max(slot);
    let block = Block {
        slot,
        block_id: random_id(w),
    };
    // Mostly on the block before it, else on any older one, or genesis.
    let before = w
        .blocks
        .get(&(slot - 1))
        .and_then(|blocks| blocks.first())
        .map(|(block, _)| *block);
    let ours = h
        .machine
        .history()
        .voted_notar
        .range(..slot)
        .next_back()
        .map(|(&slot, &block_id)| Block { slot, block_id });
    let parent = match w.rng.gen_range(0..10) {
        0..=3 => ours.or(before),
        4..=5 => before,
        6..=8 => {
            let older: Vec<Block> = w
                .blocks
                .range(..slot)
                .flat_map(|(_, blocks)| blocks.iter().map(|(b, _)| *b))
                .collect();
            (!older.is_empty()).then(|| older[w.rng.gen_range(0..older.len())])
        }
        _ => None,
    };
    w.blocks.entry(slot).or_default().push((block, parent));
    h.handle(Event::Block {
        slot,
        block_id: block.block_id,
        parent,
    });
}

fn repeat_block(h: &mut Harness, w: &mut World) {
    if let Some((block, parent)) = any_block(w) {
        h.handle(Event::Block {
            slot: block.slot,
            block_id: block.block_id,
            parent,
        });
    }
}

fn certificate(h: &Harness, w: &mut World) -> Certificate {
    // Often a block this instance notarized or the newest block, else any
    // block or slot.
    let ours: Vec<Block> = h
        .machine
        .history()
        .voted_notar
        .iter()
        .map(|(&slot, &block_id)| Block { slot, block_id })
        .collect();
    let newest = w
        .blocks
        .values()
        .next_back()
        .and_then(|b| b.first())
        .map(|(b, _)| *b);
    let block = if !ours.is_empty() && w.rng.gen_bool(0.4) {
        ours[w.rng.gen_range(0..ours.len())]
    } else if let Some(newest) = newest.filter(|_| w.rng.gen_bool(0.5)) {
        newest
    } else {
        match any_block(w) {
            Some((block, _)) => block,
            None => Block {
                slot: w.rng.gen_range(1..=w.top.max(1)),
                block_id: random_id(w),
            },
        }
    };
    let slot = w.rng.gen_range(1..=w.top.max(1));
    match w.rng.gen_range(0..40) {
        0..=17 => Certificate::Notarize(block),
        18..=23 => Certificate::NotarizeFallback(block),
        24..=37 => Certificate::Skip(slot),
        38 => Certificate::FastFinalize(block),
        _ => Certificate::Finalize(block.slot.min(slot)),
    }
}

fn tally(w: &mut World) -> SlotTally {
    let slot = w.rng.gen_range(1..=w.top.max(1));
    let blocks = w.rng.gen_range(0..=2);
    SlotTally {
        slot,
        skip: w.rng.gen_range(0..=6_000),
        notarize: (0..blocks)
            .map(|_| (random_id(w), w.rng.gen_range(0..=6_000)))
            .collect(),
    }
}

/// The store in flight: written and answered `Ok`, written with the answer
/// lost, or never written.
fn answer(h: &mut Harness, w: &mut World) {
    if h.stores.is_empty() {
        return;
    }
    match w.rng.gen_range(0..20) {
        0..=14 => h.store_ok(),
        15..=17 => {
            let request = h.take_store();
            let _lost = h.store(&request.history);
            h.answer(request.op, Err(unavailable()));
        }
        _ => {
            let request = h.take_store();
            h.answer(request.op, Err(unavailable()));
        }
    }
}

/// The invariants, over the votes sent since the last check.
fn check(h: &Harness, w: &mut World, seed: u64) {
    let identity = w.keypair.pubkey();
    for &vote in &h.sent[w.checked..] {
        let slot = vote.slot();
        let stored = h
            .acknowledged
            .as_ref()
            .unwrap_or_else(|| panic!("seed {seed}: {vote:?} sent before any store succeeded"));
        assert_eq!(stored.node_pubkey, identity, "seed {seed}");
        assert!(
            stored
                .votes_cast
                .get(&slot)
                .is_some_and(|cast| cast.contains(&vote)),
            "seed {seed}: {vote:?} is not in the last stored history"
        );
        let earlier = w.sent.entry(slot).or_default();
        for other in earlier.iter() {
            if let Some(offence) = offence(&vote, other) {
                panic!("seed {seed}: offence in slot {slot}: {offence} ({other:?}, then {vote:?})");
            }
        }
        earlier.push(vote);
    }
    w.checked = h.sent.len();
    if let Some(exit) = &h.exit {
        assert!(
            matches!(
                exit,
                VotorExit::LockLost { .. } | VotorExit::StorageUnavailable { .. }
            ),
            "seed {seed}: unexpected exit {exit}"
        );
    }
}

/// The Votor offence two votes of one slot make, if any.
fn offence(a: &VotePayload, b: &VotePayload) -> Option<&'static str> {
    use VotePayload::*;
    match (a, b) {
        (Notar { .. }, Skip { .. }) | (Skip { .. }, Notar { .. }) => Some("notarize and skip"),
        (Notar { block: x, .. }, Notar { block: y, .. }) if x != y => Some("two notarized blocks"),
        (Finalize { .. }, Skip { .. } | SkipFallback { .. } | NotarFallback { .. })
        | (Skip { .. } | SkipFallback { .. } | NotarFallback { .. }, Finalize { .. }) => {
            Some("finalize in a skipped slot")
        }
        _ => None,
    }
}
