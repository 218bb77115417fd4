//! `towerlock drill`, the main job, runs the seed's story and passes its own
//! audit.

use std::process::Command;

#[test]
fn drill_runs_the_seed_story_with_a_clean_audit() {
    let towerlock = std::path::Path::new(env!("CARGO_BIN_EXE_towerlock"));
    let validator = towerlock_testsupport::validator_beside(towerlock);
    let out = Command::new(towerlock)
        .args(["drill", "--slot-ms", "120", "--validator-bin"])
        .arg(&validator)
        .output()
        .expect("run towerlock drill");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("no safety violations"), "{stdout}");
    let figures = stdout.lines().last().unwrap();
    assert!(
        figures.starts_with("failovers=7 violations=0 "),
        "{figures}"
    );
}

/// The same story on an Alpenglow cluster: Votor votes, the vote history
/// behind the fence; the audit finds no Votor offence and every landed vote
/// is in the vote history left in etcd.
#[test]
fn drill_on_alpenglow_runs_the_seed_story_with_a_clean_audit() {
    let towerlock = std::path::Path::new(env!("CARGO_BIN_EXE_towerlock"));
    let validator = towerlock_testsupport::validator_beside(towerlock);
    let out = Command::new(towerlock)
        .args(["drill", "--consensus", "alpenglow", "--slot-ms", "120"])
        .arg("--validator-bin")
        .arg(&validator)
        .output()
        .expect("run towerlock drill");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("no safety violations"), "{stdout}");
    assert!(
        stdout.contains("every landed vote of") && stdout.contains("is in it: yes"),
        "{stdout}"
    );
    assert!(stdout.contains("the thawed primary stopped"), "{stdout}");
    let figures = stdout.lines().last().unwrap();
    assert!(
        figures.starts_with("failovers=5 violations=0 "),
        "{figures}"
    );
    let votes: u64 = figures
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("votes="))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(votes > 20, "{figures}");
}

#[test]
fn drill_without_etcd_says_how_to_install_it() {
    let towerlock = std::path::Path::new(env!("CARGO_BIN_EXE_towerlock"));
    let validator = towerlock.with_file_name("towerlock-validator");
    // A PATH with no etcd on it.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(towerlock)
        .args(["drill", "--validator-bin"])
        .arg(&validator)
        .env("PATH", empty.path())
        .output()
        .expect("run towerlock drill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!("error: {}", towerlock_testsupport::ETCD_MISSING),
        "one sentence saying how to install etcd"
    );
}
