//! One suite, run against every backend: memory, files, and a real etcd with
//! mutual TLS (spawned by the test).

use async_trait::async_trait;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use towerlock_storage::{
    vote_history_file_name, EtcdTowerStorage, FileTowerStorage, MemoryTowerStorage, StorageError,
    TowerStorage,
};
use towerlock_testsupport::{vote_history::notarized_history, EtcdProcess};
use towerlock_tower::{SavedTower, Tower};

/// A backend under test: hands out instances on the same data, and can plant
/// or read raw bytes behind the storage's back.
#[async_trait]
trait Backend {
    type S: TowerStorage;
    async fn instance(&self) -> Self::S;
    /// Whether two instances may both take the fence (files allow one
    /// process per host; the second is refused instead).
    fn fences_across_instances(&self) -> bool;
    async fn plant(&self, identity: &Pubkey, bytes: Vec<u8>);
    async fn raw(&self, identity: &Pubkey) -> Option<Vec<u8>>;
    /// The same for the vote history.
    async fn plant_history(&self, identity: &Pubkey, bytes: Vec<u8>);
    async fn raw_history(&self, identity: &Pubkey) -> Option<Vec<u8>>;
}

fn tower_with_votes(keypair: &Keypair, slots: impl IntoIterator<Item = u64>) -> SavedTower {
    let mut tower = Tower::new(keypair.pubkey());
    for slot in slots {
        let _ = tower.record_vote(
            slot,
            Hash::new_from_array([slot as u8; 32]),
            Hash::default(),
            1,
        );
    }
    SavedTower::new(&tower, keypair).unwrap()
}

async fn round_trip<B: Backend>(backend: &B) {
    let keypair = Keypair::new();
    let a = backend.instance().await;
    let first = a.takeover(&keypair.pubkey()).await.unwrap();
    assert!(first.tower.is_none(), "no tower yet");
    assert!(matches!(
        a.load_unfenced(&keypair.pubkey()).await,
        Err(StorageError::NotFound { .. })
    ));

    let saved = tower_with_votes(&keypair, 1..10);
    let _stored = a.store(&first.token, &saved).await.unwrap();
    let loaded = a.load_unfenced(&keypair.pubkey()).await.unwrap();
    assert_eq!(loaded.tower(), saved.tower());
    assert_eq!(backend.raw(&keypair.pubkey()).await, Some(saved.to_bytes()));

    let again = a.takeover(&keypair.pubkey()).await.unwrap();
    assert_eq!(again.tower.unwrap().tower(), saved.tower());
    assert!(again.token.revision > first.token.revision);
}

async fn stale_token_is_fenced<B: Backend>(backend: &B) {
    let keypair = Keypair::new();
    let a = backend.instance().await;
    let old = a.takeover(&keypair.pubkey()).await.unwrap().token;
    let new = a.takeover(&keypair.pubkey()).await.unwrap().token;
    let saved = tower_with_votes(&keypair, 1..3);
    let err = a.store(&old, &saved).await.unwrap_err();
    assert!(matches!(err, StorageError::LockLost { .. }), "{err:?}");
    assert!(
        backend.raw(&keypair.pubkey()).await.is_none(),
        "nothing written"
    );
    let err = a.fence_leader_slot(&old, 5).await.unwrap_err();
    assert!(matches!(err, StorageError::LockLost { .. }), "{err:?}");
    let _stored = a.store(&new, &saved).await.unwrap();
    let _stored = a.fence_leader_slot(&new, 5).await.unwrap();
}

