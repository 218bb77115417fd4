//! A three-member etcd on loopback (TLS for clients and peers) keeps
//! answering with one member down, the leader included, and takes a
//! restarted member back.

use std::time::Duration;

use towerlock_lab::{wait_until, EtcdCluster, LabError};

const WAIT: Duration = Duration::from_secs(30);

/// Puts `key` through a client naming every member; retried until the
/// cluster answers (a leader election may be under way).
async fn put_and_get(cluster: &EtcdCluster, key: &str) -> Result<(), LabError> {
    wait_until(WAIT, "the cluster to answer a put and a get", async || {
        let Ok(mut client) = cluster.client().await else {
            return Ok(None);
        };
        let put = tokio::time::timeout(Duration::from_secs(3), client.put(key, "v", None)).await;
        if !matches!(put, Ok(Ok(_))) {
            return Ok(None);
        }
        let got = client.get(key, None).await.ok();
        Ok(got.filter(|r| r.kvs().len() == 1).map(drop))
    })
    .await
}

#[tokio::test]
async fn answers_with_one_member_down_and_takes_it_back() {
    let mut cluster = EtcdCluster::start(3).await.unwrap();
    put_and_get(&cluster, "before").await.unwrap();

    let leader = wait_until(WAIT, "a leader", async || Ok(cluster.leader().await))
        .await
        .unwrap();
    cluster.kill(leader);
    put_and_get(&cluster, "leader-killed").await.unwrap();
    let next = wait_until(WAIT, "a new leader", async || Ok(cluster.leader().await))
        .await
        .unwrap();
    assert_ne!(next, leader);

    cluster.restart(leader).await.unwrap();
    let follower = (0..3).find(|i| *i != next).unwrap();
    cluster.stop(follower).await.unwrap();
    put_and_get(&cluster, "follower-stopped").await.unwrap();
    cluster.restart(follower).await.unwrap();
    for index in 0..3 {
        assert!(cluster.is_running(index));
    }
    put_and_get(&cluster, "all-back").await.unwrap();
}
