use std::process::ExitCode;

/// (being written)
#[derive(Debug, clap::Args)]
pub struct ClusterCmd {}

impl ClusterCmd {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        anyhow::bail!("not implemented yet")
    }
}