async fn takeover_by_another_instance_fences_the_first<B: Backend>(backend: &B) {
    let keypair = Keypair::new();
    let a = backend.instance().await;
    let b = backend.instance().await;
    let token_a = a.takeover(&keypair.pubkey()).await.unwrap().token;
    let stored = a
        .store(&token_a, &tower_with_votes(&keypair, 1..5))
        .await
        .unwrap();
    // The receipts say what was stored, for whom: a vote can only be built
    // from the receipt of a tower that contains it.
    assert_eq!(
        (stored.identity(), stored.last_vote()),
        (keypair.pubkey(), Some(4))
    );
    let fenced = a.fence_leader_slot(&token_a, 7).await.unwrap();
    assert_eq!((fenced.identity(), fenced.slot()), (keypair.pubkey(), 7));
    assert!(fenced.revision() > stored.revision());

    let taken = b.takeover(&keypair.pubkey()).await.unwrap();
    assert_eq!(taken.displaced.as_ref(), Some(a.instance()));
    // B learns, atomically with the fence, which leader slots A produced.
    assert_eq!(taken.last_leader_slot, Some(7));
    assert_eq!(
        taken.tower.as_ref().unwrap().tower().last_voted_slot(),
        Some(4)
    );

    let late = tower_with_votes(&keypair, 1..6);
    match a.store(&token_a, &late).await {
        Err(StorageError::LockLost { by, .. }) => assert_eq!(*by, *b.instance()),
        other => panic!("expected LockLost, got {other:?}"),
    }
    assert!(matches!(
        a.fence_leader_slot(&token_a, 9).await,
        Err(StorageError::LockLost { .. })
    ));
    let by_b = tower_with_votes(&keypair, 1..7);
    let _stored = b.store(&taken.token, &by_b).await.unwrap();
    assert_eq!(backend.raw(&keypair.pubkey()).await, Some(by_b.to_bytes()));
}

async fn second_instance_is_refused<B: Backend>(backend: &B) {
    let keypair = Keypair::new();
    let a = backend.instance().await;
    let b = backend.instance().await;
    let _token = a.takeover(&keypair.pubkey()).await.unwrap();
    let err = b.takeover(&keypair.pubkey()).await.unwrap_err();
    assert!(matches!(err, StorageError::Locked { .. }), "{err:?}");
}

async fn another_identitys_tower_is_not_stored<B: Backend>(backend: &B) {
    let keypair = Keypair::new();
    let a = backend.instance().await;
    let token = a.takeover(&keypair.pubkey()).await.unwrap().token;
    let other = tower_with_votes(&Keypair::new(), 1..3);
    let err = a.store(&token, &other).await.unwrap_err();
    assert!(
        matches!(err, StorageError::IdentityMismatch { .. }),
        "{err:?}"
    );
    assert!(backend.raw(&keypair.pubkey()).await.is_none());
}

async fn bad_towers_are_refused_and_kept<B: Backend>(backend: &B) {
    let keypair = Keypair::new();
    let identity = keypair.pubkey();
    let a = backend.instance().await;

    let corrupt = b"not a tower at all".to_vec();
    backend.plant(&identity, corrupt.clone()).await;
    let err = a.takeover(&identity).await.unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");
    assert_eq!(backend.raw(&identity).await, Some(corrupt));

    // A refused takeover does not displace the current holder.
    if backend.fences_across_instances() {
        let holder = backend.instance().await;
        backend
            .plant(&identity, tower_with_votes(&keypair, 1..3).to_bytes())
            .await;
        let token = holder.takeover(&identity).await.unwrap().token;
        backend.plant(&identity, b"garbage".to_vec()).await;
        let err = a.takeover(&identity).await.unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");
        let _stored = holder
            .fence_leader_slot(&token, 1)
            .await
            .expect("the holder still holds the fence");
    }

    let foreign_key = Keypair::new();
    let foreign = tower_with_votes(&foreign_key, 1..4).to_bytes();
    backend.plant(&identity, foreign.clone()).await;
    match a.takeover(&identity).await {
        Err(StorageError::WrongTower { found, .. }) => assert_eq!(found, foreign_key.pubkey()),
        other => panic!("expected WrongTower, got {other:?}"),
    }
    assert!(matches!(
        a.load_unfenced(&identity).await,
        Err(StorageError::WrongTower { .. })
    ));
    assert_eq!(backend.raw(&identity).await, Some(foreign));

    let mut tampered = tower_with_votes(&keypair, 1..4).to_bytes();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    backend.plant(&identity, tampered.clone()).await;
    let err = a.takeover(&identity).await.unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidSignature { .. }),
        "{err:?}"
    );
    assert_eq!(backend.raw(&identity).await, Some(tampered));
}

