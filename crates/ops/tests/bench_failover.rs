//! `towerlock bench failover` runs one quick failover end to end (real etcd,
//! the local cluster, validator processes) and ends with its key=value line.
//! A smoke run: the figures are printed, never asserted.

use std::path::Path;

use towerlock_testsupport::BenchFigures;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_quick_failover_ends_with_the_figures_and_a_clean_audit() {
    let towerlock = Path::new(env!("CARGO_BIN_EXE_towerlock"));
    let validator = towerlock_testsupport::validator_beside(towerlock);
    let out = tokio::process::Command::new(towerlock)
        .args(["bench", "failover", "--failovers", "1", "--slot-ms", "150"])
        .arg("--validator-bin")
        .arg(&validator)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("failover 1/1"), "no progress: {stderr}");
    let figures = BenchFigures::from_stdout(&stdout);
    let last = figures.line();
    for key in [
        "set_identity_p50_ms",
        "set_identity_max_ms",
        "first_vote_sent_p50_ms",
        "first_vote_sent_max_ms",
        "first_vote_landed_p50_ms",
        "first_vote_landed_max_ms",
        "missed_votes_p50",
        "missed_votes_max",
    ] {
        let value = figures.number(key);
        assert!(value.is_finite() && value >= 0.0, "{key}={value}");
    }
    assert_eq!(figures.get("failovers"), Some("1"), "{last}");
    assert_eq!(figures.get("slot_ms"), Some("150"), "{last}");
    assert_eq!(figures.get("audit_clean"), Some("true"), "{last}");
    assert!(stdout.contains("audit: clean"), "{stdout}");
}

/// The same on Alpenglow: two failovers on a Votor cluster, the figures,
/// a clean audit and every landed vote in the vote history in etcd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failovers_on_alpenglow_end_with_the_figures_and_a_clean_audit() {
    let towerlock = Path::new(env!("CARGO_BIN_EXE_towerlock"));
    let validator = towerlock_testsupport::validator_beside(towerlock);
    let out = tokio::process::Command::new(towerlock)
        .args(["bench", "failover", "--consensus", "alpenglow"])
        .args(["--failovers", "2", "--slot-ms", "150"])
        .arg("--validator-bin")
        .arg(&validator)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("failover 2/2"), "no progress: {stderr}");
    let figures = BenchFigures::from_stdout(&stdout);
    let last = figures.line();
    for key in [
        "set_identity_p50_ms",
        "first_vote_sent_p50_ms",
        "first_vote_sent_max_ms",
        "first_vote_landed_max_ms",
        "missed_slots_max",
    ] {
        let value = figures.number(key);
        assert!(value.is_finite() && value >= 0.0, "{key}={value}");
    }
    assert_eq!(figures.get("consensus"), Some("alpenglow"), "{last}");
    assert_eq!(figures.get("failovers"), Some("2"), "{last}");
    assert_eq!(figures.get("audit_clean"), Some("true"), "{last}");
    assert!(
        stdout.contains("landed votes missing from it: 0"),
        "{stdout}"
    );
}
