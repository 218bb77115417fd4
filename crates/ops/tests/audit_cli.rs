//! `towerlock audit` on trails written to disk: exit codes and what it prints.

use std::path::Path;
use std::process::{Command, Output};

use towerlock_audit::synth::{clean_run, SimTower, TrailBuilder, CLEAN_RUN_ACCOUNT};

const ACCOUNT: &str = "vote-account";

fn audit(trail: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, trail).unwrap();
    audit_path(&path, args)
}

fn audit_path(path: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_towerlock"))
        .arg("audit")
        .arg(path)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// 0 ─ 1 ─ 2 ─ 3, and 1 ─ 4; votes for 1, 2, 3.
fn voted_on_three() -> TrailBuilder {
    let mut trail = TrailBuilder::new();
    trail.chain(0, [1, 2, 3]).bank(4, 1);
    let mut tower = SimTower::new();
    for slot in 1..=3 {
        tower.record_vote(slot);
        trail.vote(ACCOUNT, "a", &tower);
    }
    trail
}

/// Asserts exit 1 and that the summary names exactly the kind given.
fn assert_violation(output: &Output, kind: &str) {
    let out = stdout(output);
    assert_eq!(output.status.code(), Some(1), "{out}{}", stderr(output));
    assert!(out.contains(&format!("1 × {kind}")), "{out}");
    assert!(out.contains("1 safety violation(s)"), "{out}");
}

#[test]
fn lockout_violation_exits_1_naming_it() {
    let mut trail = voted_on_three();
    trail.vote_lockouts(ACCOUNT, "b", &[(4, 1)], None);
    let output = audit(&trail.to_jsonl(), &[]);
    assert_violation(&output, "lockout violation");
    assert!(stdout(&output).contains("vote sig4 for slot 4 (instance b"));
}

#[test]
fn equivocation_exits_1_naming_it() {
    let mut trail = voted_on_three();
    trail.vote_with(
        ACCOUNT,
        "b",
        &[(1, 3), (2, 2), (3, 1)],
        None,
        "forged",
        "ok",
    );
    assert_violation(&audit(&trail.to_jsonl(), &[]), "equivocation");
}

#[test]
fn root_rollback_exits_1_naming_it() {
    let mut trail = TrailBuilder::new();
    trail.chain(0, 1..=40);
    let mut tower = SimTower::new();
    for slot in 1..=35 {
        tower.record_vote(slot);
        trail.vote(ACCOUNT, "a", &tower);
    }
    tower.record_vote(36);
    trail.vote_lockouts(ACCOUNT, "b", &tower.lockouts, None);
    let output = audit(&trail.to_jsonl(), &[]);
    assert_violation(&output, "root violation");
    assert!(stdout(&output).contains("moves the root back from 4 to none"));
}

#[test]
fn duplicate_block_exits_1_naming_it() {
    let mut trail = voted_on_three();
    trail
        .block(5, "one", "a", false)
        .block(5, "two", "b", false);
    assert_violation(&audit(&trail.to_jsonl(), &[]), "duplicate block");
}

#[test]
fn long_clean_run_exits_0_with_liveness() {
    let trail = clean_run(2000, 11);
    let output = audit(&trail.to_jsonl(), &[]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}{}", stderr(&output));
    assert!(out.contains("no safety violations"), "{out}");
    assert!(
        out.contains(&format!("vote account {CLEAN_RUN_ACCOUNT}")),
        "{out}"
    );
    assert!(out.contains("longest gap"), "{out}");
    assert!(
        out.contains("instance a:") && out.contains("instance b:"),
        "{out}"
    );
}

#[test]
fn json_output_parses() {
    let mut trail = voted_on_three();
    trail.vote_lockouts(ACCOUNT, "b", &[(4, 1)], None);
    let output = audit(&trail.to_jsonl(), &["--json"]);
    assert_eq!(output.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["votes"], 4);
    assert_eq!(value["violations"][0]["kind"], "lockout");
    assert_eq!(value["violations"][0]["vote"]["signature"], "sig4");
    assert_eq!(value["violations"][0]["earlier"]["slot"], 3);
    assert_eq!(value["accounts"][0]["votes_accepted"], 4);
    let report: towerlock_audit::Report = serde_json::from_value(value).unwrap();
    assert!(!report.is_clean());

    let clean = audit(&voted_on_three().to_jsonl(), &["--json"]);
    assert_eq!(clean.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&clean.stdout).unwrap();
    assert_eq!(value["violations"], serde_json::json!([]));
}

#[test]
fn malformed_line_is_named() {
    let mut text = voted_on_three().to_jsonl();
    text.push_str("{\"kind\":\"vote\",\"slot\":\n");
    let output = audit(&text, &[]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("line 8 of the audit trail is not a valid event"),
        "{err}"
    );
    assert!(stdout(&output).is_empty());
}

#[test]
fn trail_without_votes_exits_2() {
    let mut trail = TrailBuilder::new();
    trail.chain(0, [1, 2, 3]);
    let output = audit(&trail.to_jsonl(), &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("has no votes"),
        "{}",
        stderr(&output)
    );

    let empty = audit("", &["--json"]);
    assert_eq!(empty.status.code(), Some(2));
    assert!(empty.stdout.is_empty());
}

#[test]
fn unreadable_trail_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = audit_path(&dir.path().join("missing.jsonl"), &[]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("cannot read the audit trail"), "{err}");
    assert!(err.contains("No such file"), "{err}");
}
