//! The drill's monitoring phases: the sentinel, in-process beside the
//! secondary, promotes it when the primary is killed or hangs.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::mpsc::UnboundedReceiver;
use towerlock_lab::{now_ms, voted_slot};
use towerlock_sentinel::{Config, Entry, Event};

use super::drill::{expect_exit, step, Drill, Failover, Node, WAIT};

/// What happens to the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// kill -9.
    Kill,
    /// SIGSTOP until the secondary votes, then SIGCONT (the zombie).
    Hang,
}

/// Waits for a timeline entry of `event`.
async fn wait_event(events: &mut UnboundedReceiver<Entry>, event: Event) -> anyhow::Result<Entry> {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(entry) = events.recv().await {
            if entry.event == event {
                return Some(entry);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(entry)) => Ok(entry),
        _ => bail!("the sentinel reported no {event:?} within {WAIT:?}"),
    }
}

impl Drill {
    /// Starts the sentinel beside `secondary`, applies `fault` to `primary`,
    /// and waits for the promotion and the first landed vote. Returns the
    /// new holder.
    pub(super) async fn sentinel_failover(
        &mut self,
        mut primary: Node,
        secondary: Node,
        fault: Fault,
    ) -> anyhow::Result<Node> {
        let (name, what) = match fault {
            Fault::Kill => ("sentinel: kill -9", "the primary is killed (kill -9)"),
            Fault::Hang => (
                "sentinel: SIGSTOP",
                "the primary hangs (SIGSTOP), thawed once fenced out",
            ),
        };
        step(&format!(
            "failover by the sentinel beside the secondary: {what}"
        ));
        let mut config = Config::new(
            secondary.process.ledger.clone(),
            self.lab.cluster.identity_file(),
            self.lab.cluster.url.clone(),
        );
        config.etcd = Some(self.lab.etcd.config());
        config.interval = self.slot;
        config.timeline = Some(self.lab.dir.join("sentinel-timeline.jsonl"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(towerlock_sentinel::run_with_events(
            config,
            async move {
                let _ = stopped.await;
            },
            Some(tx),
        ));
        self.wait_for_votes(&primary, 3).await?;
        let since = now_ms();
        let begun = Instant::now();
        match fault {
            Fault::Kill => primary.process.kill(),
            Fault::Hang => primary.process.pause()?,
        }
        let detected = wait_event(&mut events, Event::Detected).await?;
        let detection = Duration::from_millis(detected.ts_ms.saturating_sub(since));
        let committed = wait_event(&mut events, Event::TakeoverCommitted).await?;
        let landed = wait_event(&mut events, Event::FirstVoteLanded).await?;
        let recovery = Duration::from_millis(landed.ts_ms.saturating_sub(since));
        println!(
            "sentinel: detected after {:.0} ms ({}), takeover committed {} ms later, first vote landed {:.0} ms after the fault",
            detection.as_secs_f64() * 1000.0,
            detected.fields.get("reason").and_then(|r| r.as_str()).unwrap_or(""),
            committed.get_u64("ms_since_detected").unwrap_or(0),
            recovery.as_secs_f64() * 1000.0,
        );
        self.wait_for_votes(&secondary, 3).await?;
        let missed = self.missed_slots(&primary, &secondary, since)?;
        let _ = stop.send(());
        let _ = task.await.context("the sentinel's task")??;
        if fault == Fault::Hang {
            self.thaw(&mut primary, &secondary).await?;
        }
        println!("secondary votes; votable slots missed: {missed}");
        self.failovers.push(Failover {
            name,
            missed_slots: missed,
            switch: begun.elapsed(),
            detected: Some(detection),
            recovered: Some(recovery),
        });
        Ok(secondary)
    }

    /// The zombie: thawed, the old primary sends no vote past the tower the
    /// new holder loaded, and exits.
    async fn thaw(&mut self, primary: &mut Node, secondary: &Node) -> anyhow::Result<()> {
        let loaded = secondary.process.status().await?.loaded_last_vote;
        let thawed_at = now_ms();
        primary.process.resume()?;
        let reason =
            expect_exit(&mut primary.process, "thawed, it finds itself fenced out").await?;
        let late: Vec<u64> = self
            .lab
            .cluster
            .accepted_votes(&primary.instance)?
            .iter()
            .filter(|v| v.ts_ms >= thawed_at)
            .map(voted_slot)
            .collect();
        let past_loaded = late.iter().filter(|&&s| Some(s) > loaded).count();
        println!(
            "hung primary thawed and terminated ({reason}); votes accepted after the thaw: {} (past the loaded tower: {past_loaded})",
            late.len()
        );
        if past_loaded > 0 {
            bail!("the thawed primary sent {past_loaded} votes the new holder had not loaded");
        }
        Ok(())
    }
}
