//! `towerlock vote-history show|export|import` as an operator runs them: the
//! real binary, real files, a real etcd with mutual TLS.

use std::{path::Path, process::Command};

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_storage::{vote_history_file_name, EtcdTowerStorage, StorageError, TowerStorage};
use towerlock_testsupport::{vote_history::notarized_history, EtcdProcess};

fn towerlock(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_towerlock"))
        .args(args)
        .output()
        .expect("run towerlock")
}

fn write_history(dir: &Path, keypair: &Keypair, votes: u64) -> String {
    let path = dir.join(vote_history_file_name(&keypair.pubkey()));
    std::fs::write(&path, notarized_history(keypair, votes).to_bytes()).unwrap();
    path.to_str().unwrap().to_string()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_refused(out: &std::process::Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    assert!(stderr(out).contains(needle), "{}", stderr(out));
    assert_eq!(
        stderr(out).lines().count(),
        1,
        "one sentence: {}",
        stderr(out)
    );
}

/// `fence status` shows the vote history next to the tower (as JSON and
/// as text): newest vote and number of votes of a `saved_history`.
fn assert_fence_status_shows(flags: &[&str], keypair: &Keypair, votes: u64) {
    let id = keypair.pubkey().to_string();
    let json = ["fence", "status", "--json", "--identity", &id];
    let status = towerlock(&[&json[..], flags].concat());
    assert!(status.status.success(), "{}", stderr(&status));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["vote_history"]["last_voted_slot"], votes);
    assert_eq!(status["vote_history"]["votes"], 2 * votes);
    let text = towerlock(&[&json[..1], &json[1..2], &json[3..], flags].concat());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains(&format!("Vote history:      last vote slot {votes}")),
        "{text}"
    );
}

#[test]
fn show_prints_an_agave_vote_history_as_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let keypair = Keypair::new();
    let path = write_history(dir.path(), &keypair, 3);

    let text = towerlock(&["vote-history", "show", &path]);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains(&format!("node          {}", keypair.pubkey())),
        "{text}"
    );
    assert!(text.contains("last vote     slot 3"), "{text}");
    assert!(text.contains("votes cast    6 in 3 slots"), "{text}");
    assert!(text.contains("notarize "), "{text}");

    let json = towerlock(&["vote-history", "show", "--json", &path]);
    assert!(json.status.success(), "{}", stderr(&json));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["node"], keypair.pubkey().to_string());
    assert_eq!(value["root"], 0);
    assert_eq!(value["last_voted_slot"], 3);
    assert_eq!(value["its_over"], serde_json::json!([1, 2, 3]));
    assert_eq!(value["votes_cast"].as_array().unwrap().len(), 6);
    assert_eq!(value["votes_cast"][0]["kind"], "notarize");
    assert_eq!(
        value["votes_cast"][0]["block_id"],
        Hash::new_from_array([1; 32]).to_string()
    );
    assert_eq!(value["votes_cast"][1]["kind"], "finalize");
    assert_eq!(value["notarized_blocks"][2]["slot"], 3);
    assert_eq!(value["signature_valid"], true);
}

#[test]
fn show_refuses_tampered_foreign_truncated_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let keypair = Keypair::new();
    let path = write_history(dir.path(), &keypair, 3);
    let good = std::fs::read(&path).unwrap();

    let mut bytes = good.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    assert_refused(
        &towerlock(&["vote-history", "show", &path]),
        "signature does not verify",
    );

    std::fs::write(&path, &good[..good.len() - 1]).unwrap();
    assert_refused(
        &towerlock(&["vote-history", "show", &path]),
        "saved vote history is corrupt",
    );

    // A valid history of another node, under our name.
    let theirs = Keypair::new();
    std::fs::write(&path, notarized_history(&theirs, 2).to_bytes()).unwrap();
    assert_refused(
        &towerlock(&["vote-history", "show", &path]),
        &format!("belongs to {}", theirs.pubkey()),
    );

    assert_refused(
        &towerlock(&["vote-history", "show", "/nonexistent/vote_history-x.bin"]),
        "cannot read",
    );
}

