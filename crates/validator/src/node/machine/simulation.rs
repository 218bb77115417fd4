//! A randomized simulation of the node machine: thousands of seeded runs
//! over interleavings of banks (with forks and replays), admin commands,
//! a rival instance taking the fence, storage answers that succeed, fail,
//! come late or never say whether they happened — and the safety
//! invariants checked at every step:
//!
//! 1. a vote leaves only right after a store receipt for a tower whose last
//!    vote is that vote, for the identity that signs it;
//! 2. a block leaves only right after a fence receipt for its slot, and no
//!    identity's slot is produced twice;
//! 3. the tower never loses a vote that was sent: each identity's votes
//!    strictly increase, none breaks the lockout of an earlier one (checked
//!    against an independent reference tower over the simulated fork tree),
//!    and the stored tower always holds the last vote sent.

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::{rngs::StdRng, Rng, SeedableRng};
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use towerlock_storage::{MemoryTowerStorage, TowerStorage};
use towerlock_tower::{SavedTower, Slot, Tower};

use super::harness::{Harness, Keys};
use super::*;

/// Runs per `cargo test`; each is a few dozen to a few hundred steps.
const RUNS: u64 = 1500;
const STEPS: usize = 80;

/// What the simulated cluster and storage know, independent of the machine.
struct World {
    rng: StdRng,
    keys: Keys,
    /// slot → parent, every bank ever frozen.
    parents: BTreeMap<Slot, Slot>,
    newest: Slot,
    rival: MemoryTowerStorage,
    /// The receipt just handed to the machine, if any: (identity, last vote).
    store_receipt: Option<(Pubkey, Option<Slot>)>,
    fence_receipt: Option<(Pubkey, Slot)>,
    produced: HashSet<(Pubkey, Slot)>,
    /// Per identity: a reference tower of the votes sent, and the last one.
    sent: HashMap<Pubkey, (Tower, Slot)>,
    next_request: u64,
    /// Answers withheld for a while (the storage is slow).
    delayed: Option<Action>,
}

#[test]
fn random_interleavings_keep_every_vote_and_block_fenced() {
    for seed in 0..RUNS {
        run(seed);
    }
}

fn run(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let keys = Keys::new();
    let storage = MemoryTowerStorage::new();
    let policy = if rng.gen_bool(0.5) {
        UnavailablePolicy::SkipVote
    } else {
        UnavailablePolicy::Exit
    };
    // Half the runs start as the primary, half as the hot spare.
    let identity = if rng.gen_bool(0.5) {
        keys.primary.insecure_clone()
    } else {
        keys.secondary.insecure_clone()
    };
    let mut h = Harness::with(&keys, &identity, &[&keys.primary], storage, policy);
    h.leader_slots = (0..10_000).filter(|s| (s / 4) % 3 == 0).collect();
    let mut world = World {
        rival: h.other_instance(),
        rng,
        keys,
        parents: BTreeMap::from([(0, 0)]),
        newest: 0,
        store_receipt: None,
        fence_receipt: None,
        produced: HashSet::new(),
        sent: HashMap::new(),
        next_request: 0,
        delayed: None,
    };
    let bank = h.bank(0, 0);
    feed(&mut h, &mut world, Event::Bank(bank), seed);
    for _ in 0..STEPS {
        if h.machine.is_stopped() {
            break;
        }
        let event = next_event(&mut h, &mut world);
        if let Some(event) = event {
            feed(&mut h, &mut world, event, seed);
        }
    }
}

/// Picks what happens next.
fn next_event(h: &mut Harness, w: &mut World) -> Option<Event> {
    let roll = w.rng.gen_range(0..100);
    match roll {
        0..=39 => Some(Event::Bank(new_bank(h, w))),
        40..=44 => {
            // A replayed notification (after a reconnect).
            let slot = *w.parents.keys().nth(w.rng.gen_range(0..w.parents.len()))?;
            Some(Event::Bank(h.bank(slot, w.parents[&slot])))
        }
        45..=69 => w.delayed.take().and_then(|action| answer(h, w, action)),
        70..=79 => Some(admin(w)),
        80..=82 => {
            // The other validator takes the fence (a failover away).
            let _ = h.block_on(w.rival.takeover(&w.keys.primary.pubkey()));
            None
        }
        83..=86 => stale_answer(w),
        87..=89 => {
            h.now.unix_micros += w.rng.gen_range(0..20_000_000);
            Some(Event::Tick)
        }
        _ => Some(Event::Bank(new_bank(h, w))),
    }
}

