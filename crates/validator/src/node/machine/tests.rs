//! Step tests of the node machine: no sockets, no processes, no clock.

use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_storage::{MemoryTowerStorage, StorageError, TowerStorage};
use towerlock_tower::{SavedTower, Tower};

use super::harness::{Harness, Keys};
use super::*;
use crate::admin::{AdminError, Role};

/// A primary that caught up and voted on banks 0..=10.
fn voting_primary(keys: &Keys) -> Harness {
    leading_primary(keys, &[])
}

/// A primary leader in `leader_slots` that caught up and voted on banks
/// 0..=10.
fn leading_primary(keys: &Keys, leader_slots: &[u64]) -> Harness {
    let mut h = Harness::new(keys, &keys.primary, &[&keys.primary]);
    h.leader_slots = leader_slots.iter().copied().collect();
    h.replay_chain(0, 10);
    assert_eq!(h.machine.status().role, Role::Voting);
    h
}

fn tower_with_votes(identity: &Keypair, slots: impl IntoIterator<Item = u64>) -> SavedTower {
    let mut tower = Tower::new(identity.pubkey());
    for slot in slots {
        let _ = tower.record_vote(slot, Default::default(), Default::default(), 0);
    }
    SavedTower::new(&tower, identity).unwrap()
}

#[test]
fn a_primary_takes_the_fence_once_caught_up_and_stores_before_each_vote() {
    let keys = Keys::new();
    let mut h = Harness::new(&keys, &keys.primary, &[&keys.primary]);
    h.step(Event::Bank(h.bank(0, 0)));
    // Caught up at once (start slot 0): the tower is checked, then the
    // fence taken.
    assert!(
        matches!(h.pending.front(), Some(Action::CheckTower { identity, .. }) if *identity == keys.primary.pubkey())
    );
    let check = h.pending.pop_front().unwrap();
    let answer = h.execute(check).unwrap();
    h.step(answer);
    assert!(
        matches!(h.pending.front(), Some(Action::TakeOver { identity, .. }) if *identity == keys.primary.pubkey())
    );
    h.settle();
    assert_eq!(h.voted_slots(), [0]);
    let bank = h.bank(1, 0);
    h.step(Event::Bank(bank));
    // The vote waits for its store: nothing is sent before the answer.
    assert!(matches!(h.pending.front(), Some(Action::Store { .. })));
    assert_eq!(h.seen.votes.len(), 1);
    let store = h.pending.pop_front().unwrap();
    let answer = h.execute(store).unwrap();
    h.step(answer);
    assert!(matches!(
        h.pending.front(),
        Some(Action::SendVote { slot: 1, .. })
    ));
    h.settle();
    assert_eq!(h.seen.votes[1], (1, keys.primary.pubkey()));
    let stored = h
        .block_on(h.storage.load_unfenced(&keys.primary.pubkey()))
        .unwrap();
    assert_eq!(stored.tower().last_voted_slot(), Some(1));
}

#[test]
fn a_node_behind_the_cluster_neither_takes_over_nor_votes() {
    let keys = Keys::new();
    let mut h = Harness::new(&keys, &keys.primary, &[&keys.primary]);
    let mut bank = h.bank(0, 0);
    bank.tip = 50;
    h.step(Event::Bank(bank));
    assert!(h.pending.is_empty(), "{:?}", h.pending);
    assert_eq!(h.machine.status().role, Role::Starting);
    assert!(matches!(
        h.admin(Command::SetIdentity {
            keypair: keys.primary.insecure_clone(),
            require_tower: false
        }),
        Err(AdminError::Starting)
    ));
}

#[test]
fn skip_vote_entry_and_recovery() {
    let keys = Keys::new();
    let storage = MemoryTowerStorage::new();
    let mut h = Harness::with(
        &keys,
        &keys.primary,
        &[&keys.primary],
        storage,
        UnavailablePolicy::SkipVote,
    );
    h.replay_chain(0, 5);
    let before = h.seen.votes.len();
    h.storage.set_unavailable(true);
    h.replay(6, 5);
    assert_eq!(h.machine.status().role, Role::SkipVote);
    assert_eq!(h.seen.votes.len(), before, "no vote without a stored tower");
    assert!(h.seen.exit.is_none());
    h.replay(7, 6);
    assert_eq!(h.seen.votes.len(), before);
    // Storage answers again: the next bank is voted.
    h.storage.set_unavailable(false);
    h.replay(8, 7);
    assert_eq!(h.machine.status().role, Role::Voting);
    assert_eq!(h.seen.votes.last().map(|v| v.0), Some(8));
    assert_eq!(h.machine.status().store_failures.unavailable, 2);
}

