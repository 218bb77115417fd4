//! The fence against a real etcd (mutual TLS), under concurrency and faults.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_etcd::etcd_client::{EventType, WatchOptions};
use towerlock_storage::{EtcdTowerStorage, StorageError, TowerStorage};
use towerlock_testsupport::lab::wait_until;
use towerlock_testsupport::EtcdProcess;
use towerlock_tower::{
    vote_history::VotePayload, Recorded, SavedTower, SavedVoteHistory, Tower, VoteHistory,
};

fn vote(tower: &mut Tower, slot: u64) {
    let recorded = tower.record_vote(
        slot,
        Hash::new_from_array([slot as u8; 32]),
        Hash::default(),
        1,
    );
    assert!(matches!(recorded, Recorded::Vote(_)));
}

#[tokio::test]
async fn takeover_fences_a_storing_instance_at_once() {
    let etcd = EtcdProcess::start().await;
    let keypair = Arc::new(Keypair::new());
    let identity = keypair.pubkey();
    let a = EtcdTowerStorage::connect(&etcd.config()).await.unwrap();
    let b = EtcdTowerStorage::connect(&etcd.config()).await.unwrap();
    let token_a = a.takeover(&identity).await.unwrap().token;

    // A stores as fast as it can; B takes over while it does.
    let (first_store, first_stored) = tokio::sync::oneshot::channel();
    let writer = {
        let keypair = keypair.clone();
        tokio::spawn(async move {
            let mut tower = Tower::new(keypair.pubkey());
            let mut successes = Vec::new();
            let mut first_store = Some(first_store);
            for slot in 1.. {
                vote(&mut tower, slot);
                let saved = SavedTower::new(&tower, &keypair).unwrap();
                match a.store(&token_a, &saved).await {
                    Ok(stored) => {
                        successes.push((stored.revision(), slot));
                        if let Some(tx) = first_store.take() {
                            let _ = tx.send(());
                        }
                    }
                    Err(err) => return (successes, err, a.instance().clone()),
                }
            }
            unreachable!()
        })
    };
    first_stored.await.unwrap();
    let taken = b.takeover(&identity).await.unwrap();
    let (successes, err, a_instance) = writer.await.unwrap();

    match err {
        StorageError::LockLost { by, identity: lost } => {
            assert_eq!(*by, *b.instance(), "LockLost names B");
            assert_eq!(lost, identity);
        }
        other => panic!("expected LockLost, got {other:?}"),
    }
    assert_eq!(taken.displaced.as_ref(), Some(&a_instance));
    // No store of A's landed after B's takeover.
    let (last_revision, last_slot) = *successes.last().unwrap();
    assert!(successes.iter().all(|(rev, _)| *rev < taken.token.revision));
    // B read A's last stored tower.
    let read = taken.tower.expect("A stored a tower");
    assert_eq!(read.tower().last_voted_slot(), Some(last_slot));

    // Independent check on etcd: the tower key was last written by A's last
    // successful store, before the takeover.
    let mut client = etcd.client().await;
    let response = client.get(format!("{identity}/tower"), None).await.unwrap();
    let kv = response.kvs().first().unwrap();
    assert_eq!(kv.mod_revision(), last_revision);
    assert!(kv.mod_revision() < taken.token.revision);
    assert_eq!(kv.value(), read.to_bytes().as_slice());
}