#[tokio::test]
async fn import_export_and_show_through_etcd() {
    let etcd = EtcdProcess::start().await;
    let flags = etcd.cli_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let keypair = Keypair::new();
    let identity = keypair.pubkey().to_string();
    let path = write_history(dir.path(), &keypair, 20);

    let out = towerlock(&[&["vote-history", "import", &path][..], &flags].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let mut client = etcd.client().await;
    let key = format!("{identity}/vote_history");
    let value = client.get(key.as_str(), None).await.unwrap();
    assert_eq!(
        value.kvs()[0].value(),
        std::fs::read(&path).unwrap(),
        "the etcd value is the file, byte for byte"
    );
    let instance = client
        .get(format!("{identity}/instance"), None)
        .await
        .unwrap();
    assert!(instance.kvs().is_empty(), "import leaves no fence holder");

    let out = towerlock(
        &[
            &["vote-history", "show", "--json", "--identity", &identity][..],
            &flags,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["last_voted_slot"], 20);

    let export_dir = tempfile::tempdir().unwrap();
    let export_dir_str = export_dir.path().to_str().unwrap();
    let export = [
        &[
            "vote-history",
            "export",
            "--identity",
            &identity,
            "--tower",
            export_dir_str,
        ][..],
        &flags,
    ]
    .concat();
    let out = towerlock(&export);
    assert!(out.status.success(), "{}", stderr(&out));
    let exported = export_dir
        .path()
        .join(vote_history_file_name(&keypair.pubkey()));
    assert_eq!(
        std::fs::read(&exported).unwrap(),
        std::fs::read(&path).unwrap()
    );
    // A second export does not overwrite without --force.
    assert_refused(&towerlock(&export), "--force");

    // An older history does not replace newer votes in etcd unless forced.
    let older_dir = tempfile::tempdir().unwrap();
    let older = write_history(older_dir.path(), &keypair, 5);
    assert_refused(
        &towerlock(&[&["vote-history", "import", &older][..], &flags].concat()),
        "newer votes",
    );
    let storage = EtcdTowerStorage::connect(&etcd.config()).await.unwrap();
    let still = storage
        .load_vote_history_unfenced(&keypair.pubkey())
        .await
        .unwrap();
    assert_eq!(
        still.history().last_voted_slot(),
        Some(20),
        "etcd unchanged"
    );
    assert_fence_status_shows(&flags, &keypair, 20);
    let out = towerlock(&[&["vote-history", "import", "--force", &older][..], &flags].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let replaced = storage
        .load_vote_history_unfenced(&keypair.pubkey())
        .await
        .unwrap();
    assert_eq!(replaced.history().last_voted_slot(), Some(5));
}

#[tokio::test]
async fn import_refuses_to_replace_an_unreadable_vote_history_in_etcd() {
    let etcd = EtcdProcess::start().await;
    let flags = etcd.cli_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let keypair = Keypair::new();
    let path = write_history(dir.path(), &keypair, 3);

    let mut client = etcd.client().await;
    let key = format!("{}/vote_history", keypair.pubkey());
    client
        .put(key.as_str(), b"garbage".to_vec(), None)
        .await
        .unwrap();

    let out = towerlock(&[&["vote-history", "import", &path][..], &flags].concat());
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

    let out = towerlock(&[&["vote-history", "import", "--force", &path][..], &flags].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let value = client.get(key.as_str(), None).await.unwrap();
    assert_eq!(value.kvs()[0].value(), std::fs::read(&path).unwrap());
}

#[tokio::test]
async fn import_refuses_to_fence_out_a_running_validator_and_fences_it_when_forced() {
    let etcd = EtcdProcess::start().await;
    let flags = etcd.cli_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let keypair = Keypair::new();
    let path = write_history(dir.path(), &keypair, 30);

    // A validator holds the fence and stored a history under it.
    let validator = EtcdTowerStorage::connect(&etcd.config()).await.unwrap();
    let token = validator.takeover(&keypair.pubkey()).await.unwrap().token;
    let _stored = validator
        .store_vote_history(&token, &notarized_history(&keypair, 3))
        .await
        .unwrap();
    // Never another identity's history under this fence.
    let other = Keypair::new();
    assert!(matches!(
        validator
            .store_vote_history(&token, &notarized_history(&other, 1))
            .await,
        Err(StorageError::IdentityMismatch { .. })
    ));

    let out = towerlock(&[&["vote-history", "import", &path][..], &flags].concat());
    assert_refused(&out, "holds the fence");
    let still = validator
        .load_vote_history_unfenced(&keypair.pubkey())
        .await
        .unwrap();
    assert_eq!(still.history().last_voted_slot(), Some(3), "etcd unchanged");

    // Forced (the validator crashed, say): the import takes the fence, and
    // the old holder can no longer store its history.
    let out = towerlock(&[&["vote-history", "import", "--force", &path][..], &flags].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let late = validator
        .store_vote_history(&token, &notarized_history(&keypair, 31))
        .await;
    assert!(
        matches!(late, Err(StorageError::LockLost { .. })),
        "{late:?}"
    );
    let stored = validator
        .load_vote_history_unfenced(&keypair.pubkey())
        .await
        .unwrap();
    assert_eq!(stored.history().last_voted_slot(), Some(30));
}