#[test]
fn storage_unavailable_exits_by_default_without_sending() {
    let keys = Keys::new();
    let mut h = voting_primary(&keys);
    let before = h.seen.votes.len();
    h.storage.set_unavailable(true);
    h.replay(11, 10);
    assert!(matches!(
        h.seen.exit,
        Some(Err(NodeExit::StorageUnavailable { .. }))
    ));
    assert_eq!(h.seen.votes.len(), before);
    // A stopped machine does nothing more.
    h.storage.set_unavailable(false);
    h.replay(12, 11);
    assert_eq!(h.seen.votes.len(), before);
}

#[test]
fn lock_lost_exits_before_the_vote_leaves() {
    let keys = Keys::new();
    let mut h = voting_primary(&keys);
    let before = h.seen.votes.len();
    let secondary = h.other_instance();
    h.block_on(secondary.takeover(&keys.primary.pubkey()))
        .unwrap();
    h.replay(11, 10);
    match &h.seen.exit {
        Some(Err(NodeExit::LockLost { identity, by })) => {
            assert_eq!(*identity, keys.primary.pubkey());
            assert_eq!(**by, *secondary.instance());
        }
        other => panic!("expected LockLost, got {other:?}"),
    }
    assert_eq!(h.seen.votes.len(), before);
    assert_eq!(h.machine.status().store_failures.lock_lost, 1);
}

#[test]
fn a_hot_spare_becomes_the_voter_after_set_identity() {
    let keys = Keys::new();
    // The secondary: its own identity, the primary's keypair as voter.
    let mut h = Harness::new(&keys, &keys.secondary, &[&keys.primary]);
    h.replay_chain(0, 5);
    assert_eq!(h.machine.status().role, Role::HotSpare);
    assert!(h.seen.votes.is_empty());
    let outset_before = h.seen.contacts.last().unwrap().info.outset;

    h.admin(Command::SetIdentity {
        keypair: keys.primary.insecure_clone(),
        require_tower: false,
    })
    .unwrap();
    let status = h.machine.status();
    assert_eq!(
        (status.identity, status.role),
        (keys.primary.pubkey(), Role::Voting)
    );
    let contact = h.seen.contacts.last().unwrap();
    assert_eq!(contact.verify(), Some(keys.primary.pubkey()));
    assert!(contact.info.outset > outset_before);
    // It votes at once (the newest bank), then every new bank.
    h.replay(6, 5);
    assert_eq!(
        h.seen.votes,
        vec![(5, keys.primary.pubkey()), (6, keys.primary.pubkey())]
    );
}

/// Every `setIdentity` refusal leaves the node exactly as it was: same
/// identity, role and fence, and the fence in storage unmoved.
#[test]
fn every_set_identity_refusal_leaves_the_machine_unchanged() {
    let keys = Keys::new();
    let mut h = Harness::new(&keys, &keys.secondary, &[&keys.primary]);
    h.replay_chain(0, 5);
    let before = h.machine.status();
    let holder = |h: &Harness| h.storage.holder(&keys.primary.pubkey());

    // A keypair that could not vote.
    let stranger = Keypair::new();
    let refused = h.admin(Command::SetIdentity {
        keypair: stranger,
        require_tower: false,
    });
    assert!(
        matches!(refused, Err(AdminError::InvalidParams(_))),
        "{refused:?}"
    );
    // No tower stored, and one required.
    let refused = h.admin(Command::SetIdentity {
        keypair: keys.primary.insecure_clone(),
        require_tower: true,
    });
    assert!(
        matches!(refused, Err(AdminError::TowerUnavailable { .. })),
        "{refused:?}"
    );
    assert_eq!(holder(&h), None, "the fence did not move");
    // A corrupt tower.
    h.storage
        .put_raw_tower(&keys.primary.pubkey(), vec![1, 2, 3]);
    let refused = h.admin(Command::SetIdentity {
        keypair: keys.primary.insecure_clone(),
        require_tower: false,
    });
    assert!(
        matches!(refused, Err(AdminError::TowerUnavailable { .. })),
        "{refused:?}"
    );
    assert_eq!(holder(&h), None, "the fence did not move");
    // Another node's tower under this identity's key.
    h.storage.put_raw_tower(
        &keys.primary.pubkey(),
        tower_with_votes(&keys.secondary, [1]).to_bytes(),
    );
    let refused = h.admin(Command::SetIdentity {
        keypair: keys.primary.insecure_clone(),
        require_tower: false,
    });
    assert!(
        matches!(refused, Err(AdminError::TowerUnavailable { .. })),
        "{refused:?}"
    );
    assert_eq!(h.machine.status(), before);
    assert!(h.seen.exit.is_none());
    h.replay(6, 5);
    assert!(h.seen.votes.is_empty(), "still a hot spare");
}

