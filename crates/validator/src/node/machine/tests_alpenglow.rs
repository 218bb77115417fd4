//! Step tests of the node machine on an Alpenglow cluster: the fence, the
//! vote-history check before it moves, and the order of writes, with the
//! Votor machine inside. No sockets, no processes, no clock.

use solana_signer::Signer;
use towerlock_storage::{MemoryTowerStorage, StorageError, TowerStorage};
use towerlock_tower::Slot;

use super::harness::{Harness, Keys};
use super::*;
use crate::admin::{AdminError, Role};
use crate::node::votor::VotorExit;
use towerlock_wire::votor::VotorVote;

/// The primary identity on an Alpenglow cluster, on `storage`, before
/// Votor's first block.
fn not_started(
    keys: &Keys,
    storage: MemoryTowerStorage,
    unavailable: UnavailablePolicy,
    require_vote_history: bool,
) -> Harness {
    Harness::alpenglow(
        keys,
        &keys.primary,
        &[&keys.primary],
        storage,
        unavailable,
        require_vote_history,
    )
}

/// A primary on an Alpenglow cluster, on `storage`, voting once Votor's
/// first block came.
fn primary(keys: &Keys, storage: MemoryTowerStorage, unavailable: UnavailablePolicy) -> Harness {
    let mut h = not_started(keys, storage, unavailable, true);
    h.votor_genesis();
    h
}

/// The slots of the notarize votes sent.
fn notarized(h: &Harness) -> Vec<Slot> {
    h.seen
        .votor_votes
        .iter()
        .filter(|(vote, _)| matches!(vote, VotorVote::Notarize { .. }))
        .map(|(vote, _)| vote.slot())
        .collect()
}

/// Votor's chain from `from` to `to`, each block on the one before, each
/// notarized by the cluster before the next comes (a leader window starts
/// only on a notarized parent).
fn chain(h: &mut Harness, from: Slot, to: Slot) {
    for slot in from..=to {
        if slot > 1 {
            h.votor_notarized(slot - 1);
        }
        h.votor_block(slot, slot - 1);
    }
}

/// Every vote leaves after the history holding it is in storage: the
/// stored history holds it, and names the very block a notarize vote is
/// for — across leader windows.
#[test]
fn each_votor_vote_leaves_only_once_its_history_is_stored() {
    let keys = Keys::new();
    let mut h = primary(&keys, MemoryTowerStorage::new(), UnavailablePolicy::Exit);
    assert_eq!(h.machine.status().role, Role::Voting);
    assert!(h.storage.holder(&keys.primary.pubkey()).is_some());
    chain(&mut h, 1, 6);
    assert_eq!(notarized(&h), vec![1, 2, 3, 4, 5, 6]);
    for (index, (vote, stored)) in h.seen.votor_votes.iter().enumerate() {
        let slot = vote.slot();
        let stored = stored.as_ref().expect("a history was stored first");
        let sent_in_slot = h.seen.votor_votes[..=index]
            .iter()
            .filter(|(v, _)| v.slot() == slot)
            .count();
        assert!(
            stored.votes_cast.get(&slot).map_or(0, Vec::len) >= sent_in_slot,
            "the stored history holds the {vote:?}"
        );
        if let VotorVote::Notarize { block_id, .. } = vote {
            assert_eq!(stored.voted_notar.get(&slot), Some(block_id));
        }
    }
}

/// A failover: the new holder starts from the history the old one stored,
/// votes in no slot the old one voted in, and the old one's next store is
/// refused before its vote leaves.
#[test]
fn a_new_holder_votes_from_the_stored_history_and_the_old_one_stops() {
    let keys = Keys::new();
    let mut old = primary(&keys, MemoryTowerStorage::new(), UnavailablePolicy::Exit);
    chain(&mut old, 1, 4);
    assert_eq!(notarized(&old), vec![1, 2, 3, 4]);

    let mut new = not_started(&keys, old.other_instance(), UnavailablePolicy::Exit, true);
    new.votor_landed = Some(4);
    new.votor_genesis();
    assert_eq!(new.machine.status().role, Role::Voting);
    chain(&mut new, 1, 4);
    assert_eq!(notarized(&new), Vec::<Slot>::new(), "no second notarize");
    new.votor_notarized(4);
    new.votor_block(5, 4);
    assert_eq!(notarized(&new), vec![5]);

    old.votor_block(5, 4);
    assert_eq!(
        notarized(&old),
        vec![1, 2, 3, 4],
        "no second vote in slot 5"
    );
    assert!(
        matches!(old.seen.exit, Some(Err(NodeExit::LockLost { .. }))),
        "{:?}",
        old.seen.exit
    );
}

