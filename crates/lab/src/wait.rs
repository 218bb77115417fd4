//! The one wait of the lab: check, and check again after a short pause,
//! until the check yields or the deadline passes.

use std::time::{Duration, Instant};

use crate::LabError;

/// How long [`wait_until`] pauses between two checks.
pub const POLL: Duration = Duration::from_millis(20);

/// Runs `check` until it yields `Some(value)` (returned), fails (its error
/// is returned at once), or `deadline` passes ([`LabError::Timeout`] naming
/// `what`). The check always runs at least once, and once more after the
/// deadline, so a slow machine never loses an event that did happen.
pub async fn wait_until<T>(
    deadline: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<Option<T>, LabError>,
) -> Result<T, LabError> {
    let until = Instant::now() + deadline;
    loop {
        let last_chance = Instant::now() >= until;
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if last_chance {
            return Err(LabError::Timeout {
                what: what.to_string(),
                waited: deadline,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn yields_the_first_value() {
        let mut calls = 0;
        let found = wait_until(Duration::from_secs(5), "three calls", async || {
            calls += 1;
            Ok((calls == 3).then_some(calls))
        })
        .await
        .unwrap();
        assert_eq!(found, 3);
    }

    #[tokio::test]
    async fn times_out_naming_what() {
        let err = wait_until(Duration::ZERO, "nothing", async || Ok(None::<()>))
            .await
            .unwrap_err();
        assert!(matches!(err, LabError::Timeout { ref what, .. } if what == "nothing"));
    }

    #[tokio::test]
    async fn a_failed_check_ends_the_wait() {
        let err = wait_until(Duration::from_secs(5), "x", async || {
            Err::<Option<()>, _>(LabError::NotRunning { what: "x".into() })
        })
        .await
        .unwrap_err();
        assert!(matches!(err, LabError::NotRunning { .. }));
    }
}
