//! `towerlock bench vote-path` with tiny parameters (one short round per
//! storage, fast slots) ends with its key=value line: every figure present
//! and a finite number, votes measured for both storages, a clean audit.

use std::path::Path;

use towerlock_testsupport::BenchFigures;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_per_storage_ends_with_the_figures() {
    let towerlock = Path::new(env!("CARGO_BIN_EXE_towerlock"));
    let validator = towerlock_testsupport::validator_beside(towerlock);
    let out = tokio::process::Command::new(towerlock)
        .args([
            "bench",
            "vote-path",
            "--rounds",
            "1",
            "--slots-per-round",
            "4",
        ])
        .args(["--slot-ms", "150", "--validator-bin"])
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
    assert!(stderr.contains("round 2/2: etcd"), "no progress: {stderr}");
    let figures = BenchFigures::from_stdout(&stdout);
    let last = figures.line();
    for storage in ["file", "etcd"] {
        for what in ["sent", "landed", "store"] {
            for tag in ["p50", "p99", "max"] {
                let value = figures.number(&format!("{storage}_{what}_{tag}_ms"));
                assert!(value >= 0.0, "{storage}_{what}_{tag}_ms={value}");
            }
        }
        let credits = figures.number(&format!("{storage}_credits_per_slot"));
        assert!((0.0..=16.0).contains(&credits), "{last}");
        assert!(figures.number(&format!("{storage}_votes")) >= 4.0, "{last}");
    }
    figures.number("etcd_added_p99_ms");
    figures.number("etcd_store_added_p99_ms");
    assert_eq!(figures.get("slot_ms"), Some("150"), "{last}");
    assert_eq!(figures.get("audit_clean"), Some("true"), "{last}");
    assert!(
        matches!(figures.get("target_met"), Some("true" | "false")),
        "{last}"
    );
}
