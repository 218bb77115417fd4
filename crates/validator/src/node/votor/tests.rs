//! One scenario per test, over the harness: blocks, certificates, time and
//! store answers given by hand.

use solana_signer::Signer;
use towerlock_storage::{MemoryTowerStorage, StorageError};

use super::harness::*;
use super::*;

#[test]
fn a_block_is_voted_for_only_after_its_history_is_stored() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    assert!(h.sent.is_empty(), "nothing leaves before the store");
    let request = h.take_store();
    assert_eq!(request.history.votes_cast[&1], vec![notar(1, 1)]);
    assert_eq!(request.history.voted_notar[&1], id(1));
    let receipt = h.store(&request.history);
    assert!(h.sent.is_empty());
    h.answer(request.op, receipt);
    assert_eq!(h.sent, vec![notar(1, 1)]);
    assert_eq!(h.machine.status().newest_vote, Some(notar(1, 1)));
    assert_eq!(
        h.stored_history().unwrap().votes_cast[&1],
        vec![notar(1, 1)]
    );
}

#[test]
fn no_vote_before_the_history_is_loaded() {
    let mut h = Harness::new(UnavailablePolicy::Exit);
    h.block(1, 1, None);
    h.tick_at(60_000);
    assert!(h.stores.is_empty() && h.sent.is_empty());
    assert_eq!(h.machine.status().phase, VotorPhase::AwaitingHistory);
    // Loaded: the block seen meanwhile is voted for.
    h.handle(Event::Loaded {
        history: None,
        landed: None,
    });
    h.store_ok();
    assert_eq!(h.sent, vec![notar(1, 1)]);
}

#[test]
fn the_chain_builds_on_the_block_notarized_before() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    h.store_ok();
    // Slot 2 on another block than ours in slot 1: not voted for.
    h.block(2, 2, Some(block(1, 9)));
    assert!(h.stores.is_empty());
    // Slot 3 on our block in slot 2 is not possible: slot 2 has no vote.
    h.block(3, 3, Some(block(2, 2)));
    assert!(h.stores.is_empty());
    assert_eq!(h.sent, vec![notar(1, 1)]);
}

#[test]
fn votes_decided_during_a_store_wait_for_the_next_one() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    h.block(2, 2, Some(block(1, 1)));
    h.block(3, 3, Some(block(2, 2)));
    assert_eq!(h.stores.len(), 1, "one store in flight");
    assert_eq!(h.machine.status().queued_votes, 2);
    h.store_ok();
    assert_eq!(h.sent, vec![notar(1, 1)]);
    let next = h.take_store();
    assert_eq!(next.history.voted.len(), 3, "the next store holds both");
    let receipt = h.store(&next.history);
    h.answer(next.op, receipt);
    assert_eq!(h.sent, vec![notar(1, 1), notar(2, 2), notar(3, 3)]);
}

#[test]
fn a_store_error_sends_nothing_and_the_exit_policy_exits() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    let request = h.take_store();
    h.answer(request.op, Err(unavailable()));
    assert!(h.sent.is_empty());
    assert!(matches!(h.exit, Some(VotorExit::StorageUnavailable { .. })));
    // Stopped: nothing more.
    h.block(2, 2, Some(block(1, 1)));
    assert!(h.stores.is_empty() && h.sent.is_empty());
}

#[test]
fn an_unknown_outcome_skips_the_vote_and_retries_after_renewing() {
    let mut h = Harness::new(UnavailablePolicy::SkipVote);
    h.handle(Event::Loaded {
        history: None,
        landed: None,
    });
    h.block(1, 1, None);
    let request = h.take_store();
    h.answer(request.op, Err(unavailable()));
    assert!(h.exit.is_none() && h.sent.is_empty());
    assert!(h.machine.status().skipping);
    // A vote decided now waits for a tick (the node renews the fence
    // before this store: its step tests show it).
    h.block(2, 2, Some(block(1, 1)));
    assert!(h.stores.is_empty());
    h.tick_at(1);
    let retry = h.take_store();
    assert_eq!(retry.history.voted.len(), 2);
    let receipt = h.store(&retry.history);
    h.answer(retry.op, receipt);
    // The vote whose store failed stays unsent; the next one leaves.
    assert_eq!(h.sent, vec![notar(2, 2)]);
    assert!(!h.machine.status().skipping);
}

