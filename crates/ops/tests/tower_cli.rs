//! `towerlock tower show|export|import` as an operator runs them: the real
//! binary, real files, a real etcd with mutual TLS.

use std::{path::Path, process::Command};

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_storage::{tower_file_name, EtcdTowerStorage, TowerStorage};
use towerlock_testsupport::EtcdProcess;
use towerlock_tower::{SavedTower, Tower};

fn towerlock(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_towerlock"))
        .args(args)
        .output()
        .expect("run towerlock")
}

fn saved_tower(keypair: &Keypair, votes: u64) -> SavedTower {
    let mut tower = Tower::new(keypair.pubkey());
    for slot in 1..=votes {
        let _ = tower.record_vote(
            slot,
            Hash::new_from_array([9; 32]),
            Hash::default(),
            1_700_000_000,
        );
    }
    SavedTower::new(&tower, keypair).unwrap()
}

fn write_tower(dir: &Path, keypair: &Keypair, votes: u64) -> String {
    let path = dir.join(tower_file_name(&keypair.pubkey()));
    std::fs::write(&path, saved_tower(keypair, votes).to_bytes()).unwrap();
    path.to_str().unwrap().to_string()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn show_prints_an_agave_tower_as_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let keypair = Keypair::new();
    let path = write_tower(dir.path(), &keypair, 40);

    let text = towerlock(&["tower", "show", &path]);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains(&keypair.pubkey().to_string()));
    assert!(text.contains("root       9"), "{text}");
    assert!(text.contains("last vote  slot 40"), "{text}");

    let json = towerlock(&["tower", "show", "--json", &path]);
    assert!(json.status.success());
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["node"], keypair.pubkey().to_string());
    assert_eq!(value["root"], 9);
    assert_eq!(value["lockouts"].as_array().unwrap().len(), 31);
    assert_eq!(value["lockouts"][30], serde_json::json!([40, 1]));
    assert_eq!(value["last_vote"]["slot"], 40);
    assert_eq!(value["last_vote"]["timestamp"], 1_700_000_000);
    assert_eq!(value["signature_valid"], true);
}

