//! agave's `TowerStorage` on towerlock's fence, against a real etcd with
//! mutual TLS, with agave's own types: `Tower`, `SavedTower`,
//! `SavedTowerVersions`, `TowerError`, `FileTowerStorage`.

// agave 3.1 marks its consensus types deprecated until the
// `agave-unstable-api` feature is requested (required from agave 4.0 on:
// docs/agave.md, "agave 4.x"); they are the interface this crate implements.
#![allow(deprecated)]

mod support;

use std::time::{Duration, Instant};

use solana_core::consensus::{
    tower_storage::{FileTowerStorage, TowerStorage},
    TowerError,
};
use solana_keypair::Keypair;
use solana_signer::Signer;
use support::{tower::voted, towerlock, towerlock_ok, Etcd};
use towerlock_agave::{saved, EtcdTowerStorage, FenceError};

const DEADLINE: Duration = Duration::from_secs(2);

fn storage(etcd: &Etcd) -> EtcdTowerStorage {
    EtcdTowerStorage::new(&etcd.config(DEADLINE)).expect("connect to etcd")
}

fn fence_error(err: &TowerError) -> &FenceError {
    FenceError::of(err).unwrap_or_else(|| panic!("not a fence error: {err:?}"))
}

/// `towerlock tower show --identity … --json` of the tower in etcd.
fn towerlock_show(etcd: &Etcd, identity: &str) -> serde_json::Value {
    let mut args = vec!["tower", "show", "--json", "--identity", identity];
    let flags = etcd.flags();
    args.extend(flags.iter().map(String::as_str));
    serde_json::from_str(&towerlock_ok(&args)).expect("tower show prints JSON")
}

