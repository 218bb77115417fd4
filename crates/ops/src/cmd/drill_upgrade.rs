//! The drill's upgrade by failover: a copy of the validator binary stands
//! for the new version. The secondary is upgraded and restarted as a hot
//! spare, takes over (the seed's manual failover), the primary is upgraded
//! and reclaims its identity once caught up, and the secondary restarts on
//! the new version: the seed's four steps, with a vote missed at most at
//! each switch.

use anyhow::{bail, Context};
use towerlock_lab::Role;

use super::drill::{step, Drill, Node, WAIT};

impl Drill {
    /// Runs the upgrade from a voting `primary` and a hot-spare
    /// `secondary`; returns them, both on the new version, in those roles.
    pub(super) async fn upgrade(
        &mut self,
        primary: Node,
        mut secondary: Node,
    ) -> anyhow::Result<(Node, Node)> {
        step("upgrade by failover: a copy of the validator binary stands for the new version");
        let new_bin = self.install_new_version()?;
        println!("new version installed at {}", new_bin.display());

        step("1. the secondary is upgraded: `exit --force`, restarted on the new version");
        let out = secondary
            .process
            .admin(&["exit", "--force"])
            .await
            .context("cannot ask the secondary to exit")?;
        if !out.status.success() {
            bail!(
                "the secondary's exit failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let status = secondary.process.wait_exit(WAIT).await?;
        if status.code() != Some(0) {
            bail!("the secondary exited with {status}, expected an orderly exit");
        }
        let secondary = self
            .start_node(
                "secondary-upgraded",
                &self.lab.secondary_args(),
                Role::HotSpare,
            )
            .await?;
        println!("secondary runs the new version as a hot spare");

        step("2. the upgraded secondary takes over");
        let secondary = self
            .manual_failover(primary, secondary, "upgrade: takeover")
            .await?;
        step("3. and 4. the primary, upgraded, reclaims its identity; the secondary restarts");
        let (primary, secondary) = self.restart_cycle(secondary, "-upgraded").await?;
        if let Some(failover) = self.failovers.last_mut() {
            failover.name = "upgrade: reclaim";
        }
        println!("both nodes run the new version");
        Ok((primary, secondary))
    }

    /// Copies the validator binary into `<lab>/new-version/` and makes every
    /// node started from now on (and the admin commands) run the copy.
    fn install_new_version(&mut self) -> anyhow::Result<std::path::PathBuf> {
        let dir = self.lab.dir.join("new-version");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let new_bin = dir.join("towerlock-validator");
        std::fs::copy(&self.bin, &new_bin)
            .with_context(|| format!("cannot copy the validator to {}", new_bin.display()))?;
        self.lab.set_validator_bin(&new_bin);
        self.bin = new_bin.clone();
        Ok(new_bin)
    }
}
