//! `towerlock chaos`: a seeded run whose schedule covers every fault kind
//! passes its audit and draws its timeline; the control (a second instance
//! of the staked identity without the fence) is caught.

use std::path::Path;
use std::process::{Command, Output};

/// Every fault kind `--faults` knows.
const KINDS: [&str; 14] = [
    "kill",
    "pause",
    "partition-etcd",
    "partition-cluster",
    "partition-both",
    "delay-etcd",
    "hold-etcd",
    "blackhole-etcd",
    "reset",
    "etcd-member",
    "etcd-quorum",
    "set-identity-race",
    "failover",
    "skew-clock",
];

/// One run at a time: each starts a three-member etcd on free ports, and two
/// at once can pick the same port between choosing and binding it.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn chaos(dir: &Path, extra: &[&str]) -> Output {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let towerlock = Path::new(env!("CARGO_BIN_EXE_towerlock"));
    let validator = towerlock_testsupport::validator_beside(towerlock);
    Command::new(towerlock)
        .arg("chaos")
        .arg("--dir")
        .arg(dir)
        .args(["--slot-ms", "100", "--validator-bin"])
        .arg(&validator)
        .args(extra)
        .output()
        .expect("run towerlock chaos")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_seeded_run_through_every_fault_passes_the_audit() {
    let work = tempfile::tempdir().unwrap();
    let out = chaos(work.path(), &["--duration", "60s", "--seed", "3"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("no safety violations"), "{shown}");
    assert!(shown.contains(" violations=0 "), "{shown}");

    let log = std::fs::read_to_string(work.path().join("faults.jsonl")).unwrap();
    let faults: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for kind in KINDS {
        assert!(
            faults.iter().any(|f| f["kind"] == kind),
            "no {kind} fault in {log}"
        );
    }
    check_timeline(&work.path().join("timeline.svg"), &faults);
}

/// One row per node, one shaded window per logged fault (in its colour).
fn check_timeline(path: &Path, faults: &[serde_json::Value]) {
    let svg = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("timeline.svg is XML");
    let rows: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .filter(|t| t.starts_with("node: "))
        .collect();
    assert_eq!(rows, ["node: primary", "node: secondary"]);
    let windows: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("opacity") == Some("0.35"))
        .filter_map(|n| n.attribute("fill").map(str::to_lowercase))
        .collect();
    assert_eq!(windows.len(), faults.len(), "{windows:?}");
    for (window, fault) in windows.iter().zip(faults) {
        assert_eq!(Some(window.as_str()), fault["color"].as_str());
    }
}

#[test]
fn the_control_without_the_fence_is_caught() {
    let work = tempfile::tempdir().unwrap();
    let out = chaos(
        work.path(),
        &["--control", "--duration", "60s", "--seed", "5"],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("safety violation(s)"), "{shown}");
    assert!(shown.contains("the control stops"), "{shown}");
    let svg = std::fs::read_to_string(work.path().join("timeline.svg")).unwrap();
    roxmltree::Document::parse(&svg).expect("timeline.svg is XML");
}

/// On Alpenglow: the same seeded schedule over every fault kind, Votor
/// votes and the vote history behind the fence; the audit finds no Votor
/// offence and every landed vote is in the vote history left in etcd.
#[test]
fn a_seeded_run_on_alpenglow_passes_the_audit_and_the_vote_history_check() {
    let work = tempfile::tempdir().unwrap();
    let out = chaos(
        work.path(),
        &[
            "--consensus",
            "alpenglow",
            "--duration",
            "60s",
            "--seed",
            "3",
        ],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("no safety violations"), "{shown}");
    assert!(shown.contains(" violations=0 "), "{shown}");
    assert!(shown.contains("is in it: yes"), "{shown}");
    let log = std::fs::read_to_string(work.path().join("faults.jsonl")).unwrap();
    for kind in KINDS {
        assert!(
            log.contains(&format!("\"{kind}\"")),
            "no {kind} fault in {log}"
        );
    }
}

/// The control on Alpenglow: a second instance keeping its vote history in
/// a local file must be caught with one of Votor's offences.
#[test]
fn the_control_on_alpenglow_is_caught_with_a_votor_offence() {
    let work = tempfile::tempdir().unwrap();
    let out = chaos(
        work.path(),
        &[
            "--consensus",
            "alpenglow",
            "--control",
            "--duration",
            "60s",
            "--seed",
            "5",
        ],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("notarize and skip in one slot")
            || shown.contains("two blocks notarized in one slot")
            || shown.contains("finalize in a skipped slot"),
        "{shown}"
    );
}
