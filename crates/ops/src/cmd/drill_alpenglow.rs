//! The drill on an Alpenglow cluster (`towerlock drill --consensus
//! alpenglow`): the seed's story with Votor votes and the vote history
//! behind the fence. The manual failover and the restart cycles are the
//! TowerBFT drill's; the hung primary (the zombie) and the killed primary
//! are failed over by the operator's command (the sentinel judges TowerBFT
//! vote accounts). At the end, besides the audit of Votor's offences, every
//! landed vote is checked against the vote history left in etcd.

use std::time::Instant;

use anyhow::Context;
use solana_signer::Signer;
use towerlock_audit::event::Event;
use towerlock_lab::{now_ms, votes_missing_from_etcd};

use super::drill::{expect_exit, step, Drill, Failover, Node};
use super::drill_sentinel::Fault;

impl Drill {
    /// Primary and hot spare, manual failover, restart cycle, the zombie,
    /// another restart cycle, kill -9.
    pub(super) async fn alpenglow_story(&mut self) -> anyhow::Result<()> {
        let (primary, secondary) = self.primary_and_hot_spare().await?;
        let secondary = self.manual_failover(primary, secondary, "manual").await?;
        let (primary, secondary) = self.restart_cycle(secondary, "").await?;
        let secondary = self.fault_failover(primary, secondary, Fault::Hang).await?;
        let (primary, secondary) = self.restart_cycle(secondary, "-2").await?;
        self.fault_failover(primary, secondary, Fault::Kill).await?;
        Ok(())
    }

    /// `fault` on the primary, then the seed's failover command on the
    /// secondary; a hung primary is thawed once fenced out and must stop.
    /// Returns the new holder.
    async fn fault_failover(
        &mut self,
        mut primary: Node,
        secondary: Node,
        fault: Fault,
    ) -> anyhow::Result<Node> {
        let (name, what) = match fault {
            Fault::Kill => ("operator: kill -9", "the primary is killed (kill -9)"),
            Fault::Hang => (
                "operator: SIGSTOP",
                "the primary hangs (SIGSTOP), thawed once fenced out (the zombie)",
            ),
        };
        step(&format!(
            "{what}; the operator runs wait-for-restart-window && set-identity on the secondary"
        ));
        self.wait_for_votes(&primary, 3).await?;
        let since = now_ms();
        let begun = Instant::now();
        match fault {
            Fault::Kill => primary.process.kill(),
            Fault::Hang => primary.process.pause()?,
        }
        self.failover_command(&secondary).await?;
        let switch = begun.elapsed();
        self.wait_for_votes(&secondary, 3).await?;
        let recovered = begun.elapsed();
        if fault == Fault::Hang {
            primary.process.resume()?;
            let reason = expect_exit(&mut primary.process, "a thawed zombie must stop").await?;
            println!("the thawed primary stopped: {reason}");
        }
        let missed = self.missed_slots(&primary, &secondary, since)?;
        println!("secondary votes; slots missed: {missed}");
        self.failovers.push(Failover {
            name,
            missed_slots: missed,
            switch,
            detected: None,
            recovered: Some(recovered),
        });
        Ok(secondary)
    }

    /// Every landed vote of the staked identity is in the vote history left
    /// in etcd (an Alpenglow drill; nothing to check on TowerBFT). Returns
    /// whether that holds.
    pub(super) async fn audit_vote_history(&self) -> anyhow::Result<bool> {
        let identity = self.lab.cluster.keys.identity.pubkey();
        let events = self.lab.cluster.events()?;
        vote_history_verdict(&self.lab.etcd.config(), &identity, &events).await
    }
}

/// Prints whether every landed Votor vote of `identity` in `events` is in
/// the vote history it left in etcd, and returns that (true when no Votor
/// vote landed: nothing to check).
pub(super) async fn vote_history_verdict(
    etcd: &towerlock_etcd::EtcdConfig,
    identity: &solana_pubkey::Pubkey,
    events: &[Event],
) -> anyhow::Result<bool> {
    let votor = events.iter().any(|e| matches!(e, Event::VotorVote(_)));
    if !votor {
        return Ok(true);
    }
    let missing = votes_missing_from_etcd(etcd, identity, events)
        .await
        .context("cannot check the landed votes against the vote history in etcd")?;
    let Some(missing) = missing else {
        println!("vote history: none in etcd, yet Votor votes of {identity} landed");
        return Ok(false);
    };
    println!(
        "vote history in etcd: every landed vote of {identity} is in it: {}",
        if missing.is_empty() { "yes" } else { "NO" }
    );
    for violation in &missing {
        println!("  {violation}");
    }
    Ok(missing.is_empty())
}
