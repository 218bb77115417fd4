//! `towerlock audit`: the independent safety check of a cluster's audit trail.
//!
//! Exit codes: 0 clean, 1 at least one safety violation, 2 the trail could not
//! be judged (unreadable file, malformed line, no votes at all).

use std::error::Error as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Check an audit trail (`audit.jsonl`) for safety violations: votes breaking
/// an earlier vote's lockout or root, equivocations, duplicate blocks. Prints
/// liveness figures per vote account. Exit 0 when clean, 1 on any violation,
/// 2 when the trail cannot be judged (unreadable, malformed, or without votes).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when clean, 1 on any safety violation, 2 when the trail \
                  cannot be judged (unreadable file, malformed line, no votes)."
)]
pub struct AuditCmd {
    /// The trail written by `towerlock cluster run` (`<dir>/audit.jsonl`).
    pub trail: PathBuf,
    /// Print the report as one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Exit status for a trail that cannot be judged.
const CANNOT_JUDGE: u8 = 2;

impl AuditCmd {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let report = match towerlock_audit::check_file(&self.trail) {
            Ok(report) => report,
            Err(err) => {
                let mut message = err.to_string();
                let mut source = err.source();
                while let Some(cause) = source {
                    message.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                eprintln!("error: {message}");
                return Ok(ExitCode::from(CANNOT_JUDGE));
            }
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}: {report}", self.trail.display());
        }
        Ok(if report.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}
