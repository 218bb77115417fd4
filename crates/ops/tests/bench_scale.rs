//! `towerlock bench scale` with tiny parameters (a few identities, one
//! short slice on one member and on three) ends with its key=value line:
//! every figure present and a finite number, stores made, no errors.

use towerlock_testsupport::BenchFigures;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_fleet_on_one_and_three_members_ends_with_the_figures() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_towerlock"))
        .args(["bench", "scale", "--validators", "6", "--connections", "2"])
        .args([
            "--minutes",
            "0.02",
            "--slice-seconds",
            "1",
            "--slot-ms",
            "100",
        ])
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
        stderr.contains("3 members: 6 identities take their fences"),
        "no progress: {stderr}"
    );
    let figures = BenchFigures::from_stdout(&stdout);
    let last = figures.line();
    for m in ["m1", "m3"] {
        for key in ["store_p50_ms", "store_p99_ms", "store_max_ms", "etcd_cores"] {
            let value = figures.number(&format!("{m}_{key}"));
            assert!(value > 0.0, "{m}_{key}={value}");
        }
        // 6 identities storing every 100 ms for a second.
        assert!(
            figures.number(&format!("{m}_writes_per_s")) >= 20.0,
            "{last}"
        );
        assert!(figures.number(&format!("{m}_quota_gib")) >= 2.0, "{last}");
        figures.number(&format!("{m}_db_mb_per_hour"));
        assert_eq!(
            figures.get(format!("{m}_errors").as_str()),
            Some("0"),
            "{last}"
        );
    }
    figures.number("p99_ratio");
    assert_eq!(figures.get("validators"), Some("6"), "{last}");
    assert_eq!(figures.get("connections"), Some("2"), "{last}");
    assert!(
        matches!(figures.get("target_met"), Some("false")),
        "6 < 1000: {last}"
    );
}
