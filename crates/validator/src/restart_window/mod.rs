//! `wait-for-restart-window`: wait until it is a good moment to restart the
//! node or fail over to another machine, as agave's command of that name.
//!
//! - [`decision`]: the pure decision (leader schedule, slot, health,
//!   delinquency, thresholds → wait / ready / impossible).
//! - [`wait`]: the poller over the node's JSON-RPC.
//! - [`status`]: the live status line.
//! - [`args`]: the command line; [`run`] is what the binary calls.
//!
//! Exit codes: 0 ready to restart; 1 it cannot become a good moment in this
//! epoch, or `--timeout` passed. Other failures (no RPC, bad identity) are
//! returned as errors.

pub mod args;
pub mod decision;
pub mod status;
pub mod wait;

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

pub use args::{
    parse_minutes, parse_percent, IdentitySource, WaitForRestartWindowArgs, DEFAULT_SLOT_TIME,
};
pub use decision::{Decision, ImpossibleReason, Thresholds, WaitReason};
pub use status::StatusSink;
pub use wait::{NodeRpc, Outcome, WaitConfig};

/// How long [`run`] spends measuring the slot time before it falls back to
/// [`DEFAULT_SLOT_TIME`].
pub const SLOT_TIME_PROBE: Duration = Duration::from_secs(3);

/// Runs the command: the node's RPC URL from `--rpc-url` or the admin
/// socket under `ledger`, then [`wait_for_restart_window`] with the status
/// line on stderr. "Ready to restart" goes to stdout, a failure's reason to
/// stderr.
pub async fn run(ledger: &Path, args: WaitForRestartWindowArgs) -> anyhow::Result<ExitCode> {
    let url = match &args.rpc_url {
        Some(url) => url.clone(),
        None => resolve_rpc_url(ledger).await?,
    };
    let rpc = NodeRpc::new(url);
    let mut status = status::for_stderr();
    let mut stdout = std::io::stdout();
    let outcome = wait_for_restart_window(&rpc, &args, &mut *status, &mut stdout).await?;
    let report = Report {
        outcome: &outcome,
        timeout: args.timeout,
    };
    if matches!(outcome, Outcome::Ready { .. }) {
        let _ = writeln!(stdout, "{report}");
    } else {
        eprintln!("{report}");
    }
    Ok(exit_code(&outcome))
}

/// The node's RPC URL, from its admin socket (`<ledger>/admin.rpc`, method
/// `rpcAddress`).
pub async fn resolve_rpc_url(ledger: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let mut client = crate::admin::AdminClient::connect(ledger)
        .await
        .with_context(|| {
            format!(
                "cannot ask {} for the node's RPC address",
                ledger.join("admin.rpc").display()
            )
        })?;
    let address = client
        .rpc_address()
        .await
        .context("cannot ask the node for its RPC address")?
        .ok_or_else(|| anyhow::anyhow!("the node serves no RPC (start it with --rpc-port)"))?;
    Ok(format!("http://{address}"))
}

/// 0 when ready, 1 otherwise.
pub fn exit_code(outcome: &Outcome) -> ExitCode {
    match outcome {
        Outcome::Ready { .. } => ExitCode::SUCCESS,
        Outcome::Impossible { .. } | Outcome::TimedOut { .. } => ExitCode::from(1),
    }
}

/// The final line for an outcome.
pub struct Report<'a> {
    pub outcome: &'a Outcome,
    pub timeout: Option<Duration>,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outcome {
            Outcome::Ready { .. } => write!(f, "Ready to restart"),
            Outcome::Impossible { reason, .. } => write!(f, "{reason}"),
            Outcome::TimedOut { last } => {
                write!(f, "Timed out")?;
                if let Some(timeout) = self.timeout {
                    write!(f, " after {timeout:?}")?;
                }
                match last {
                    Some(reason) => write!(f, " waiting: {reason}"),
                    None => write!(f, " before the first answer from the node"),
                }
            }
        }
    }
}

/// The command against a node's RPC: resolves the identity (the node's own
/// by default), measures the slot time, prints agave's header to `out`,
/// then waits.
pub async fn wait_for_restart_window(
    rpc: &NodeRpc,
    args: &WaitForRestartWindowArgs,
    status: &mut dyn StatusSink,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let identity = match &args.identity {
        Some(source) => source.pubkey()?,
        None => rpc.identity().await?,
    };
    let slot_time = match wait::measure_slot_time(rpc, SLOT_TIME_PROBE).await {
        Ok(Some(measured)) => measured,
        Ok(None) => {
            tracing::warn!(
                "the slot did not advance within {SLOT_TIME_PROBE:?}; assuming {DEFAULT_SLOT_TIME:?} slots"
            );
            DEFAULT_SLOT_TIME
        }
        Err(e) => {
            tracing::warn!("cannot measure the slot time ({e:#}); assuming {DEFAULT_SLOT_TIME:?}");
            DEFAULT_SLOT_TIME
        }
    };
    let min_idle_slots = args.min_idle_slots(slot_time);
    let minutes = min_idle_slots as f64 * slot_time.as_secs_f64() / 60.0;
    let _ = writeln!(out, "Identity: {identity}");
    let _ = writeln!(
        out,
        "Minimum Idle Time: {min_idle_slots} slots (~{minutes:.1} minutes at {} ms per slot)",
        slot_time.as_millis()
    );
    let _ = writeln!(
        out,
        "Maximum permitted delinquency: {}%",
        decision::fmt_percent(args.max_delinquent_stake)
    );
    let config = WaitConfig {
        identity,
        thresholds: Thresholds {
            min_idle_slots,
            max_delinquent_stake_percent: args.max_delinquent_stake,
        },
        skip_health_check: args.skip_health_check,
        slot_time,
        timeout: args.timeout,
    };
    wait::wait(rpc, &config, status).await
}