/// `towerlock tower export`: the tower in etcd as agave's tower file; its
/// bytes.
fn towerlock_export(etcd: &Etcd, identity: &str) -> Vec<u8> {
    let dir = etcd.dir().join(format!("export-{identity}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = vec![
        "tower",
        "export",
        "--force",
        "--identity",
        identity,
        "--tower",
        dir.to_str().unwrap(),
    ];
    let flags = etcd.flags();
    args.extend(flags.iter().map(String::as_str));
    towerlock_ok(&args);
    std::fs::read(dir.join(format!("tower-1_9-{identity}.bin"))).expect("exported tower file")
}

#[test]
fn load_of_an_identity_that_never_voted_takes_the_fence_and_reports_no_tower() {
    let etcd = Etcd::start();
    let primary = storage(&etcd);
    let identity = Keypair::new();

    let err = primary.load(&identity.pubkey()).unwrap_err();

    // agave's start-up and set-identity read this as "no tower file".
    assert!(err.is_file_missing(), "{err:?}");
    assert!(matches!(fence_error(&err), FenceError::NotFound { .. }));
    // The fence was taken all the same: the first vote may be stored…
    assert!(primary.token(&identity.pubkey()).is_some());
    primary.store(&voted(&identity, &[1])).unwrap();
    // …and towerlock sees this instance hold it.
    let mut args = vec!["fence", "status", "--json", "--identity"];
    let pubkey = identity.pubkey().to_string();
    args.push(&pubkey);
    let flags = etcd.flags();
    args.extend(flags.iter().map(String::as_str));
    let status: serde_json::Value = serde_json::from_str(&towerlock_ok(&args)).unwrap();
    assert_eq!(status["holder"]["instance"], primary.instance().id.as_str());
    assert_eq!(status["holder"]["pid"], std::process::id());
    assert_eq!(status["tower"]["last_vote"], 1);
}

#[test]
fn load_after_another_instance_stored_returns_its_tower_byte_for_byte() {
    let etcd = Etcd::start();
    let identity = Keypair::new();
    let pubkey = identity.pubkey();
    let primary = storage(&etcd);
    assert!(primary.load(&pubkey).unwrap_err().is_file_missing());
    let saved = voted(&identity, &[3, 4, 5, 9]);
    primary.store(&saved).unwrap();

    let secondary = storage(&etcd);
    let tower = secondary.load(&pubkey).unwrap();

    assert_eq!(tower.node_pubkey, pubkey);
    assert_eq!(tower.tower_slots(), vec![3, 4, 5, 9]);
    assert_eq!(tower.last_voted_slot(), Some(9));
    // The bytes in etcd are agave's tower file for that tower, and agave's
    // own file storage reads them as the same tower.
    let stored = towerlock_export(&etcd, &pubkey.to_string());
    assert_eq!(stored, saved::to_bytes(&saved).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let file = FileTowerStorage::new(dir.path().to_path_buf());
    std::fs::write(file.filename(&pubkey), &stored).unwrap();
    assert_eq!(
        file.load(&pubkey).unwrap().tower_slots(),
        tower.tower_slots()
    );
}

#[test]
fn a_store_after_another_instance_took_over_fails_and_writes_nothing() {
    let etcd = Etcd::start();
    let identity = Keypair::new();
    let pubkey = identity.pubkey();
    let primary = storage(&etcd);
    let _ = primary.load(&pubkey);
    primary.store(&voted(&identity, &[10])).unwrap();

    let secondary = storage(&etcd);
    assert_eq!(secondary.load(&pubkey).unwrap().last_voted_slot(), Some(10));
    let err = primary.store(&voted(&identity, &[10, 11])).unwrap_err();

    match fence_error(&err) {
        FenceError::LockLost { identity, by } => {
            assert_eq!(*identity, pubkey);
            assert!(by.contains(&secondary.instance().id), "{by}");
        }
        other => panic!("expected LockLost, got {other}"),
    }
    assert!(
        format!("{err:?}").contains("Lost etcd instance lock for"),
        "{err:?}"
    );
    assert!(!err.is_file_missing());
    // The primary's vote 11 never reached etcd; the secondary goes on.
    assert_eq!(
        towerlock_show(&etcd, &pubkey.to_string())["last_vote"]["slot"],
        10
    );
    secondary.store(&voted(&identity, &[10, 12])).unwrap();
    assert_eq!(
        towerlock_show(&etcd, &pubkey.to_string())["last_vote"]["slot"],
        12
    );
    // Taking it back (the primary restarted) fences the secondary out.
    assert_eq!(primary.load(&pubkey).unwrap().last_voted_slot(), Some(12));
    let err = secondary
        .store(&voted(&identity, &[10, 12, 13]))
        .unwrap_err();
    assert!(matches!(fence_error(&err), FenceError::LockLost { .. }));
}

#[test]
fn a_store_whose_outcome_is_unknown_is_an_error_within_the_deadline() {
    let etcd = Etcd::start();
    let identity = Keypair::new();
    let deadline = Duration::from_millis(500);
    let primary = EtcdTowerStorage::new(&etcd.config(deadline)).unwrap();
    let _ = primary.load(&identity.pubkey());
    primary.store(&voted(&identity, &[20])).unwrap();

    etcd.pause();
    let started = Instant::now();
    let result = primary.store(&voted(&identity, &[20, 21]));
    let waited = started.elapsed();
    etcd.resume();

    let err = result.unwrap_err();
    assert!(fence_error(&err).is_unavailable(), "{err:?}");
    assert!(!err.is_file_missing());
    assert!(waited >= deadline, "gave up after {waited:?}");
    assert!(
        waited < deadline + Duration::from_secs(1),
        "took {waited:?}"
    );
    // A load whose outcome is unknown is no "missing tower" either: agave
    // must not start a fresh tower believing none exists.
    etcd.pause();
    let err = primary.load(&identity.pubkey()).unwrap_err();
    etcd.resume();
    assert!(fence_error(&err).is_unavailable(), "{err:?}");
    assert!(!err.is_file_missing());
}

#[test]
fn a_store_without_a_load_of_that_identity_is_refused() {
    let etcd = Etcd::start();
    let primary = storage(&etcd);
    let loaded = Keypair::new();
    let other = Keypair::new();
    let _ = primary.load(&loaded.pubkey());

    let err = primary.store(&voted(&other, &[1])).unwrap_err();

    assert!(
        matches!(fence_error(&err), FenceError::NoFence { identity } if *identity == other.pubkey())
    );
    let output = {
        let mut args = vec!["tower", "show", "--json", "--identity"];
        let pubkey = other.pubkey().to_string();
        args.push(&pubkey);
        let flags = etcd.flags();
        args.extend(flags.iter().map(String::as_str));
        towerlock(&args)
    };
    assert!(
        !output.status.success(),
        "nothing was stored for the other identity"
    );
}

#[test]
fn a_tower_that_fails_agaves_checks_stops_the_load_before_the_fence_moves() {
    let etcd = Etcd::start();
    let identity = Keypair::new();
    let pubkey = identity.pubkey();
    let primary = storage(&etcd);
    let _ = primary.load(&pubkey);
    primary.store(&voted(&identity, &[30])).unwrap();
    // Another node's tower under this identity's key.
    let stranger = Keypair::new();
    etcd.put(
        &format!("{pubkey}/tower"),
        saved::to_bytes(&voted(&stranger, &[31])).unwrap(),
    );

    let secondary = storage(&etcd);
    let err = secondary.load(&pubkey).unwrap_err();

    assert!(matches!(err, TowerError::InvalidSignature), "{err:?}");
    assert!(secondary.token(&pubkey).is_none());
    // The primary still holds the fence: its next store lands.
    primary.store(&voted(&identity, &[30, 32])).unwrap();
}

#[test]
fn agaves_saved_tower_is_the_tower_towerlock_reads_and_the_reverse() {
    let etcd = Etcd::start();
    let identity = Keypair::new();
    let pubkey = identity.pubkey().to_string();

    // agave → towerlock: what the voting service stores, `tower show` reads.
    let primary = storage(&etcd);
    let _ = primary.load(&identity.pubkey());
    let saved = voted(&identity, &[40, 41, 43]);
    primary.store(&saved).unwrap();
    let shown = towerlock_show(&etcd, &pubkey);
    assert_eq!(shown["node"], pubkey.as_str());
    assert_eq!(shown["signature_valid"], true);
    assert_eq!(shown["last_vote"]["slot"], 43);
    let slots: Vec<u64> = shown["lockouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|lockout| lockout[0].as_u64().unwrap())
        .collect();
    assert_eq!(slots, [40, 41, 43]);
    assert_eq!(
        towerlock_export(&etcd, &pubkey),
        saved::to_bytes(&saved).unwrap()
    );

    // towerlock → agave: a tower file moved into etcd by `tower import`
    // (towerlock's own fenced storage) is the tower agave loads.
    let other = Keypair::new();
    let other_pubkey = other.pubkey().to_string();
    let file_dir = tempfile::tempdir().unwrap();
    let file = FileTowerStorage::new(file_dir.path().to_path_buf());
    let imported = voted(&other, &[50, 52]);
    file.store(&imported).unwrap();
    let path = file.filename(&other.pubkey());
    let mut args = vec![
        "tower",
        "import",
        path.to_str().unwrap(),
        "--identity",
        &other_pubkey,
    ];
    let flags = etcd.flags();
    args.extend(flags.iter().map(String::as_str));
    towerlock_ok(&args);

    let tower = primary.load(&other.pubkey()).unwrap();
    assert_eq!(tower.node_pubkey, other.pubkey());
    assert_eq!(tower.tower_slots(), vec![50, 52]);
    assert_eq!(
        towerlock_export(&etcd, &other_pubkey),
        std::fs::read(&path).unwrap()
    );
    // And agave stores on under the fence it took from towerlock's import.
    primary.store(&voted(&other, &[50, 52, 53])).unwrap();
    assert_eq!(
        towerlock_show(&etcd, &other_pubkey)["last_vote"]["slot"],
        53
    );
}