/// The same when storage does not answer, before or during the takeover.
#[test]
fn a_set_identity_storage_does_not_answer_leaves_the_machine_unchanged() {
    let keys = Keys::new();
    let mut h = Harness::new(&keys, &keys.secondary, &[&keys.primary]);
    h.replay_chain(0, 5);
    let before = h.machine.status();
    // Storage does not answer the read: nothing moved.
    h.storage.put_raw_tower(
        &keys.primary.pubkey(),
        tower_with_votes(&keys.primary, [1]).to_bytes(),
    );
    h.storage.set_unavailable(true);
    let refused = h.admin(Command::SetIdentity {
        keypair: keys.primary.insecure_clone(),
        require_tower: false,
    });
    assert!(
        matches!(refused, Err(AdminError::TowerUnavailable { .. })),
        "{refused:?}"
    );
    // Storage stops answering between the check and the takeover: whether
    // the fence moved is unknown, and said so.
    h.storage.set_unavailable(false);
    h.step(Event::Admin {
        request: RequestId(7),
        command: Command::SetIdentity {
            keypair: keys.primary.insecure_clone(),
            require_tower: false,
        },
    });
    let check = h.pending.pop_front().unwrap();
    let answer = h.execute(check).unwrap();
    h.step(answer);
    h.storage.set_unavailable(true);
    h.settle();
    assert!(
        matches!(
            h.seen.replies.pop(),
            Some((RequestId(7), Err(AdminError::OutcomeUnknown { .. })))
        ),
        "{:?}",
        h.seen.replies
    );
    h.storage.set_unavailable(false);

    assert_eq!(h.machine.status(), before);
    assert!(h.seen.exit.is_none());
}

#[test]
fn set_identity_waits_for_a_store_in_flight() {
    let keys = Keys::new();
    let mut h = voting_primary(&keys);
    let bank = h.bank(11, 10);
    h.step(Event::Bank(bank));
    let store = h.pending.pop_front().unwrap();
    assert!(matches!(store, Action::Store { .. }));
    h.step(Event::Admin {
        request: RequestId(99),
        command: Command::SetIdentity {
            keypair: keys.primary.insecure_clone(),
            require_tower: true,
        },
    });
    // Nothing starts while the store is in flight.
    assert!(h.pending.is_empty(), "{:?}", h.pending);
    let answer = h.execute(store).unwrap();
    h.step(answer);
    // The vote leaves first, then the takeover starts.
    assert!(matches!(
        h.pending.pop_front(),
        Some(Action::SendVote { slot: 11, .. })
    ));
    assert!(matches!(h.pending.front(), Some(Action::CheckTower { .. })));
    h.settle();
    assert!(matches!(
        h.seen.replies.last(),
        Some((RequestId(99), Ok(())))
    ));
}

#[test]
fn a_late_or_repeated_answer_is_ignored() {
    let keys = Keys::new();
    let mut h = voting_primary(&keys);
    let votes = h.seen.votes.len();
    let bank = h.bank(11, 10);
    h.step(Event::Bank(bank));
    let Some(Action::Store { op, token, tower }) = h.pending.pop_front() else {
        panic!("expected a store")
    };
    let stale = Event::Stored {
        op: OpId(op.0 + 1000),
        result: Err(Harness::unavailable()),
        elapsed: Default::default(),
    };
    h.step(stale);
    assert!(h.pending.is_empty() && h.seen.exit.is_none());
    let result = h.block_on(h.storage.store(&token, &tower));
    h.step(Event::Stored {
        op,
        result,
        elapsed: Default::default(),
    });
    h.settle();
    assert_eq!(h.seen.votes.len(), votes + 1);
    // The same answer again (a retried delivery) sends nothing more.
    let result = h.block_on(h.storage.store(&token, &tower));
    h.step(Event::Stored {
        op,
        result,
        elapsed: Default::default(),
    });
    h.settle();
    assert_eq!(h.seen.votes.len(), votes + 1);
}