#[test]
fn a_lost_fence_exits_without_sending() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    // Another instance takes the fence before the store lands.
    let rival = h.storage.new_instance();
    harness::ready(towerlock_storage::TowerStorage::takeover(
        &rival,
        &h.keypair.pubkey(),
    ))
    .unwrap();
    h.store_ok();
    assert!(h.sent.is_empty());
    assert!(matches!(h.exit, Some(VotorExit::LockLost { .. })));
}

#[test]
fn a_refused_store_exits_without_sending() {
    let mut h = Harness::new(UnavailablePolicy::SkipVote);
    h.handle(Event::Loaded {
        history: None,
        landed: None,
    });
    h.block(1, 1, None);
    let request = h.take_store();
    h.answer(
        request.op,
        Err(StorageError::Etcd {
            reason: "etcdserver: mvcc: database space exceeded".into(),
        }),
    );
    assert!(h.sent.is_empty());
    assert!(matches!(h.exit, Some(VotorExit::StorageFailed { .. })));
}

#[test]
fn a_receipt_for_another_history_does_not_release_the_vote() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    let request = h.take_store();
    // A receipt of this identity for a history with another newest slot.
    let mut other = request.history.clone();
    other.voted.insert(7);
    other.votes_cast.insert(7, vec![skip(7)]);
    let receipt = h.store(&other);
    h.answer(request.op, receipt);
    assert!(h.sent.is_empty());
    assert!(matches!(h.exit, Some(VotorExit::ReceiptMismatch(_))));
}

#[test]
fn a_receipt_for_the_same_slot_with_other_votes_does_not_release_the_vote() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    h.store_ok();
    h.certificate(Certificate::Notarize(block(1, 1)));
    let request = h.take_store();
    assert_eq!(
        request.history.votes_cast[&1],
        vec![notar(1, 1), finalize(1)]
    );
    // The history without the finalize vote: same newest slot, one vote less.
    let mut older = request.history.clone();
    older.its_over.clear();
    older.votes_cast.insert(1, vec![notar(1, 1)]);
    let receipt = h.store(&older);
    h.answer(request.op, receipt);
    assert_eq!(h.sent, vec![notar(1, 1)], "the finalize vote stays unsent");
    assert!(matches!(h.exit, Some(VotorExit::ReceiptMismatch(_))));
}

#[test]
fn a_receipt_for_another_identity_does_not_release_the_vote() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    let request = h.take_store();
    // Another identity, its fence on the same storage, the same votes.
    let other = Harness::on(
        solana_keypair::Keypair::new(),
        h.storage.new_instance(),
        UnavailablePolicy::Exit,
    );
    let mut history = request.history.clone();
    history.node_pubkey = other.keypair.pubkey();
    let receipt = other.store(&history);
    assert!(receipt.is_ok());
    h.answer(request.op, receipt);
    assert!(h.sent.is_empty());
    assert!(matches!(h.exit, Some(VotorExit::ReceiptMismatch(_))));
}

#[test]
fn an_answer_to_no_store_in_flight_is_ignored() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    let request = h.take_store();
    let receipt = h.store(&request.history);
    h.answer(OpId(request.op.0 + 7), receipt);
    assert!(h.sent.is_empty() && h.exit.is_none());
    // The right answer still releases it.
    let receipt = h.store(&request.history);
    h.answer(request.op, receipt);
    assert_eq!(h.sent, vec![notar(1, 1)]);
    // A repeated answer does nothing.
    let receipt = h.store(&request.history);
    h.answer(request.op, receipt);
    assert_eq!(h.sent, vec![notar(1, 1)]);
}

#[test]
fn a_timeout_skips_the_rest_of_the_window() {
    let mut h = Harness::voting();
    h.handle(Event::Slot(1));
    // Slot 1 times out at the start + Δtimeout + 2·Δblock.
    h.tick_at(1_799);
    assert!(h.stores.is_empty());
    h.tick_at(1_800);
    h.store_ok();
    assert_eq!(h.sent, vec![skip(1), skip(2), skip(3)]);
    // The block that comes late is not voted for.
    h.block(1, 1, None);
    h.tick_at(60_000);
    assert!(h.stores.is_empty());
}

