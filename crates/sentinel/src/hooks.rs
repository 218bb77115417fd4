//! Operator commands: `--pre-hook` and `--post-hook` around a promotion,
//! and `--fence-command` (STONITH) before it when there is no etcd fence.
//!
//! Each runs as `sh -c COMMAND` with a deadline, and sees:
//!
//! | variable | value |
//! |---|---|
//! | `TOWERLOCK_PHASE` | `pre`, `fence` or `post` |
//! | `TOWERLOCK_IDENTITY` | the staked identity |
//! | `TOWERLOCK_REASON` | why: the detection in one sentence |
//! | `TOWERLOCK_LAST_VOTE` | the identity's stalled last vote |
//! | `TOWERLOCK_SLOT` | the cluster's slot at detection |
//! | `TOWERLOCK_DETECTED_MS` | wall-clock ms of the detection |
//! | `TOWERLOCK_STALLED_MS` | first bad check → detection, ms |
//! | `TOWERLOCK_DRY_RUN` | `1` in a dry run (hooks only) |
//! | `TOWERLOCK_OUTCOME` | post only: `ok`, `failed` or `dry-run` |
//! | `TOWERLOCK_PROMOTION_MS` | post only: detection → `setIdentity` answered |
//!
//! A hook that fails is logged and changes nothing; the fence command must
//! exit 0 or there is no promotion.

use std::time::Duration;

/// How long a hook may run.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the fence command may run.
pub const FENCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `command` with `env`; `Ok(())` when it exits 0, else what happened.
pub async fn run(command: &str, env: &[(&str, String)], deadline: Duration) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(command).kill_on_drop(true);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let child = cmd.status();
    match tokio::time::timeout(deadline, child).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("{status}")),
        Ok(Err(err)) => Err(format!("cannot run sh: {err}")),
        Err(_) => Err(format!("still running after {deadline:?}, killed")),
    }
}