/// The takeover's compare covers the vote history too: while the holder
/// stores only vote histories as fast as it can, a new holder reads exactly
/// the last one that landed, and none lands after the fence moved. (Without
/// the history in the compare, a store between the takeover's read and its
/// transaction would be missing from what the new holder read.)
#[tokio::test]
async fn takeover_reads_the_last_vote_history_a_storing_holder_landed() {
    let etcd = EtcdProcess::start().await;
    let keypair = Arc::new(Keypair::new());
    let identity = keypair.pubkey();
    let a = EtcdTowerStorage::connect(&etcd.config()).await.unwrap();
    let b = EtcdTowerStorage::connect(&etcd.config()).await.unwrap();
    for round in 0..5 {
        let token_a = a.takeover(&identity).await.unwrap().token;
        let (first_store, first_stored) = tokio::sync::oneshot::channel();
        let writer = {
            let (a, keypair) = (a.clone(), keypair.clone());
            tokio::spawn(async move {
                let mut history = VoteHistory::new(keypair.pubkey(), 0);
                let mut last = None;
                let mut first_store = Some(first_store);
                for slot in (round * 10_000 + 1).. {
                    history.voted.insert(slot);
                    history.skipped.insert(slot);
                    history.votes_cast.insert(
                        slot,
                        vec![VotePayload::Skip {
                            slot,
                            shred_version: 0,
                        }],
                    );
                    let saved = SavedVoteHistory::new(&history, &keypair).unwrap();
                    match a.store_vote_history(&token_a, &saved).await {
                        Ok(stored) => {
                            last = Some((stored.revision(), saved));
                            if let Some(tx) = first_store.take() {
                                let _ = tx.send(());
                            }
                        }
                        Err(StorageError::LockLost { .. }) => return last.unwrap(),
                        Err(other) => panic!("unexpected store error: {other}"),
                    }
                }
                unreachable!()
            })
        };
        first_stored.await.unwrap();
        let taken = b.takeover(&identity).await.unwrap();
        let (last_revision, last_saved) = writer.await.unwrap();
        assert!(last_revision < taken.token.revision);
        assert_eq!(
            taken.vote_history.as_ref(),
            Some(&last_saved),
            "round {round}: the new holder read the last history A landed"
        );
    }
}

/// Who wrote what, as each instance saw its own successful stores.
type StoreLog = Arc<Mutex<Vec<(i64, u64, usize)>>>;

