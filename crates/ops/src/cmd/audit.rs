use std::process::ExitCode;

/// (being written)
#[derive(Debug, clap::Args)]
pub struct AuditCmd {}

impl AuditCmd {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        anyhow::bail!("not implemented yet")
    }
}
