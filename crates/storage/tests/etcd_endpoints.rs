//! Every etcd endpoint stays usable: one that is down when the storage
//! connects is used once it is back, and the loss of the endpoint in use
//! moves the next request to another (three-member etcd, TLS for clients
//! and peers).
//!
//! A store without answer is followed by a renewal of the fence before the
//! next write, as the node does.

use std::net::SocketAddr;
use std::time::Duration;

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_storage::{EtcdTowerStorage, FenceToken, StorageError, TowerStorage};
use towerlock_testsupport::lab::{wait_until, EtcdCluster, Fault, FaultProxy};
use towerlock_testsupport::Must;
use towerlock_tower::{Recorded, SavedTower, Tower};

/// Bound of every wait (elections and restarts on a loaded machine).
const WAIT: Duration = Duration::from_secs(30);
/// The request deadline of the storage under test.
const DEADLINE: Duration = Duration::from_millis(1000);

/// A node's tower, its key and the fence it holds.
struct Node {
    storage: EtcdTowerStorage,
    keypair: Keypair,
    tower: Tower,
    token: FenceToken,
}

impl Node {
    /// Connects and takes the fence (retried while etcd elects a leader:
    /// a takeover may be sent again).
    async fn start(config: &towerlock_etcd::EtcdConfig) -> Self {
        let storage = EtcdTowerStorage::connect(config).await.unwrap();
        let keypair = Keypair::new();
        let identity = keypair.pubkey();
        let token = take(&storage, &identity).await;
        Self {
            storage,
            tower: Tower::new(identity),
            keypair,
            token,
        }
    }

    /// Votes on `slot` and stores the tower as the node does: after a store
    /// or a renewal without answer, the fence is renewed before the next
    /// write. Panics unless it is stored within [`WAIT`].
    async fn vote_and_store(&mut self, slot: u64) {
        let recorded = self.tower.record_vote(
            slot,
            Hash::new_from_array([slot as u8; 32]),
            Hash::default(),
            1,
        );
        assert!(matches!(recorded, Recorded::Vote(_)));
        let saved = SavedTower::new(&self.tower, &self.keypair).unwrap();
        let mut renew = false;
        let mut last = None;
        let what = format!("the store of vote {slot}");
        let stored = wait_until(WAIT, &what, async || {
            if renew {
                match self.renew().await {
                    Ok(()) => renew = false,
                    Err(err) => {
                        last = Some(err);
                        return Ok(None);
                    }
                }
            }
            match self.storage.store(&self.token, &saved).await {
                Ok(stored) => Ok(Some(stored)),
                Err(err) if err.is_unavailable() => {
                    renew = true;
                    last = Some(err);
                    Ok(None)
                }
                Err(err) => panic!("store of vote {slot}: {err}"),
            }
        })
        .await
        .unwrap_or_else(|err| panic!("{err}; last error: {last:?}"));
        assert_eq!(stored.last_vote(), Some(slot));
    }

    /// Renews the fence; `Err` only for `Unavailable` (try again).
    async fn renew(&mut self) -> Result<(), StorageError> {
        match self.storage.renew(&self.token).await {
            Ok(token) => self.token = token,
            Err(err) if err.is_unavailable() => return Err(err),
            // An earlier renewal without answer did land: the fence is still
            // ours, under a revision we did not learn. Take it again (the
            // tower is verified first); anyone else holding it is a failure.
            Err(StorageError::LockLost { by, .. }) if *by == *self.storage.instance() => {
                self.token = take(&self.storage, &self.token.identity).await;
            }
            Err(err) => panic!("renew: {err}"),
        }
        Ok(())
    }

    /// The last vote of the tower stored in etcd.
    async fn stored_vote(&self) -> Option<u64> {
        let identity = self.token.identity;
        let tower = wait_until(WAIT, "a read of the stored tower", async || {
            match self.storage.load_unfenced(&identity).await {
                Ok(tower) => Ok(Some(tower)),
                Err(err) if err.is_unavailable() => Ok(None),
                Err(err) => panic!("read back: {err}"),
            }
        })
        .await
        .must();
        tower.tower().last_voted_slot()
    }
}

async fn take(storage: &EtcdTowerStorage, identity: &solana_pubkey::Pubkey) -> FenceToken {
    let mut last = None;
    wait_until(WAIT, "a takeover", async || {
        match storage.takeover(identity).await {
            Ok(taken) => Ok(Some(taken.token)),
            Err(err) if err.is_unavailable() || matches!(err, StorageError::Busy { .. }) => {
                last = Some(err);
                Ok(None)
            }
            Err(err) => panic!("takeover: {err}"),
        }
    })
    .await
    .unwrap_or_else(|err| panic!("{err}; last error: {last:?}"))
}

/// Member A is down when the node connects; it comes back, member B is
/// lost, and the node keeps storing through A and C. With C lost too, A
/// alone is not a quorum: stores are `Unavailable`.
#[tokio::test]
async fn a_member_down_at_start_is_used_once_it_is_back() {
    const A: usize = 0;
    const B: usize = 1;
    const C: usize = 2;
    let mut cluster = EtcdCluster::start(3).await.must();
    let endpoints = cluster.endpoints();
    cluster.stop(A).await.must();

    let config = cluster.config().with_timeout(DEADLINE);
    let mut node = Node::start(&config).await;
    assert_ne!(node.storage.endpoint(), endpoints[A]);
    node.vote_and_store(1).await;

    cluster.restart(A).await.must();
    cluster.kill(B);
    for slot in 2..=4 {
        node.vote_and_store(slot).await;
    }
    assert_ne!(node.storage.endpoint(), endpoints[B]);
    assert_eq!(node.stored_vote().await, Some(4));

    cluster.kill(C);
    let recorded = node
        .tower
        .record_vote(5, Hash::default(), Hash::default(), 1);
    assert!(matches!(recorded, Recorded::Vote(_)));
    let saved = SavedTower::new(&node.tower, &node.keypair).unwrap();
    let err = node.storage.store(&node.token, &saved).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

/// The node reaches the members through a proxy each. The link to A is cut
/// when the node connects; it heals, then the links to B and C are cut (the
/// members themselves keep their quorum): only A can carry the stores, and
/// it does.
#[tokio::test]
async fn an_endpoint_cut_at_start_alone_carries_the_stores_later() {
    let cluster = EtcdCluster::start(3).await.must();
    let mut proxies = Vec::new();
    for (name, endpoint) in ["a", "b", "c"].iter().zip(cluster.endpoints()) {
        let upstream: SocketAddr = endpoint.parse().unwrap();
        proxies.push(FaultProxy::start(name, upstream).await.must());
    }
    let [a, b, c] = proxies.as_slice() else {
        unreachable!("three proxies")
    };
    let through: Vec<String> = proxies.iter().map(|p| p.addr().to_string()).collect();
    a.set(Fault::Partition);

    let config = cluster.config_for(through.clone()).with_timeout(DEADLINE);
    let mut node = Node::start(&config).await;
    assert_ne!(node.storage.endpoint(), through[0]);
    node.vote_and_store(1).await;

    a.heal();
    b.set(Fault::Partition);
    c.set(Fault::Partition);
    let before = a.stats().forwarded;
    for slot in 2..=3 {
        node.vote_and_store(slot).await;
    }
    assert_eq!(node.storage.endpoint(), through[0]);
    assert!(a.stats().forwarded > before, "{:?}", a.stats());
    assert_eq!(node.stored_vote().await, Some(3));
}