#[test]
fn a_newer_instance_of_the_identity_in_gossip_means_exit() {
    let keys = Keys::new();
    let mut h = voting_primary(&keys);
    let ours = h.seen.contacts.last().unwrap().info.clone();
    let contact = |outset: u64| {
        towerlock_wire::api::ContactInfo {
            instance: "another".into(),
            outset,
            ..ours.clone()
        }
        .sign(&keys.primary)
    };
    h.step(Event::Contact(contact(ours.outset - 1)));
    assert!(h.seen.exit.is_none() && h.pending.is_empty());
    h.step(Event::Contact(contact(ours.outset + 1)));
    h.settle();
    let Some(Err(exit @ NodeExit::DuplicateInstance { ahead: None, .. })) = &h.seen.exit else {
        panic!("expected a duplicate-instance exit, got {:?}", h.seen.exit);
    };
    // A newer instance on a true clock: agave's sentence, nothing about clocks.
    assert!(!exit.to_string().contains("clock"), "{exit}");
}

#[test]
fn a_newer_instance_whose_start_is_ahead_of_our_clock_names_the_clocks() {
    let keys = Keys::new();
    let mut h = voting_primary(&keys);
    let ours = h.seen.contacts.last().unwrap().info.clone();
    let ahead_of_now = h.now.unix_micros + 90_000_000;
    let contact = towerlock_wire::api::ContactInfo {
        instance: "skewed".into(),
        outset: ahead_of_now,
        ..ours
    }
    .sign(&keys.primary);
    h.step(Event::Contact(contact));
    h.settle();
    let Some(Err(
        exit @ NodeExit::DuplicateInstance {
            ahead: Some(ahead), ..
        },
    )) = &h.seen.exit
    else {
        panic!(
            "expected a duplicate-instance exit naming the clocks, got {:?}",
            h.seen.exit
        );
    };
    // Still agave's exit (scripts match its sentence), with the skew named.
    let sentence = exit.to_string();
    assert!(sentence.starts_with("duplicate running instances of the same validator node"));
    assert!(
        sentence.contains("s ahead of this machine's clock"),
        "{sentence}"
    );
    assert!((89.0..=90.0).contains(&ahead.as_secs_f64()), "{ahead:?}");
}

/// A node whose stored tower voted 1..=40 comes back to banks 99..=106
/// (99 the cluster's root) after an outage; the cluster's SlotHistory holds
/// `rooted`. Returns the harness after those banks.
fn back_after_an_outage(keys: &Keys, rooted: impl IntoIterator<Item = Slot>) -> Harness {
    let mut h = Harness::with(
        keys,
        &keys.primary,
        &[&keys.primary],
        MemoryTowerStorage::new(),
        UnavailablePolicy::Exit,
    );
    let before = h.storage.new_instance();
    let token = h
        .block_on(before.takeover(&keys.primary.pubkey()))
        .unwrap()
        .token;
    let _stored = h
        .block_on(before.store(&token, &tower_with_votes(&keys.primary, 1..=40)))
        .unwrap();
    let mut history = solana_slot_history::SlotHistory::default();
    for slot in rooted {
        history.add(slot);
    }
    h.slot_history = Some(history);
    for slot in 99..=106u64 {
        let mut bank = h.bank(slot, slot - 1);
        bank.root = 99;
        h.step(Event::Bank(bank));
        h.settle();
    }
    assert_eq!(h.machine.status().loaded_last_vote, Some(40));
    h
}

#[test]
fn a_node_back_after_a_long_outage_votes_again() {
    let keys = Keys::new();
    // The cluster rooted its votes, as the SlotHistory the node fetches says.
    let h = back_after_an_outage(&keys, 1..=99);
    let voted = h.voted_slots();
    assert!(
        !voted.is_empty() && voted.iter().all(|s| *s >= 99),
        "{voted:?}"
    );
}

#[test]
fn a_node_back_after_an_outage_keeps_lockouts_on_an_abandoned_fork() {
    let keys = Keys::new();
    // The cluster abandoned the fork of its votes 20..=40: slot 20 was voted
    // 21 times over and stays locked out far beyond these banks.
    let h = back_after_an_outage(&keys, (1..20).chain(41..=99));
    assert_eq!(h.voted_slots(), Vec::<Slot>::new());
}