/// After a write whose outcome is unknown the holder renews its fence: the
/// new token works, the old one (and any write still in flight under it)
/// is void, and a token that lost the fence cannot renew.
async fn renewal_voids_the_old_token<B: Backend>(backend: &B) {
    let keypair = Keypair::new();
    let a = backend.instance().await;
    let old = a.takeover(&keypair.pubkey()).await.unwrap().token;
    let _stored = a
        .store(&old, &tower_with_votes(&keypair, 1..3))
        .await
        .unwrap();
    let new = a.renew(&old).await.unwrap();
    assert!(new.revision > old.revision);
    let late = a
        .store(&old, &tower_with_votes(&keypair, 1..2))
        .await
        .unwrap_err();
    assert!(matches!(late, StorageError::LockLost { .. }), "{late:?}");
    let stored = a
        .store(&new, &tower_with_votes(&keypair, 1..4))
        .await
        .unwrap();
    assert_eq!(stored.last_vote(), Some(3));
    let again = a.renew(&old).await.unwrap_err();
    assert!(matches!(again, StorageError::LockLost { .. }), "{again:?}");
}

/// An orderly exit releases the fence: the next instance finds nobody
/// holding it and the tower as it was; the released token writes nothing,
/// and a token that no longer holds the fence releases nothing.
async fn release_leaves_the_tower_and_nobody_holding_the_fence<B: Backend>(backend: &B) {
    let keypair = Keypair::new();
    let a = backend.instance().await;
    let token = a.takeover(&keypair.pubkey()).await.unwrap().token;
    let _stored = a
        .store(&token, &tower_with_votes(&keypair, 1..5))
        .await
        .unwrap();
    assert!(a.release(&token).await.unwrap());
    let late = a
        .store(&token, &tower_with_votes(&keypair, 1..6))
        .await
        .unwrap_err();
    assert!(matches!(late, StorageError::LockLost { .. }), "{late:?}");
    assert!(!a.release(&token).await.unwrap(), "released twice");
    let b = backend.instance().await;
    let taken = b.takeover(&keypair.pubkey()).await.unwrap();
    assert_eq!(taken.displaced, None, "nobody held the fence");
    let tower = taken.tower.expect("the tower stays");
    assert_eq!(tower.tower().last_voted_slot(), Some(4));
    assert!(!a.release(&token).await.unwrap(), "b holds it now");
    let _stored = b
        .store(&taken.token, &tower_with_votes(&keypair, 1..7))
        .await
        .unwrap();
}

/// The vote history is a second record behind the same fence: stored with
/// the token, read back by the next takeover, refused under a stale token or
/// for another identity, with nothing written.
async fn vote_history_is_behind_the_fence<B: Backend>(backend: &B) {
    let keypair = Keypair::new();
    let identity = keypair.pubkey();
    let a = backend.instance().await;
    let first = a.takeover(&identity).await.unwrap();
    assert!(first.vote_history.is_none(), "no vote history yet");
    assert!(matches!(
        a.load_vote_history_unfenced(&identity).await,
        Err(StorageError::VoteHistoryNotFound { .. })
    ));

    let saved = notarized_history(&keypair, 5);
    let stored = a.store_vote_history(&first.token, &saved).await.unwrap();
    assert_eq!(
        (stored.identity(), stored.newest_vote(), stored.votes()),
        (identity, Some(5), 10)
    );
    assert_eq!(backend.raw_history(&identity).await, Some(saved.to_bytes()));
    assert_eq!(
        a.load_vote_history_unfenced(&identity).await.unwrap(),
        saved
    );
    assert!(
        backend.raw(&identity).await.is_none(),
        "a vote history is not a tower"
    );

    let second = a.takeover(&identity).await.unwrap();
    assert_eq!(second.vote_history.as_ref(), Some(&saved));
    let err = a
        .store_vote_history(&first.token, &notarized_history(&keypair, 6))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::LockLost { .. }), "{err:?}");
    let err = a
        .store_vote_history(&second.token, &notarized_history(&Keypair::new(), 7))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::IdentityMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(
        backend.raw_history(&identity).await,
        Some(saved.to_bytes()),
        "nothing written by a refused store"
    );
    let newer = notarized_history(&keypair, 8);
    let _stored = a.store_vote_history(&second.token, &newer).await.unwrap();
    assert_eq!(backend.raw_history(&identity).await, Some(newer.to_bytes()));
}