#[tokio::test]
async fn racing_instances_leave_one_linear_history() {
    let etcd = EtcdProcess::start().await;
    let keypair = Arc::new(Keypair::new());
    let identity = keypair.pubkey();

    // An independent witness: every put of the tower key, in revision order.
    let mut watcher = etcd.client().await;
    let mut events = watcher
        .watch(format!("{identity}/tower"), Some(WatchOptions::new()))
        .await
        .unwrap();

    let log: StoreLog = Arc::default();
    let mut racers = Vec::new();
    for racer in 0..2usize {
        let storage = EtcdTowerStorage::connect(&etcd.config()).await.unwrap();
        let keypair = keypair.clone();
        let log = log.clone();
        racers.push(tokio::spawn(async move {
            for _round in 0..15 {
                // Every takeover succeeds (a refused one would panic here).
                let taken = storage.takeover(&keypair.pubkey()).await.unwrap();
                // Continue from whatever tower was there: the protocol's
                // promise is that it is the latest one.
                let mut tower = taken
                    .tower
                    .map(SavedTower::into_tower)
                    .unwrap_or_else(|| Tower::new(keypair.pubkey()));
                for _ in 0..5 {
                    let next = tower.last_voted_slot().unwrap_or(0) + 1;
                    vote(&mut tower, next);
                    let saved = SavedTower::new(&tower, &keypair).unwrap();
                    match storage.store(&taken.token, &saved).await {
                        Ok(stored) => log.lock().unwrap().push((stored.revision(), next, racer)),
                        Err(StorageError::LockLost { .. }) => break,
                        Err(other) => panic!("racer {racer}: {other}"),
                    }
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for racer in racers {
        racer.await.unwrap();
    }
    let mut stores = log.lock().unwrap().clone();
    stores.sort();
    assert!(
        stores.len() >= 15,
        "too few stores succeeded: {}",
        stores.len()
    );
    assert!(
        stores.iter().any(|s| s.2 == 0) && stores.iter().any(|s| s.2 == 1),
        "both racers stored"
    );

    // The witness saw exactly the successful stores, and their towers form
    // one chain: each one's last vote is newer than the one before.
    let mut seen = Vec::new();
    while seen.len() < stores.len() {
        let response = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("watch events arrive")
            .unwrap()
            .unwrap();
        for event in response.events() {
            assert_eq!(event.event_type(), EventType::Put);
            let kv = event.kv().unwrap();
            let saved = SavedTower::from_bytes(kv.value(), &identity).unwrap();
            seen.push((kv.mod_revision(), saved.tower().last_voted_slot().unwrap()));
        }
    }
    let expected: Vec<_> = stores.iter().map(|(rev, slot, _)| (*rev, *slot)).collect();
    assert_eq!(
        seen, expected,
        "etcd history equals the acknowledged stores"
    );
    for pair in seen.windows(2) {
        assert!(pair[1].1 > pair[0].1, "history went back: {pair:?}");
    }
}

#[tokio::test]
async fn etcd_down_is_unavailable_and_the_token_survives_a_restart() {
    let mut etcd = EtcdProcess::start().await;
    let keypair = Keypair::new();
    let identity = keypair.pubkey();
    let deadline = Duration::from_millis(800);
    let config = etcd.config().with_timeout(deadline);
    let a = EtcdTowerStorage::connect(&config).await.unwrap();
    let token = a.takeover(&identity).await.unwrap().token;
    let mut tower = Tower::new(identity);
    vote(&mut tower, 1);
    let _stored = a
        .store(&token, &SavedTower::new(&tower, &keypair).unwrap())
        .await
        .unwrap();

    etcd.kill();
    vote(&mut tower, 2);
    let saved = SavedTower::new(&tower, &keypair).unwrap();
    let started = Instant::now();
    let err = a.store(&token, &saved).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    // Bounded by the deadline (with slack for a loaded machine).
    assert!(started.elapsed() < deadline + Duration::from_secs(2));

    etcd.restart().await;
    // The fence is persisted in etcd: the same token works once it is back.
    let mut last = None;
    let stored = wait_until(
        Duration::from_secs(20),
        "a store after the restart",
        async || match a.store(&token, &saved).await {
            Ok(stored) => Ok(Some(stored)),
            Err(err) if err.is_unavailable() => {
                last = Some(err);
                Ok(None)
            }
            Err(err) => panic!("store after restart: {err}"),
        },
    )
    .await
    .unwrap_or_else(|err| panic!("{err}: {last:?}"));
    assert!(stored.revision() > token.revision);

    let b = EtcdTowerStorage::connect(&config).await.unwrap();
    let taken = b.takeover(&identity).await.unwrap();
    assert_eq!(taken.tower.unwrap().tower().last_voted_slot(), Some(2));
    vote(&mut tower, 3);
    let err = a
        .store(&token, &SavedTower::new(&tower, &keypair).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::LockLost { .. }), "{err:?}");
}

/// A store whose outcome was unknown can still be applied later (etcd applies
/// a proposal the client gave up on, e.g. forwarded by a follower). After the
/// holder renews its fence, that stale transaction, replayed byte for byte
/// through a second connection once a newer store committed, fails: the
/// tower in etcd keeps the newer vote.
#[tokio::test]
async fn a_stale_store_replayed_after_a_renewal_fails() {
    let etcd = EtcdProcess::start().await;
    let keypair = Keypair::new();
    let identity = keypair.pubkey();
    let a = EtcdTowerStorage::connect(&etcd.config()).await.unwrap();
    let token = a.takeover(&identity).await.unwrap().token;
    let mut tower = Tower::new(identity);
    vote(&mut tower, 1);
    let stale = SavedTower::new(&tower, &keypair).unwrap();
    // The store of vote 1 "timed out": the holder renews before writing again.
    let renewed = a.renew(&token).await.unwrap();
    vote(&mut tower, 2);
    let _stored = a
        .store(&renewed, &SavedTower::new(&tower, &keypair).unwrap())
        .await
        .unwrap();

    // The stale transaction lands now, through another connection.
    let second = a.with_client(etcd.client().await);
    let err = second.store(&token, &stale).await.unwrap_err();
    assert!(matches!(err, StorageError::LockLost { .. }), "{err:?}");
    let kept = a.load_unfenced(&identity).await.unwrap();
    assert_eq!(kept.tower().last_voted_slot(), Some(2));

    // Without the renewal the same replay would have been accepted: the
    // hole this closes.
    let _stored = a.store(&renewed, &stale).await.unwrap();
    assert_eq!(
        a.load_unfenced(&identity)
            .await
            .unwrap()
            .tower()
            .last_voted_slot(),
        Some(1),
        "a store under a live token overwrites a newer tower"
    );
}

/// An unreadable last leader slot would let a new holder produce slots an
/// earlier holder already produced: the takeover refuses it, as a corrupt
/// tower, before the fence moves.
#[tokio::test]
async fn an_unreadable_leader_slot_stops_the_takeover_before_the_fence_moves() {
    let etcd = EtcdProcess::start().await;
    let identity = Keypair::new().pubkey();
    let a = EtcdTowerStorage::connect(&etcd.config()).await.unwrap();
    let mut client = etcd.client().await;
    client
        .put(format!("{identity}/leader"), "not a slot", None)
        .await
        .unwrap();
    let err = a.takeover(&identity).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::Corrupt { reason, .. } if reason.contains("leader slot")),
        "{err:?}"
    );
    assert_eq!(
        a.holder(&identity).await.unwrap(),
        None,
        "the fence did not move"
    );
    // A number is read as the last fenced slot.
    client
        .put(format!("{identity}/leader"), "104", None)
        .await
        .unwrap();
    assert_eq!(
        a.takeover(&identity).await.unwrap().last_leader_slot,
        Some(104)
    );
}

/// Records of a newer release (the fence holder's, the last leader slot)
/// stop the takeover before the fence moves, with a sentence that says
/// to upgrade; records of the previous format (no version) are read.
#[tokio::test]
async fn records_of_a_newer_release_are_refused_and_older_ones_read() {
    let etcd = EtcdProcess::start().await;
    let identity = Keypair::new().pubkey();
    let a = EtcdTowerStorage::connect(&etcd.config()).await.unwrap();
    let mut client = etcd.client().await;
    let newer_holder = r#"{"format":9,"id":"00000000000000000000000000000001","lease":"?"}"#;
    client
        .put(format!("{identity}/instance"), newer_holder, None)
        .await
        .unwrap();
    let err = a.takeover(&identity).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::NewerRecord { location, .. } if location.ends_with("/instance")),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade this node"), "{err}");
    let still = client
        .get(format!("{identity}/instance"), None)
        .await
        .unwrap();
    assert_eq!(
        still.kvs()[0].value(),
        newer_holder.as_bytes(),
        "left in place"
    );

    // The previous release's records: an instance record without a format
    // and a bare decimal leader slot.
    let previous = r#"{"id":"00000000000000000000000000000002","host":"old","pid":7,"version":"0.1.0","started_at_ms":1}"#;
    client
        .put(format!("{identity}/instance"), previous, None)
        .await
        .unwrap();
    client
        .put(format!("{identity}/leader"), "104", None)
        .await
        .unwrap();
    let taken = a.takeover(&identity).await.unwrap();
    assert_eq!(taken.displaced.map(|d| d.host), Some("old".to_string()));
    assert_eq!(taken.last_leader_slot, Some(104));

    // A newer leader record stops the next takeover the same way.
    client
        .put(
            format!("{identity}/leader"),
            r#"{"format":3,"slot":110}"#,
            None,
        )
        .await
        .unwrap();
    let err = a.takeover(&identity).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::NewerRecord { location, .. } if location.ends_with("/leader")),
        "{err:?}"
    );
}
