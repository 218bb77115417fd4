//! `towerlock bench failover --consensus alpenglow`: repeated manual
//! failovers on a Votor cluster, the vote history behind the fence.
//!
//! Each round: the holder of the staked identity votes, a hot spare is
//! ready; `set-identity` on the spare (the old holder must exit 1, and
//! comes back as the next spare). From the cluster's audit trail (same
//! clock): call → the new holder's first Votor vote received and first
//! counted, and the slots in which neither holder's vote landed. The run
//! ends with the audit (Votor's offences) and every landed vote checked
//! against the vote history left in etcd.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use solana_signer::Signer;
use towerlock_audit::event::Event;
use towerlock_lab::{now_ms, votes_missing_from_etcd, Lab, Role, ValidatorProcess};

use super::bench::{print_header, print_row, Samples};

/// What the Votor bench measures, over all rounds.
#[derive(Default)]
struct VotorFigures {
    set_identity: Samples,
    first_sent: Samples,
    first_landed: Samples,
    missed_slots: Vec<u64>,
}

/// Runs `failovers` rounds on an Alpenglow lab; returns whether the audit
/// and the vote-history check are clean.
pub async fn run(lab: &mut Lab, failovers: u32, slot_ms: u64) -> anyhow::Result<bool> {
    let wait = Duration::from_millis((slot_ms * 150).max(60_000));
    let identity_file = lab.cluster.identity_file();
    let identity_file = identity_file
        .to_str()
        .context("the identity path is not UTF-8")?
        .to_string();
    eprintln!("starting the primary (staked identity)…");
    let (mut holder, mut holder_instance) = lab
        .start_validator("node-0", &lab.primary_args(), Role::Voting, wait)
        .await?;
    eprintln!("starting the secondary (hot spare)…");
    let (mut spare, mut spare_instance) = lab.start_hot_spare("node-1", wait).await?;
    let mut figures = VotorFigures::default();
    for round in 0..failovers as usize {
        lab.cluster
            .wait_for_more_landed(&holder_instance, 3, wait)
            .await
            .with_context(|| holder.log_tail(20))?;
        let start_ms = now_ms();
        let started = Instant::now();
        let out = spare.admin(&["set-identity", &identity_file]).await?;
        figures.set_identity.push(started.elapsed());
        if !out.status.success() {
            bail!(
                "set-identity on {} failed: {}",
                spare.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let first = lab
            .cluster
            .wait_for_more_landed(&spare_instance, 1, wait)
            .await
            .with_context(|| spare.log_tail(20))?;
        let sent = first_sent_ms(lab, &spare_instance, start_ms)?;
        figures
            .first_sent
            .push(Duration::from_millis(sent.saturating_sub(start_ms)));
        figures
            .first_landed
            .push(Duration::from_millis(first.ts_ms.saturating_sub(start_ms)));
        expect_exit(&mut holder, wait).await?;
        let old_last = lab
            .cluster
            .landed_votes(&holder_instance)?
            .iter()
            .map(|v| v.slot)
            .max()
            .unwrap_or(0);
        let missed = first.slot.saturating_sub(old_last + 1);
        figures.missed_slots.push(missed);
        eprintln!(
            "failover {}/{failovers}: {} → {}: first vote sent {} ms, counted {} ms, slots without a vote {missed}",
            round + 1,
            holder.name,
            spare.name,
            sent.saturating_sub(start_ms),
            first.ts_ms.saturating_sub(start_ms),
        );
        if round + 1 < failovers as usize {
            let name = format!("node-{}", round + 2);
            let (next, next_instance) = lab.start_hot_spare(&name, wait).await?;
            holder = std::mem::replace(&mut spare, next);
            holder_instance = std::mem::replace(&mut spare_instance, next_instance);
        }
    }
    lab.cluster.stop().await;
    let report =
        towerlock_audit::check_file(&lab.cluster.audit_path()).context("cannot audit the trail")?;
    let identity = lab.cluster.keys.identity.pubkey();
    let events = lab.cluster.events()?;
    let missing = votes_missing_from_etcd(&lab.etcd.config(), &identity, &events)
        .await?
        .map_or(usize::MAX, |missing| missing.len());
    let clean = report.is_clean() && missing == 0;
    print(&figures, &report, missing, failovers, slot_ms, clean);
    Ok(clean)
}

/// When the cluster received the first Votor vote of `instance` after
/// `start_ms`, counted or not.
fn first_sent_ms(lab: &Lab, instance: &str, start_ms: u64) -> anyhow::Result<u64> {
    lab.cluster
        .events()?
        .iter()
        .find_map(|e| match e {
            Event::VotorVote(v) if v.instance == instance && v.ts_ms >= start_ms => Some(v.ts_ms),
            _ => None,
        })
        .context("the new holder's first vote is not in the trail")
}

async fn expect_exit(holder: &mut ValidatorProcess, wait: Duration) -> anyhow::Result<()> {
    let status = holder.wait_exit(wait).await?;
    if status.code() != Some(1) {
        bail!(
            "{} exited with {status} after the failover, expected status 1\n{}",
            holder.name,
            holder.log_tail(20)
        );
    }
    Ok(())
}

fn print(
    figures: &VotorFigures,
    report: &towerlock_audit::Report,
    missing: usize,
    failovers: u32,
    slot_ms: u64,
    clean: bool,
) {
    println!("\nmanual failovers on Alpenglow (Votor), {slot_ms} ms slots");
    print_header();
    print_row("set-identity", &figures.set_identity);
    print_row("call → first vote sent", &figures.first_sent);
    print_row("call → first vote counted", &figures.first_landed);
    let mut missed = figures.missed_slots.clone();
    missed.sort_unstable();
    let missed_p50 = missed.get(missed.len() / 2).copied().unwrap_or(0);
    let missed_max = missed.last().copied().unwrap_or(0);
    println!("slots without a landed vote per failover: p50 {missed_p50}, max {missed_max}");
    println!("{report}");
    println!(
        "vote history in etcd: landed votes missing from it: {}",
        if missing == usize::MAX {
            "no history stored".to_string()
        } else {
            missing.to_string()
        }
    );
    let slot = slot_ms as f64;
    let (sent_p50, sent_max) = (
        figures.first_sent.quantile_ms(0.5),
        figures.first_sent.quantile_ms(1.0),
    );
    println!(
        "consensus=alpenglow set_identity_p50_ms={:.1} set_identity_max_ms={:.1} \
         first_vote_sent_p50_ms={sent_p50:.1} first_vote_sent_max_ms={sent_max:.1} \
         first_vote_sent_p50_slots={:.2} first_vote_sent_max_slots={:.2} \
         first_vote_landed_p50_ms={:.1} first_vote_landed_max_ms={:.1} \
         missed_slots_p50={missed_p50} missed_slots_max={missed_max} \
         failovers={failovers} slot_ms={slot_ms} audit_clean={clean}",
        figures.set_identity.quantile_ms(0.5),
        figures.set_identity.quantile_ms(1.0),
        sent_p50 / slot,
        sent_max / slot,
        figures.first_landed.quantile_ms(0.5),
        figures.first_landed.quantile_ms(1.0),
    );
}
