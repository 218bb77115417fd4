//! `towerlock bench cluster` with tiny parameters (a few identities voting
//! with real transactions, one real validator, short windows) ends with its
//! key=value line: the transactions were accepted and landed, the real
//! validator voted in both kinds of window, and the audit is clean.

use std::path::Path;

use towerlock_testsupport::BenchFigures;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_vote_transactions_land_and_are_measured() {
    let towerlock = Path::new(env!("CARGO_BIN_EXE_towerlock"));
    let validator = towerlock_testsupport::validator_beside(towerlock);
    let out = tokio::process::Command::new(towerlock)
        .args(["bench", "cluster", "--voters", "20", "--synthetic", "20"])
        .args(["--pairs", "1", "--window-seconds", "4", "--slot-ms", "150"])
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
    assert!(
        stderr.contains("pair 1/1: window with"),
        "no progress: {stderr}"
    );
    let figures = BenchFigures::from_stdout(&stdout);
    let last = figures.line();
    // A 4 s window of 150 ms slots: about 26 banks, 20 votes each.
    assert!(figures.number("votes_per_s") > 20.0, "{last}");
    assert!(figures.number("accepted") > 0.9, "{last}");
    assert!(figures.number("landed") > 0.8, "{last}");
    assert!(figures.number("credits_per_vote") > 0.0, "{last}");
    assert!(figures.number("send_p50_ms") > 0.0, "{last}");
    for side in ["without", "with"] {
        assert!(
            figures.number(&format!("cluster_cores_{side}")) > 0.0,
            "{last}"
        );
        assert!(
            figures.number(&format!("validator_sent_p50_ms_{side}")) >= 0.0,
            "{last}"
        );
        let credits = figures.number(&format!("validator_credits_{side}"));
        assert!((1.0..=16.0).contains(&credits), "{side}: {last}");
    }
    figures.number("cluster_us_per_vote");
    assert_eq!(figures.get("voters"), Some("20"), "{last}");
    assert_eq!(figures.get("audit_clean"), Some("true"), "{last}");
}