#[test]
fn show_refuses_tampered_foreign_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let keypair = Keypair::new();
    let path = write_tower(dir.path(), &keypair, 10);

    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let out = towerlock(&["tower", "show", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("signature does not verify"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stderr(&out).lines().count(),
        1,
        "one sentence: {}",
        stderr(&out)
    );

    // A valid tower of another node, under our name.
    let theirs = Keypair::new();
    std::fs::write(&path, saved_tower(&theirs, 3).to_bytes()).unwrap();
    let out = towerlock(&["tower", "show", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("belongs to {}", theirs.pubkey())),
        "{}",
        stderr(&out)
    );

    let out = towerlock(&["tower", "show", "/nonexistent/tower-1_9-x.bin"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
}

#[tokio::test]
async fn import_export_and_show_through_etcd() {
    let etcd = EtcdProcess::start().await;
    let flags = etcd.cli_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let keypair = Keypair::new();
    let identity = keypair.pubkey().to_string();
    let path = write_tower(dir.path(), &keypair, 20);

    let out = towerlock(&[&["tower", "import", &path][..], &flags].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let storage = EtcdTowerStorage::connect(&etcd.config()).await.unwrap();
    let stored = storage.load_unfenced(&keypair.pubkey()).await.unwrap();
    assert_eq!(
        stored.to_bytes(),
        std::fs::read(&path).unwrap(),
        "bytes identical"
    );

    let out = towerlock(
        &[
            &["tower", "show", "--json", "--identity", &identity][..],
            &flags,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["last_vote"]["slot"], 20);

    // Export into an empty tower dir gives agave's file, byte for byte.
    let export_dir = tempfile::tempdir().unwrap();
    let export_dir_str = export_dir.path().to_str().unwrap();
    let out = towerlock(
        &[
            &[
                "tower",
                "export",
                "--identity",
                &identity,
                "--tower",
                export_dir_str,
            ][..],
            &flags,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let exported = export_dir.path().join(tower_file_name(&keypair.pubkey()));
    assert_eq!(
        std::fs::read(&exported).unwrap(),
        std::fs::read(&path).unwrap()
    );
    // A second export does not overwrite without --force.
    let out = towerlock(
        &[
            &[
                "tower",
                "export",
                "--identity",
                &identity,
                "--tower",
                export_dir_str,
            ][..],
            &flags,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));

    // An older tower does not replace newer votes in etcd unless forced.
    let older_dir = tempfile::tempdir().unwrap();
    let older = write_tower(older_dir.path(), &keypair, 5);
    let out = towerlock(&[&["tower", "import", &older][..], &flags].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("newer votes"), "{}", stderr(&out));
    let still = storage.load_unfenced(&keypair.pubkey()).await.unwrap();
    assert_eq!(still.tower().last_voted_slot(), Some(20), "etcd unchanged");
    let out = towerlock(&[&["tower", "import", "--force", &older][..], &flags].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let replaced = storage.load_unfenced(&keypair.pubkey()).await.unwrap();
    assert_eq!(replaced.tower().last_voted_slot(), Some(5));
}

#[tokio::test]
async fn import_refuses_to_replace_an_unreadable_tower_in_etcd() {
    let etcd = EtcdProcess::start().await;
    let flags = etcd.cli_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let keypair = Keypair::new();
    let path = write_tower(dir.path(), &keypair, 3);

    let mut client = etcd.client().await;
    let key = format!("{}/tower", keypair.pubkey());
    client
        .put(key.as_str(), b"garbage".to_vec(), None)
        .await
        .unwrap();

    let out = towerlock(&[&["tower", "import", &path][..], &flags].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot be read"), "{}", stderr(&out));
    let value = client.get(key.as_str(), None).await.unwrap();
    assert_eq!(value.kvs()[0].value(), b"garbage", "left in place");
    // Nobody's fence was moved by the refusal.
    let instance = client
        .get(format!("{}/instance", keypair.pubkey()), None)
        .await
        .unwrap();
    assert!(instance.kvs().is_empty());

    let out = towerlock(&[&["tower", "import", "--force", &path][..], &flags].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let instance = client
        .get(format!("{}/instance", keypair.pubkey()), None)
        .await
        .unwrap();
    assert!(
        instance.kvs().is_empty(),
        "import leaves no fence holder behind"
    );
}

#[tokio::test]
async fn import_refuses_to_fence_out_a_running_validator() {
    let etcd = EtcdProcess::start().await;
    let flags = etcd.cli_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let keypair = Keypair::new();
    let path = write_tower(dir.path(), &keypair, 30);

    // A validator holds the fence (and stored an older tower).
    let validator = EtcdTowerStorage::connect(&etcd.config()).await.unwrap();
    let token = validator.takeover(&keypair.pubkey()).await.unwrap().token;
    let _stored = validator
        .store(&token, &saved_tower(&keypair, 3))
        .await
        .unwrap();

    let out = towerlock(&[&["tower", "import", &path][..], &flags].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("holds the fence"), "{}", stderr(&out));
    // How long ago it stored, for an operator to judge whether it crashed.
    assert!(stderr(&out).contains(", last store "), "{}", stderr(&out));
    // The validator still holds it.
    let _stored = validator
        .fence_leader_slot(&token, 1)
        .await
        .expect("still the holder");

    // Once it exits in order (the fence released), the import needs no
    // --force.
    assert!(validator.release(&token).await.unwrap());
    let out = towerlock(&[&["tower", "import", &path][..], &flags].concat());
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `tower show … | head`: a reader gone before the output ends stops the
/// command quietly, as a shell reports a closed pipe, without a panic.
#[test]
fn show_into_a_closed_pipe_stops_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let keypair = Keypair::new();
    let path = write_tower(dir.path(), &keypair, 40);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_towerlock"))
        .args(["tower", "show", &path])
        .stdout(writer)
        .output()
        .expect("run towerlock");
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}