#[test]
fn a_leader_slot_is_fenced_before_its_block_and_never_produced_twice() {
    let keys = Keys::new();
    let mut h = leading_primary(&keys, &[12, 13]);
    let bank = h.bank(11, 10);
    h.step(Event::Bank(bank));
    // The vote first, then the fence, then the block (the schedule is known).
    let mut order = vec![];
    while let Some(action) = h.pending.pop_front() {
        order.push(match &action {
            Action::Store { .. } => "store",
            Action::SendVote { .. } => "vote",
            Action::FetchLeaderSchedule { .. } => "schedule",
            Action::FenceLeaderSlot { slot: 12, .. } => "fence 12",
            Action::SubmitBlock(block) if block.slot == 12 => "block 12",
            _ => "other",
        });
        if let Some(event) = h.execute(action) {
            h.step(event);
        }
    }
    assert_eq!(order, ["store", "vote", "fence 12", "block 12"]);
    let block = &h.seen.blocks[0];
    assert_eq!(
        block.verify().map(|(leader, _)| leader),
        Some(keys.primary.pubkey())
    );

    // The same identity taken again (set-identity to itself), and the
    // cluster replaying bank 11 after a reconnect: 12 is not produced again.
    h.admin(Command::SetIdentity {
        keypair: keys.primary.insecure_clone(),
        require_tower: true,
    })
    .unwrap();
    h.replay(11, 10);
    assert_eq!(h.seen.blocks.len(), 1);
    // Slot 13 is produced once bank 12 is in.
    h.replay(12, 11);
    assert_eq!(
        h.seen.blocks.iter().map(|b| b.slot).collect::<Vec<_>>(),
        [12, 13]
    );
}

#[test]
fn a_new_holder_never_produces_a_slot_the_old_one_fenced() {
    let keys = Keys::new();
    let mut primary = leading_primary(&keys, &[12]);
    primary.replay(11, 10);
    assert_eq!(primary.seen.blocks.len(), 1);
    // The secondary takes over in the middle of slot 12.
    let storage = primary.other_instance();
    let mut secondary = Harness::with(
        &keys,
        &keys.secondary,
        &[&keys.primary],
        storage,
        UnavailablePolicy::Exit,
    );
    secondary.leader_slots = [12].into();
    secondary.replay_chain(0, 10);
    secondary
        .admin(Command::SetIdentity {
            keypair: keys.primary.insecure_clone(),
            require_tower: true,
        })
        .unwrap();
    secondary.replay(11, 10);
    assert!(
        secondary.seen.blocks.is_empty(),
        "slot 12 was fenced by the old holder"
    );
    assert!(
        secondary.voted_slots().is_empty(),
        "11 was the old holder's vote"
    );
}

#[test]
fn a_silent_bank_stream_is_reopened() {
    let keys = Keys::new();
    let mut h = voting_primary(&keys);
    h.step(Event::Tick);
    assert!(h.pending.is_empty());
    h.now.unix_micros += BANK_SILENCE.as_micros() as u64;
    h.step(Event::Tick);
    h.settle();
    assert_eq!(h.seen.reopened, [Stream::Banks]);
    // Gossip is quiet when nothing changes: it is reopened now and then, so
    // a dead stream cannot hide a newer instance of the identity.
    h.now.unix_micros += GOSSIP_REFRESH.as_micros() as u64;
    let bank = h.bank(11, 10);
    h.step(Event::Bank(bank));
    h.step(Event::Tick);
    h.settle();
    assert_eq!(h.seen.reopened, [Stream::Banks, Stream::Gossip]);
    h.seen.reopened.clear();
    h.step(Event::StreamClosed {
        stream: Stream::Gossip,
        reason: "reset".into(),
    });
    h.settle();
    assert_eq!(h.seen.reopened, [Stream::Gossip]);
    h.step(Event::ClusterLost {
        reason: "gone".into(),
    });
    h.settle();
    assert!(matches!(
        h.seen.exit,
        Some(Err(NodeExit::ClusterLost { .. }))
    ));
}