#[test]
fn a_timeout_skips_only_the_slots_without_a_vote() {
    let mut h = Harness::voting();
    h.handle(Event::Slot(1));
    h.block(1, 1, None);
    h.store_ok();
    h.tick_at(2_200); // slot 2's deadline
    h.store_ok();
    assert_eq!(h.sent, vec![notar(1, 1), skip(2), skip(3)]);
}

#[test]
fn a_notarization_of_our_block_finalizes_it() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    h.store_ok();
    // Another block's certificate: nothing.
    h.certificate(Certificate::Notarize(block(1, 2)));
    assert!(h.stores.is_empty());
    h.certificate(Certificate::Notarize(block(1, 1)));
    h.store_ok();
    assert_eq!(h.sent, vec![notar(1, 1), finalize(1)]);
    // Again: no second finalize vote.
    h.certificate(Certificate::Notarize(block(1, 1)));
    assert!(h.stores.is_empty());
}

#[test]
fn the_certificate_may_come_before_the_block() {
    let mut h = Harness::voting();
    h.certificate(Certificate::Notarize(block(1, 1)));
    h.block(1, 1, None);
    h.store_ok();
    assert_eq!(h.sent, vec![notar(1, 1), finalize(1)]);
}

#[test]
fn no_finalize_in_a_skipped_slot() {
    let mut h = Harness::voting();
    h.handle(Event::Slot(1));
    h.tick_at(1_800);
    h.store_ok();
    h.block(1, 1, None);
    h.certificate(Certificate::Notarize(block(1, 1)));
    h.tick_at(60_000);
    assert!(h.stores.is_empty());
    assert_eq!(h.sent, vec![skip(1), skip(2), skip(3)]);
}

#[test]
fn no_finalize_after_a_skip_fallback() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    h.store_ok();
    // SafeToSkip: 45 % voted skip.
    h.handle(Event::Tally(SlotTally {
        slot: 1,
        skip: 4_500,
        notarize: vec![(id(1), 3_000)],
    }));
    h.store_ok();
    h.certificate(Certificate::Notarize(block(1, 1)));
    assert!(h.stores.is_empty());
    let fallback = VotePayload::SkipFallback {
        slot: 1,
        shred_version: 0,
    };
    // The window's other slots are skipped with it.
    assert_eq!(h.sent, vec![notar(1, 1), skip(2), skip(3), fallback]);
}

#[test]
fn safe_to_notar_casts_a_notarize_fallback_once() {
    let mut h = Harness::voting();
    h.handle(Event::Slot(1));
    h.tick_at(1_800);
    h.store_ok();
    let tally = SlotTally {
        slot: 1,
        skip: 2_000,
        notarize: vec![(id(5), 4_100)],
    };
    h.handle(Event::Tally(tally.clone()));
    h.store_ok();
    h.handle(Event::Tally(tally));
    assert!(h.stores.is_empty(), "once per block");
    let fallback = VotePayload::NotarFallback {
        block: block(1, 5),
        shred_version: 0,
    };
    assert_eq!(h.sent, vec![skip(1), skip(2), skip(3), fallback]);
}

#[test]
fn finalized_slots_get_no_more_votes() {
    let mut h = Harness::voting();
    h.certificate(Certificate::Finalize(5));
    h.block(5, 5, None);
    h.certificate(Certificate::Notarize(block(5, 5)));
    assert!(h.stores.is_empty());
    assert_eq!(h.machine.status().finalized_slot, 5);
    // The next window builds on the finalized block, now certified.
    h.certificate(Certificate::Skip(6));
    h.certificate(Certificate::Skip(7));
    h.block(8, 8, Some(block(5, 5)));
    h.store_ok();
    assert_eq!(h.sent, vec![notar(8, 8)]);
}

#[test]
fn a_second_block_in_a_slot_is_never_notarized() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    h.block(1, 2, None);
    h.store_ok();
    h.block(1, 2, None);
    h.certificate(Certificate::Notarize(block(1, 2)));
    assert!(h.stores.is_empty());
    assert_eq!(h.sent, vec![notar(1, 1)]);
    assert_eq!(h.machine.status().duplicate_blocks, 2);
}