/// A new holder reads the vote history the previous one stored last, with
/// the fence; the previous holder's later stores fail and write nothing.
async fn takeover_reads_the_previous_holders_vote_history<B: Backend>(backend: &B) {
    let keypair = Keypair::new();
    let identity = keypair.pubkey();
    let a = backend.instance().await;
    let b = backend.instance().await;
    let token_a = a.takeover(&identity).await.unwrap().token;
    let by_a = notarized_history(&keypair, 4);
    let _stored = a.store_vote_history(&token_a, &by_a).await.unwrap();

    let taken = b.takeover(&identity).await.unwrap();
    assert_eq!(taken.vote_history.as_ref(), Some(&by_a));
    match a
        .store_vote_history(&token_a, &notarized_history(&keypair, 5))
        .await
    {
        Err(StorageError::LockLost { by, .. }) => assert_eq!(*by, *b.instance()),
        other => panic!("expected LockLost, got {other:?}"),
    }
    assert_eq!(backend.raw_history(&identity).await, Some(by_a.to_bytes()));
}

/// A corrupt, foreign or tampered vote history stops the takeover before
/// the fence moves, with the history's own sentence, and stays as it was.
async fn bad_vote_histories_are_refused_and_kept<B: Backend>(backend: &B) {
    let keypair = Keypair::new();
    let identity = keypair.pubkey();
    let a = backend.instance().await;
    let holder = backend.instance().await;
    let holder_token = if backend.fences_across_instances() {
        Some(holder.takeover(&identity).await.unwrap().token)
    } else {
        None
    };
    let foreign = notarized_history(&Keypair::new(), 3).to_bytes();
    let mut tampered = notarized_history(&keypair, 3).to_bytes();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    for bad in [b"not a vote history".to_vec(), foreign, tampered] {
        backend.plant_history(&identity, bad.clone()).await;
        let err = a.takeover(&identity).await.unwrap_err();
        assert!(matches!(err, StorageError::VoteHistory { .. }), "{err:?}");
        assert!(
            err.to_string().contains("vote history"),
            "one sentence naming the record: {err}"
        );
        assert!(matches!(
            a.load_vote_history_unfenced(&identity).await,
            Err(StorageError::VoteHistory { .. })
        ));
        assert_eq!(backend.raw_history(&identity).await, Some(bad));
        if let Some(token) = &holder_token {
            let _fenced = holder
                .fence_leader_slot(token, 1)
                .await
                .expect("the holder still holds the fence");
        }
    }
}

async fn run_suite<B: Backend>(backend: &B) {
    vote_history_is_behind_the_fence(backend).await;
    bad_vote_histories_are_refused_and_kept(backend).await;
    round_trip(backend).await;
    stale_token_is_fenced(backend).await;
    renewal_voids_the_old_token(backend).await;
    release_leaves_the_tower_and_nobody_holding_the_fence(backend).await;
    if backend.fences_across_instances() {
        takeover_by_another_instance_fences_the_first(backend).await;
        takeover_reads_the_previous_holders_vote_history(backend).await;
    } else {
        second_instance_is_refused(backend).await;
    }
    another_identitys_tower_is_not_stored(backend).await;
    bad_towers_are_refused_and_kept(backend).await;
}