/// A node that held the fence and lost the right to vote (its voter
/// keypairs removed) stays a hot spare: it takes the fence back only through
/// set-identity, never by itself (the other node may hold it by then).
#[test]
fn a_node_that_stepped_down_takes_the_fence_back_only_by_set_identity() {
    let keys = Keys::new();
    let mut h = voting_primary(&keys);
    h.admin(Command::RemoveAllAuthorizedVoters).unwrap();
    h.replay(11, 10);
    assert_eq!(h.machine.status().role, Role::HotSpare);
    assert_eq!(h.voted_slots().last(), Some(&10));
    h.admin(Command::AddAuthorizedVoter {
        keypair: keys.primary.insecure_clone(),
    })
    .unwrap();
    h.replay(12, 11);
    assert_eq!(h.machine.status().role, Role::HotSpare);
    assert!(h.pending.is_empty());
    h.admin(Command::SetIdentity {
        keypair: keys.primary.insecure_clone(),
        require_tower: true,
    })
    .unwrap();
    assert_eq!(h.machine.status().role, Role::Voting);
    h.replay(13, 12);
    assert_eq!(h.voted_slots().last(), Some(&13));
}

/// `--start-as-hot-spare`: a primary restarted with the staked identity
/// (say by its supervisor after a monitoring failover) replays as a hot
/// spare and takes the fence only when told to, so the identity does not
/// flap back to it.
#[test]
fn a_node_started_as_hot_spare_takes_over_only_by_set_identity() {
    let keys = Keys::new();
    let mut h = Harness::started(
        &keys,
        &keys.primary,
        &[&keys.primary],
        MemoryTowerStorage::new(),
        UnavailablePolicy::Exit,
        true,
    );
    h.replay_chain(0, 6);
    let status = h.machine.status();
    assert_eq!(status.role, Role::HotSpare);
    assert_eq!(status.fence_token, None);
    assert!(h.pending.is_empty(), "no vote as a hot spare");
    assert_eq!(
        h.storage.holder(&keys.primary.pubkey()),
        None,
        "fence untouched"
    );
    // Out of gossip: its newer outset would stop the node that votes now.
    assert!(h.seen.contacts.is_empty(), "published the staked identity");
    h.admin(Command::SetIdentity {
        keypair: keys.primary.insecure_clone(),
        require_tower: false,
    })
    .unwrap();
    assert_eq!(h.machine.status().role, Role::Voting);
    assert_eq!(
        h.seen.contacts.len(),
        1,
        "in gossip once it holds the fence"
    );
    h.replay(7, 6);
    assert_eq!(h.voted_slots().last(), Some(&7));
}

/// An orderly exit (admin `exit`, SIGTERM) gives the fence up, after the
/// last store, so the next start or `tower import` finds nobody holding it;
/// a node stopped because it lost the fence leaves it to the new holder.
#[test]
fn an_orderly_exit_releases_the_fence_and_a_lost_one_does_not() {
    let keys = Keys::new();
    let mut h = voting_primary(&keys);
    let identity = keys.primary.pubkey();
    assert!(h.storage.holder(&identity).is_some());
    h.admin(Command::Exit).unwrap();
    assert_eq!(h.seen.released, vec![true]);
    assert!(matches!(h.seen.exit, Some(Ok(()))));
    assert_eq!(h.storage.holder(&identity), None, "nobody holds it");

    let keys = Keys::new();
    let mut h = voting_primary(&keys);
    h.step(Event::Shutdown);
    h.settle();
    assert_eq!(h.seen.released, vec![true], "SIGTERM releases too");

    let keys = Keys::new();
    let mut h = voting_primary(&keys);
    let other = h.other_instance();
    let taken = h.block_on(other.takeover(&keys.primary.pubkey())).unwrap();
    h.replay(11, 10);
    assert!(matches!(h.seen.exit, Some(Err(NodeExit::LockLost { .. }))));
    assert!(h.seen.released.is_empty(), "a lost fence is not released");
    assert_eq!(
        h.storage.holder(&keys.primary.pubkey()),
        Some(taken.token.instance)
    );
}

/// A primary added a voter keypair after start (it started as a hot spare
/// without one): that is a first takeover, not a return.
#[test]
fn a_hot_spare_that_never_held_the_fence_takes_it_once_it_may_vote() {
    let keys = Keys::new();
    let mut h = Harness::new(&keys, &keys.primary, &[]);
    h.replay_chain(0, 3);
    assert_eq!(h.machine.status().role, Role::HotSpare);
    h.admin(Command::AddAuthorizedVoter {
        keypair: keys.primary.insecure_clone(),
    })
    .unwrap();
    h.replay(4, 3);
    assert_eq!(h.machine.status().role, Role::Voting);
}