/// What an earlier holder of the identity stored: slot 1 skipped, slot 2's
/// window notarized from a parent ready at 4, slot 5 notarized.
fn earlier_holder(storage: &MemoryTowerStorage, keypair: &solana_keypair::Keypair) {
    let mut h = Harness::on(
        keypair.insecure_clone(),
        storage.new_instance(),
        UnavailablePolicy::Exit,
    );
    h.handle(Event::Loaded {
        history: None,
        landed: None,
    });
    h.handle(Event::Slot(1));
    h.tick_at(1_800);
    h.store_ok();
    h.certificate(Certificate::Skip(1));
    h.certificate(Certificate::Skip(2));
    h.certificate(Certificate::Skip(3));
    h.block(4, 4, None);
    h.store_ok();
    h.block(5, 5, Some(block(4, 4)));
    h.store_ok();
    assert_eq!(
        h.sent,
        vec![skip(1), skip(2), skip(3), notar(4, 4), notar(5, 5)]
    );
}

#[test]
fn a_loaded_history_is_never_contradicted() {
    let keypair = solana_keypair::Keypair::new();
    let storage = MemoryTowerStorage::new();
    earlier_holder(&storage, &keypair);

    // The failover: a new instance takes the fence and loads the history.
    let mut h = Harness::on(keypair, storage, UnavailablePolicy::Exit);
    let history = h.stored_history();
    h.handle(Event::Loaded {
        history,
        landed: Some(5),
    });
    // Everything arrives again, and other blocks for the same slots.
    h.block(1, 1, None);
    h.block(4, 9, None);
    h.block(5, 9, Some(block(4, 9)));
    for certificate in [
        Certificate::Notarize(block(1, 1)),
        Certificate::Notarize(block(4, 9)),
        Certificate::Notarize(block(5, 9)),
        Certificate::Skip(1),
        Certificate::Skip(2),
        Certificate::Skip(3),
    ] {
        h.certificate(certificate);
    }
    h.handle(Event::Slot(5));
    h.tick_at(60_000);
    h.store_ok();
    // Only what the history allows: slot 4 and 5's notarized blocks finalize
    // once certified, slots 6 and 7 time out.
    h.certificate(Certificate::Notarize(block(4, 4)));
    h.store_ok();
    h.certificate(Certificate::Notarize(block(5, 5)));
    h.store_ok();
    assert_eq!(h.sent, vec![skip(6), skip(7), finalize(4), finalize(5)]);
    assert!(h.exit.is_none());
}

#[test]
fn a_history_older_than_the_landed_votes_refuses_to_start() {
    let keypair = solana_keypair::Keypair::new();
    let storage = MemoryTowerStorage::new();
    earlier_holder(&storage, &keypair);
    let history = Harness::on(
        keypair.insecure_clone(),
        storage.new_instance(),
        UnavailablePolicy::Exit,
    )
    .stored_history();

    let mut h = Harness::on(
        keypair.insecure_clone(),
        storage.new_instance(),
        UnavailablePolicy::Exit,
    );
    h.handle(Event::Loaded {
        history: history.clone(),
        landed: Some(9),
    });
    assert!(matches!(
        h.exit,
        Some(VotorExit::HistoryOlderThanLanded {
            covered: Some(5),
            landed: 9,
            ..
        })
    ));
    h.block(8, 8, None);
    assert!(h.stores.is_empty() && h.sent.is_empty());

    // No history at all, yet the cluster shows votes: refused too.
    let mut h = Harness::on(
        keypair.insecure_clone(),
        storage.new_instance(),
        UnavailablePolicy::Exit,
    );
    h.handle(Event::Loaded {
        history: None,
        landed: Some(3),
    });
    assert!(matches!(
        h.exit,
        Some(VotorExit::HistoryOlderThanLanded { covered: None, .. })
    ));

    // Another node's history: refused.
    let mut h = Harness::voting();
    h.handle(Event::Loaded {
        history,
        landed: None,
    });
    assert!(matches!(h.exit, Some(VotorExit::WrongHistory { .. })));
}

#[test]
fn a_reload_drops_the_store_in_flight() {
    let mut h = Harness::voting();
    h.block(1, 1, None);
    let request = h.take_store();
    h.handle(Event::Loaded {
        history: None,
        landed: None,
    });
    // The old store's answer releases nothing; the block is voted again
    // from the loaded (empty) history.
    let receipt = h.store(&request.history);
    h.answer(request.op, receipt);
    assert!(h.sent.is_empty());
    h.store_ok();
    assert_eq!(h.sent, vec![notar(1, 1)]);
}