/// The cluster shows a vote newer than the stored history: the node refuses
/// to vote at start, and set-identity refuses, before the fence moves.
#[test]
fn a_history_older_than_the_landed_votes_is_refused_before_the_fence_moves() {
    let keys = Keys::new();
    let identity = keys.primary.pubkey();
    let mut h = not_started(
        &keys,
        MemoryTowerStorage::new(),
        UnavailablePolicy::Exit,
        true,
    );
    h.votor_landed = Some(5);
    h.votor_genesis();
    match &h.seen.exit {
        Some(Err(NodeExit::Votor {
            source:
                VotorExit::HistoryOlderThanLanded {
                    covered: None,
                    landed: 5,
                    ..
                },
        })) => {}
        other => panic!("expected HistoryOlderThanLanded, got {other:?}"),
    }
    assert_eq!(h.storage.holder(&identity), None, "the fence did not move");

    // A hot spare asked to take the identity over: refused, unchanged.
    let mut h = Harness::alpenglow(
        &keys,
        &keys.secondary,
        &[&keys.primary],
        MemoryTowerStorage::new(),
        UnavailablePolicy::Exit,
        true,
    );
    h.votor_landed = Some(5);
    h.votor_genesis();
    assert_eq!(h.machine.status().role, Role::HotSpare);
    let before = h.machine.status();
    let refused = h.admin(Command::SetIdentity {
        keypair: keys.primary.insecure_clone(),
        require_tower: false,
    });
    assert!(
        matches!(&refused, Err(AdminError::VoteHistoryUnavailable { reason, .. }) if reason.contains("slot 5")),
        "{refused:?}"
    );
    assert_eq!(h.machine.status(), before);
    assert_eq!(h.storage.holder(&identity), None, "the fence did not move");
}

/// `--do-not-require-vote-history` takes the identity over anyway.
#[test]
fn an_older_history_is_voted_from_when_not_required() {
    let keys = Keys::new();
    let mut h = not_started(
        &keys,
        MemoryTowerStorage::new(),
        UnavailablePolicy::Exit,
        false,
    );
    h.votor_landed = Some(5);
    h.votor_genesis();
    assert_eq!(h.machine.status().role, Role::Voting);
    h.votor_block(1, 0);
    assert_eq!(notarized(&h), vec![1]);
}

/// After a vote-history store whose outcome is unknown, the fence is
/// renewed before the next write: the lost write is void, whenever it
/// lands, and its vote never leaves.
#[test]
fn an_unknown_vote_history_store_renews_the_fence_before_the_next_write() {
    let keys = Keys::new();
    let mut h = primary(
        &keys,
        MemoryTowerStorage::new(),
        UnavailablePolicy::SkipVote,
    );
    h.votor_block(1, 0);
    let block = Harness::votor_block_event(2, 1);
    h.step(block);
    let Some(Action::StoreVoteHistory {
        op,
        token: old,
        history: lost,
    }) = h.pending.pop_front()
    else {
        panic!("expected a store, got {:?}", h.pending)
    };
    h.step(Event::VoteHistoryStored {
        op,
        result: Err(Harness::unavailable()),
    });
    h.step(Event::Tick);
    let first_write = h.pending.iter().find(|action| {
        matches!(
            action,
            Action::Renew { .. } | Action::StoreVoteHistory { .. } | Action::Store { .. }
        )
    });
    assert!(
        matches!(first_write, Some(Action::Renew { token, .. }) if *token == old),
        "{:?}",
        h.pending
    );
    h.settle();
    h.votor_block(3, 2);
    assert_eq!(
        notarized(&h),
        vec![1, 3],
        "the vote whose store failed stays unsent"
    );
    assert_eq!(h.machine.status().role, Role::Voting);
    let late = h.block_on(h.storage.store_vote_history(&old, &lost));
    assert!(
        matches!(late, Err(StorageError::LockLost { .. })),
        "{late:?}"
    );
}

/// The cluster does not say which votes of the identity landed: no
/// takeover. By default the node exits saying so (not that storage failed);
/// with skip-vote it tries again at the next bank and votes once it can.
#[test]
fn no_takeover_while_the_cluster_does_not_say_which_votes_landed() {
    let keys = Keys::new();
    let identity = keys.primary.pubkey();
    let down = || Some("connection refused".to_string());

    let mut h = not_started(
        &keys,
        MemoryTowerStorage::new(),
        UnavailablePolicy::Exit,
        true,
    );
    h.votor_rpc_down = down();
    h.votor_genesis();
    match &h.seen.exit {
        Some(Err(exit @ NodeExit::ClusterLost { .. })) => {
            let sentence = exit.to_string();
            assert!(sentence.contains("getVotorLastVote"), "{sentence}");
            assert!(sentence.contains("connection refused"), "{sentence}");
        }
        other => panic!("expected ClusterLost, got {other:?}"),
    }
    assert_eq!(h.storage.holder(&identity), None, "the fence did not move");

    let mut h = not_started(
        &keys,
        MemoryTowerStorage::new(),
        UnavailablePolicy::SkipVote,
        true,
    );
    h.votor_rpc_down = down();
    h.votor_genesis();
    assert!(h.seen.exit.is_none(), "{:?}", h.seen.exit);
    assert_eq!(h.storage.holder(&identity), None, "the fence did not move");
    h.votor_rpc_down = None;
    h.replay(1, 0);
    assert_eq!(h.machine.status().role, Role::Voting);
    assert!(h.storage.holder(&identity).is_some());
    h.votor_block(1, 0);
    assert_eq!(notarized(&h), vec![1]);
}
