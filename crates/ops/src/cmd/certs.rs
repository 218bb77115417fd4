use std::process::ExitCode;

/// (being written)
#[derive(Debug, clap::Args)]
pub struct CertsCmd {}

impl CertsCmd {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        anyhow::bail!("not implemented yet")
    }
}