fn new_bank(h: &Harness, w: &mut World) -> towerlock_wire::api::BankNotification {
    let slot = w.newest + w.rng.gen_range(1..=2);
    // Mostly on the newest bank; sometimes a fork off a recent one.
    let parent = if w.rng.gen_bool(0.8) {
        w.newest
    } else {
        let recent: Vec<Slot> = w.parents.keys().rev().take(6).copied().collect();
        recent[w.rng.gen_range(0..recent.len())]
    };
    w.parents.insert(slot, parent);
    w.newest = slot;
    h.bank(slot, parent)
}

fn admin(w: &mut World) -> Event {
    w.next_request += 1;
    let command = match w.rng.gen_range(0..10) {
        0..=5 => Command::SetIdentity {
            keypair: w.keys.primary.insecure_clone(),
            require_tower: w.rng.gen_bool(0.5),
        },
        6 => Command::SetIdentity {
            keypair: w.keys.secondary.insecure_clone(),
            require_tower: false,
        },
        7 => Command::RemoveAllAuthorizedVoters,
        _ => Command::AddAuthorizedVoter {
            keypair: w.keys.primary.insecure_clone(),
        },
    };
    Event::Admin {
        request: RequestId(w.next_request),
        command,
    }
}

/// An answer to an operation long finished (or never asked): never the
/// one in flight.
fn stale_answer(w: &mut World) -> Option<Event> {
    let op = OpId(w.rng.gen_range(0..50));
    let in_flight = match &w.delayed {
        Some(
            Action::TakeOver { op, .. }
            | Action::CheckTower { op, .. }
            | Action::Renew { op, .. }
            | Action::Store { op, .. }
            | Action::FenceLeaderSlot { op, .. },
        ) => Some(*op),
        _ => None,
    };
    if in_flight == Some(op) {
        return None;
    }
    Some(match w.rng.gen_range(0..3) {
        0 => Event::Stored {
            op,
            result: Err(Harness::unavailable()),
            elapsed: Default::default(),
        },
        1 => Event::TakenOver {
            op,
            result: Err(Harness::unavailable()),
        },
        _ => Event::LeaderFenced {
            op,
            result: Err(Harness::unavailable()),
        },
    })
}

/// Hands an event to the machine, then carries out what it asks: storage
/// operations are held back (answered later, in [`next_event`]), the rest
/// delivered at once and checked.
fn feed(h: &mut Harness, w: &mut World, event: Event, seed: u64) {
    h.step(event);
    while let Some(action) = h.pending.pop_front() {
        match action {
            Action::TakeOver { .. }
            | Action::CheckTower { .. }
            | Action::Renew { .. }
            | Action::Store { .. }
            | Action::FenceLeaderSlot { .. } => {
                assert!(
                    w.delayed.is_none(),
                    "seed {seed}: two storage operations in flight"
                );
                w.delayed = Some(action);
            }
            action => {
                check(h, w, &action, seed);
                if let Some(event) = h.execute(action) {
                    h.step(event);
                }
            }
        }
    }
}

/// Answers a held-back storage operation: it happened and says so, it
/// happened but the answer was lost, or it never reached storage.
fn answer(h: &mut Harness, w: &mut World, action: Action) -> Option<Event> {
    let outcome = w.rng.gen_range(0..10);
    if outcome == 0 {
        return Some(unknown(action));
    }
    let answer = h.execute(action)?;
    if outcome == 1 {
        // Applied, answer lost.
        return Some(unknown_like(answer));
    }
    match &answer {
        Event::Stored {
            result: Ok(receipt),
            ..
        } => w.store_receipt = Some((receipt.identity(), receipt.last_vote())),
        Event::LeaderFenced {
            result: Ok(receipt),
            ..
        } => w.fence_receipt = Some((receipt.identity(), receipt.slot())),
        _ => {}
    }
    Some(answer)
}