/// After a store whose outcome is unknown, the fence is renewed before the
/// next write: the write in flight is void, whenever it lands.
#[test]
fn an_unknown_outcome_renews_the_fence_before_the_next_write() {
    let keys = Keys::new();
    let storage = MemoryTowerStorage::new();
    let mut h = Harness::with(
        &keys,
        &keys.primary,
        &[&keys.primary],
        storage,
        UnavailablePolicy::SkipVote,
    );
    h.replay_chain(0, 5);
    let (op, old, lost) = h.bank_until_store(6, 5);
    h.fail_store(op, Harness::unavailable());
    assert!(h.pending.is_empty(), "no retry before the next bank");
    let bank = h.bank(7, 6);
    h.step(Event::Bank(bank));
    assert!(
        matches!(h.pending.front(), Some(Action::Renew { token, .. }) if *token == old),
        "{:?}",
        h.pending
    );
    h.settle();
    assert_eq!(h.voted_slots().last(), Some(&7));
    assert_eq!(h.machine.status().role, Role::Voting);
    // The write that was in flight lands now: it is void.
    let late = h.block_on(h.storage.store(&old, &lost));
    assert!(
        matches!(late, Err(StorageError::LockLost { .. })),
        "{late:?}"
    );
}

/// A renewal that lands but whose answer is lost leaves the fence with this
/// very instance under a token it does not know: in skip-vote the node takes
/// its own fence again instead of exiting as if another had taken it.
#[test]
fn a_renewal_that_landed_unseen_is_taken_again() {
    let keys = Keys::new();
    let storage = MemoryTowerStorage::new();
    let mut h = Harness::with(
        &keys,
        &keys.primary,
        &[&keys.primary],
        storage,
        UnavailablePolicy::SkipVote,
    );
    h.replay_chain(0, 5);
    let (op, ..) = h.bank_until_store(6, 5);
    h.fail_store(op, Harness::unavailable());
    let bank = h.bank(7, 6);
    h.step(Event::Bank(bank));
    let Some(renew @ Action::Renew { .. }) = h.pending.pop_front() else {
        panic!("expected a renewal")
    };
    // It lands; its answer is lost.
    let Some(Event::Renewed { op, result: Ok(_) }) = h.execute(renew) else {
        panic!("the renewal lands")
    };
    h.step(Event::Renewed {
        op,
        result: Err(Harness::unavailable()),
    });
    h.replay(8, 7);
    assert!(h.seen.exit.is_none(), "{:?}", h.seen.exit);
    assert_eq!(h.voted_slots().last(), Some(&8));
    assert_eq!(h.machine.status().role, Role::Voting);
}

/// etcd's answer when its database is full (the NOSPACE alarm).
fn nospace() -> StorageError {
    StorageError::Etcd {
        reason: "etcdserver: mvcc: database space exceeded".into(),
    }
}

/// Skip-vote promises to stay up: an etcd error that is not a timeout (the
/// NOSPACE alarm) skips the vote and the node resumes once stores succeed.
#[test]
fn skip_vote_rides_out_an_etcd_error() {
    let keys = Keys::new();
    let storage = MemoryTowerStorage::new();
    let mut h = Harness::with(
        &keys,
        &keys.primary,
        &[&keys.primary],
        storage,
        UnavailablePolicy::SkipVote,
    );
    h.replay_chain(0, 5);
    let (op, ..) = h.bank_until_store(6, 5);
    h.fail_store(op, nospace());
    h.settle();
    assert!(h.seen.exit.is_none());
    assert_eq!(h.machine.status().role, Role::SkipVote);
    h.replay(7, 6);
    assert_eq!(h.voted_slots().last(), Some(&7));
    // The default policy exits on the same error.
    let mut h = voting_primary(&keys);
    let (op, ..) = h.bank_until_store(11, 10);
    h.fail_store(op, nospace());
    h.settle();
    assert!(matches!(
        h.seen.exit,
        Some(Err(NodeExit::StorageFailed { .. }))
    ));
}