struct Memory(MemoryTowerStorage);

#[async_trait]
impl Backend for Memory {
    type S = MemoryTowerStorage;
    async fn instance(&self) -> MemoryTowerStorage {
        self.0.new_instance()
    }
    fn fences_across_instances(&self) -> bool {
        true
    }
    async fn plant(&self, identity: &Pubkey, bytes: Vec<u8>) {
        self.0.put_raw_tower(identity, bytes)
    }
    async fn raw(&self, identity: &Pubkey) -> Option<Vec<u8>> {
        self.0.raw_tower(identity)
    }
    async fn plant_history(&self, identity: &Pubkey, bytes: Vec<u8>) {
        self.0.put_raw_vote_history(identity, bytes)
    }
    async fn raw_history(&self, identity: &Pubkey) -> Option<Vec<u8>> {
        self.0.raw_vote_history(identity)
    }
}

#[tokio::test]
async fn memory_backend() {
    run_suite(&Memory(MemoryTowerStorage::new())).await;
}

struct Files(tempfile::TempDir);

#[async_trait]
impl Backend for Files {
    type S = FileTowerStorage;
    async fn instance(&self) -> FileTowerStorage {
        FileTowerStorage::new(self.0.path())
    }
    fn fences_across_instances(&self) -> bool {
        false
    }
    async fn plant(&self, identity: &Pubkey, bytes: Vec<u8>) {
        let path = FileTowerStorage::new(self.0.path()).path(identity);
        std::fs::write(path, bytes).unwrap();
    }
    async fn raw(&self, identity: &Pubkey) -> Option<Vec<u8>> {
        std::fs::read(FileTowerStorage::new(self.0.path()).path(identity)).ok()
    }
    async fn plant_history(&self, identity: &Pubkey, bytes: Vec<u8>) {
        std::fs::write(self.0.path().join(vote_history_file_name(identity)), bytes).unwrap();
    }
    async fn raw_history(&self, identity: &Pubkey) -> Option<Vec<u8>> {
        std::fs::read(self.0.path().join(vote_history_file_name(identity))).ok()
    }
}

#[tokio::test]
async fn file_backend() {
    run_suite(&Files(tempfile::tempdir().unwrap())).await;
}

struct Etcd(EtcdProcess);

#[async_trait]
impl Backend for Etcd {
    type S = EtcdTowerStorage;
    async fn instance(&self) -> EtcdTowerStorage {
        EtcdTowerStorage::connect(&self.0.config()).await.unwrap()
    }
    fn fences_across_instances(&self) -> bool {
        true
    }
    async fn plant(&self, identity: &Pubkey, bytes: Vec<u8>) {
        let mut client = self.0.client().await;
        client
            .put(format!("{identity}/tower"), bytes, None)
            .await
            .unwrap();
    }
    async fn raw(&self, identity: &Pubkey) -> Option<Vec<u8>> {
        let mut client = self.0.client().await;
        let response = client.get(format!("{identity}/tower"), None).await.unwrap();
        response.kvs().first().map(|kv| kv.value().to_vec())
    }
    async fn plant_history(&self, identity: &Pubkey, bytes: Vec<u8>) {
        let mut client = self.0.client().await;
        client
            .put(format!("{identity}/vote_history"), bytes, None)
            .await
            .unwrap();
    }
    async fn raw_history(&self, identity: &Pubkey) -> Option<Vec<u8>> {
        let mut client = self.0.client().await;
        let response = client
            .get(format!("{identity}/vote_history"), None)
            .await
            .unwrap();
        response.kvs().first().map(|kv| kv.value().to_vec())
    }
}

#[tokio::test]
async fn etcd_backend() {
    run_suite(&Etcd(EtcdProcess::start().await)).await;
}