fn unknown(action: Action) -> Event {
    match action {
        Action::TakeOver { op, .. } => Event::TakenOver {
            op,
            result: Err(Harness::unavailable()),
        },
        Action::CheckTower { op, .. } => Event::TowerChecked {
            op,
            result: Err(Harness::unavailable()),
        },
        Action::Renew { op, .. } => Event::Renewed {
            op,
            result: Err(Harness::unavailable()),
        },
        Action::Store { op, .. } => Event::Stored {
            op,
            result: Err(Harness::unavailable()),
            elapsed: Default::default(),
        },
        Action::FenceLeaderSlot { op, .. } => Event::LeaderFenced {
            op,
            result: Err(Harness::unavailable()),
        },
        other => unreachable!("not a storage action: {other:?}"),
    }
}

fn unknown_like(answer: Event) -> Event {
    match answer {
        Event::TakenOver { op, .. } => Event::TakenOver {
            op,
            result: Err(Harness::unavailable()),
        },
        Event::TowerChecked { op, .. } => Event::TowerChecked {
            op,
            result: Err(Harness::unavailable()),
        },
        Event::Renewed { op, .. } => Event::Renewed {
            op,
            result: Err(Harness::unavailable()),
        },
        Event::Stored { op, elapsed, .. } => Event::Stored {
            op,
            result: Err(Harness::unavailable()),
            elapsed,
        },
        Event::LeaderFenced { op, .. } => Event::LeaderFenced {
            op,
            result: Err(Harness::unavailable()),
        },
        other => other,
    }
}

/// The invariants, at the moment a vote or a block leaves.
fn check(h: &Harness, w: &mut World, action: &Action, seed: u64) {
    match action {
        Action::SendVote { slot, transaction } => {
            let signer = transaction.message.account_keys[0];
            assert_eq!(
                w.store_receipt.take(),
                Some((signer, Some(*slot))),
                "seed {seed}: vote {slot} without a receipt for its tower"
            );
            check_vote(h, w, signer, *slot, seed);
        }
        Action::SubmitBlock(block) => {
            let (leader, _) = block.verify().expect("blocks leave signed");
            assert_eq!(
                w.fence_receipt.take(),
                Some((leader, block.slot)),
                "seed {seed}: block {} without a fence receipt",
                block.slot
            );
            assert!(
                w.produced.insert((leader, block.slot)),
                "seed {seed}: slot {} produced twice",
                block.slot
            );
        }
        _ => {}
    }
}

fn check_vote(h: &Harness, w: &mut World, identity: Pubkey, slot: Slot, seed: u64) {
    let parents = &w.parents;
    let is_ancestor = |a: Slot| {
        let mut current = slot;
        while let Some(&parent) = parents.get(&current) {
            if parent == current {
                return false;
            }
            if parent == a {
                return true;
            }
            current = parent;
        }
        false
    };
    let (tower, last) = w
        .sent
        .entry(identity)
        .or_insert_with(|| (Tower::new(identity), 0));
    if *last > 0 || !tower.lockouts().is_empty() {
        assert!(slot > *last, "seed {seed}: vote {slot} after {last}");
        assert!(
            !tower.is_locked_out(slot, is_ancestor),
            "seed {seed}: vote {slot} breaks the lockout of {:?}",
            tower.lockouts()
        );
    }
    let _ = tower.record_vote(slot, Default::default(), Default::default(), 0);
    *last = slot;
    let stored = h
        .storage
        .raw_tower(&identity)
        .and_then(|bytes| SavedTower::from_bytes(&bytes, &identity).ok())
        .and_then(|saved| saved.tower().last_voted_slot());
    assert_eq!(
        stored,
        Some(slot),
        "seed {seed}: the stored tower lost vote {slot}"
    );
}