/// A tower is never invented where one was lost: with landed votes and no
/// stored tower (etcd data loss, another key prefix), or a stored tower
/// older than the landed votes, the node neither starts voting nor accepts
/// set-identity — and the fence does not move — unless a rebuild is allowed.
#[test]
fn a_lost_tower_is_not_rebuilt_from_landed_votes() {
    let keys = Keys::new();
    let landed = |h: &Harness, slot: u64| {
        let mut bank = h.bank(slot, slot - 1);
        bank.vote_accounts[0].lockouts = (30..=39).map(|s| (s, (40 - s) as u32)).collect();
        bank.vote_accounts[0].last_vote = Some(39);
        bank
    };
    // At start: exits with the sentence, the fence untouched.
    let mut h = Harness::new(&keys, &keys.primary, &[&keys.primary]);
    let bank = landed(&h, 100);
    h.step(Event::Bank(bank));
    h.settle();
    match &h.seen.exit {
        Some(Err(exit @ NodeExit::TowerRefused { .. })) => {
            assert!(exit.to_string().contains("--allow-tower-rebuild"), "{exit}")
        }
        other => panic!("expected TowerRefused, got {other:?}"),
    }
    assert_eq!(h.storage.holder(&keys.primary.pubkey()), None);
    // A stored tower older than the landed votes: the same.
    let mut h = Harness::new(&keys, &keys.primary, &[&keys.primary]);
    h.storage.put_raw_tower(
        &keys.primary.pubkey(),
        tower_with_votes(&keys.primary, 1..=20).to_bytes(),
    );
    let bank = landed(&h, 100);
    h.step(Event::Bank(bank));
    h.settle();
    assert!(matches!(
        h.seen.exit,
        Some(Err(NodeExit::TowerRefused { .. }))
    ));
    // set-identity on a hot spare: refused, unchanged.
    let mut h = Harness::new(&keys, &keys.secondary, &[&keys.primary]);
    for slot in 100..=102 {
        let bank = landed(&h, slot);
        h.step(Event::Bank(bank));
        h.settle();
    }
    let before = h.machine.status();
    let refused = h.admin(Command::SetIdentity {
        keypair: keys.primary.insecure_clone(),
        require_tower: false,
    });
    assert!(
        matches!(&refused, Err(AdminError::TowerUnavailable { reason, .. }) if reason.contains("landed votes")),
        "{refused:?}"
    );
    assert_eq!(h.machine.status(), before);
    assert_eq!(h.storage.holder(&keys.primary.pubkey()), None);
}

#[test]
fn an_allowed_rebuild_builds_the_tower_from_landed_votes() {
    let keys = Keys::new();
    let storage = MemoryTowerStorage::new();
    let mut h = Harness::with(
        &keys,
        &keys.primary,
        &[&keys.primary],
        storage,
        UnavailablePolicy::Exit,
    );
    h.machine.allow_tower_rebuild = true;
    let mut bank = h.bank(100, 99);
    bank.vote_accounts[0].lockouts = (30..=39).map(|s| (s, (40 - s) as u32)).collect();
    bank.vote_accounts[0].last_vote = Some(39);
    h.step(Event::Bank(bank));
    h.settle();
    assert!(h.seen.exit.is_none());
    assert_eq!(h.machine.status().role, Role::Voting);
    assert_eq!(h.machine.status().loaded_last_vote, Some(39));
}

/// A stored tower older than the landed votes, with a rebuild allowed, is
/// replaced by the rebuilt one: voting on from the old tower would send
/// votes the vote program refuses (its root and lockouts are behind what
/// landed) and stay locked out of the chain that moved on.
#[test]
fn an_allowed_rebuild_replaces_a_tower_older_than_the_landed_votes() {
    let keys = Keys::new();
    let mut h = Harness::new(&keys, &keys.primary, &[&keys.primary]);
    h.machine.allow_tower_rebuild = true;
    h.storage.put_raw_tower(
        &keys.primary.pubkey(),
        tower_with_votes(&keys.primary, 1..=20).to_bytes(),
    );
    let mut bank = h.bank(100, 99);
    bank.vote_accounts[0].lockouts = (30..=39).map(|s| (s, (40 - s) as u32)).collect();
    bank.vote_accounts[0].last_vote = Some(39);
    bank.vote_accounts[0].root_slot = Some(29);
    h.step(Event::Bank(bank));
    h.settle();
    assert!(h.seen.exit.is_none());
    let status = h.machine.status();
    assert_eq!(status.role, Role::Voting);
    assert_eq!(status.loaded_last_vote, Some(39), "the rebuilt tower");
    assert_eq!(status.root, Some(29));
}
