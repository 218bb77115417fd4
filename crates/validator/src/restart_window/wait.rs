//! The poller: asks the node's JSON-RPC what [`decide`] needs, until it
//! says [`Decision::Ready`] or [`Decision::Impossible`], or the timeout
//! passes.
//!
//! Each poll: `getHealth` (unless skipped), `getEpochInfo` (processed),
//! `getLeaderSchedule` for the identity when the epoch changed, and
//! `getVoteAccounts` for the delinquent stake. There is no snapshot wait:
//! the validator takes no snapshots, so `--skip-new-snapshot-check` changes
//! nothing, and the delinquency check always applies (in agave that flag
//! also skipped it, as a side effect of skipping the snapshot wait).

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use serde::Deserialize;
use serde_json::{json, Value};
use solana_pubkey::Pubkey;
use towerlock_wire::client::{ClientError, RpcClient};

use super::decision::{
    decide, Decision, EpochPosition, Health, ImpossibleReason, LeaderSlots, Observation,
    Thresholds, WaitReason,
};
use super::status::{PollStatus, StatusSink};

/// The longest wait between polls (agave polls every 5 s).
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// The shortest wait between polls.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// One RPC call may take this long.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Polls may fail for this long in a row before the wait gives up.
pub const MAX_RPC_OUTAGE: Duration = Duration::from_secs(30);

/// Two slots' time, within [`MIN_POLL_INTERVAL`] and [`MAX_POLL_INTERVAL`].
pub fn poll_interval(slot_time: Duration) -> Duration {
    (slot_time * 2).clamp(MIN_POLL_INTERVAL, MAX_POLL_INTERVAL)
}

/// The node's JSON-RPC, as far as the wait needs it.
pub struct NodeRpc {
    client: RpcClient,
    url: String,
}

impl NodeRpc {
    /// `url` like `http://127.0.0.1:8899`.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        Self {
            client: RpcClient::new(url.clone()),
            url,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, ClientError> {
        match tokio::time::timeout(CALL_TIMEOUT, self.client.call_as(method, params)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Transport(format!(
                "no answer within {CALL_TIMEOUT:?}"
            ))),
        }
    }

    /// `getIdentity`: the node's current identity.
    pub async fn identity(&self) -> anyhow::Result<Pubkey> {
        #[derive(Deserialize)]
        struct Identity {
            identity: String,
        }
        let answer: Identity = self
            .call("getIdentity", json!([]))
            .await
            .with_context(|| format!("getIdentity from {}", self.url))?;
        answer
            .identity
            .parse()
            .map_err(|e| anyhow!("getIdentity answered a bad pubkey {}: {e}", answer.identity))
    }

    /// `getHealth`; any failure counts as unhealthy, as in agave.
    pub async fn health(&self) -> Health {
        match self.call::<String>("getHealth", json!([])).await {
            Ok(answer) if answer == "ok" => Health::Ok,
            Ok(_) => Health::Unknown,
            Err(ClientError::Rpc { data, .. }) => data
                .as_ref()
                .and_then(|d| d.get("numSlotsBehind"))
                .and_then(Value::as_u64)
                .map_or(Health::Unknown, |slots| Health::Behind { slots }),
            Err(_) => Health::Unknown,
        }
    }

    /// `getSlot` at processed commitment.
    pub async fn slot(&self) -> anyhow::Result<u64> {
        self.call("getSlot", json!([{ "commitment": "processed" }]))
            .await
            .with_context(|| format!("getSlot from {}", self.url))
    }

    /// `getEpochInfo` at processed commitment.
    pub async fn epoch_position(&self) -> anyhow::Result<EpochPosition> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct EpochInfo {
            epoch: u64,
            slot_index: u64,
            slots_in_epoch: u64,
            absolute_slot: u64,
        }
        let info: EpochInfo = self
            .call("getEpochInfo", json!([{ "commitment": "processed" }]))
            .await
            .with_context(|| format!("getEpochInfo from {}", self.url))?;
        Ok(EpochPosition {
            epoch: info.epoch,
            absolute_slot: info.absolute_slot,
            slot_index: info.slot_index,
            slots_in_epoch: info.slots_in_epoch,
        })
    }

    /// `getLeaderSchedule` of `position`'s epoch for `identity`, as absolute
    /// slots.
    pub async fn leader_slots(
        &self,
        position: &EpochPosition,
        identity: &Pubkey,
    ) -> anyhow::Result<LeaderSlots> {
        let first = position.first_slot();
        let schedule: Option<std::collections::HashMap<String, Vec<u64>>> = self
            .call(
                "getLeaderSchedule",
                json!([first, { "identity": identity.to_string() }]),
            )
            .await
            .with_context(|| format!("getLeaderSchedule from {}", self.url))?;
        let schedule =
            schedule.ok_or_else(|| anyhow!("Unable to get leader schedule from slot {first}"))?;
        let indices = schedule
            .get(&identity.to_string())
            .cloned()
            .unwrap_or_default();
        Ok(LeaderSlots::from_relative(position.epoch, first, indices))
    }

    /// `getVoteAccounts`: delinquent stake in percent of all stake.
    pub async fn delinquent_stake_percent(&self) -> anyhow::Result<f64> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Account {
            activated_stake: u64,
        }
        #[derive(Deserialize)]
        struct VoteAccounts {
            current: Vec<Account>,
            delinquent: Vec<Account>,
        }
        let accounts: VoteAccounts = self
            .call("getVoteAccounts", json!([]))
            .await
            .with_context(|| format!("getVoteAccounts from {}", self.url))?;
        let sum = |v: &[Account]| {
            v.iter()
                .map(|a| u128::from(a.activated_stake))
                .sum::<u128>()
        };
        let delinquent = sum(&accounts.delinquent);
        let total = delinquent + sum(&accounts.current);
        Ok(if total == 0 {
            0.0
        } else {
            delinquent as f64 * 100.0 / total as f64
        })
    }
}

/// Measures the cluster's slot time from the node's processed slot: from
/// one slot change to another at least ~1 s or 20 slots later. `None` when
/// the slot does not move within `limit`.
pub async fn measure_slot_time(rpc: &NodeRpc, limit: Duration) -> anyhow::Result<Option<Duration>> {
    const SAMPLE: Duration = Duration::from_millis(10);
    const SPAN: Duration = Duration::from_secs(1);
    const SLOTS: u64 = 20;
    let begin = Instant::now();
    let first = rpc.slot().await?;
    // The first change marks a slot boundary.
    let (start_slot, start) = loop {
        if begin.elapsed() > limit {
            return Ok(None);
        }
        tokio::time::sleep(SAMPLE).await;
        let slot = rpc.slot().await?;
        if slot > first {
            break (slot, Instant::now());
        }
    };
    let mut last = (start_slot, start);
    loop {
        tokio::time::sleep(SAMPLE).await;
        let slot = rpc.slot().await?;
        if slot > last.0 {
            last = (slot, Instant::now());
        }
        let slots = last.0 - start_slot;
        let span = last.1 - start;
        if slots >= SLOTS || (slots > 0 && span >= SPAN) {
            return Ok(Some(span / slots as u32));
        }
        if begin.elapsed() > limit {
            return Ok((slots > 0).then(|| span / slots as u32));
        }
    }
}

/// What the wait needs besides the RPC.
#[derive(Debug, Clone)]
pub struct WaitConfig {
    pub identity: Pubkey,
    pub thresholds: Thresholds,
    pub skip_health_check: bool,
    /// The cluster's slot time (for the poll interval and the times shown).
    pub slot_time: Duration,
    pub timeout: Option<Duration>,
}

/// How the wait ended.
#[must_use]
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A good moment, seen at `slot`.
    Ready { slot: u64 },
    /// It cannot become one in this epoch; seen at `slot`.
    Impossible { reason: ImpossibleReason, slot: u64 },
    /// `--timeout` passed; `last` is what it was waiting for.
    TimedOut { last: Option<WaitReason> },
}

/// Polls until ready, impossible or timed out. Fails when the RPC keeps
/// failing for [`MAX_RPC_OUTAGE`].
pub async fn wait(
    rpc: &NodeRpc,
    config: &WaitConfig,
    status: &mut dyn StatusSink,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut last_reason: Option<WaitReason> = None;
    let polling = poll_until_done(rpc, config, status, started, &mut last_reason);
    let result = match config.timeout {
        Some(timeout) => {
            let finished = tokio::time::timeout_at((started + timeout).into(), polling).await;
            match finished {
                Ok(result) => result,
                Err(_) => Ok(Outcome::TimedOut { last: last_reason }),
            }
        }
        None => polling.await,
    };
    status.finish();
    result
}

async fn poll_until_done(
    rpc: &NodeRpc,
    config: &WaitConfig,
    status: &mut dyn StatusSink,
    started: Instant,
    last_reason: &mut Option<WaitReason>,
) -> anyhow::Result<Outcome> {
    let interval = poll_interval(config.slot_time);
    let mut schedule: Option<LeaderSlots> = None;
    let mut failing_since: Option<Instant> = None;
    loop {
        let next_poll = Instant::now() + interval;
        match poll_once(rpc, config, &mut schedule, status).await {
            Ok((position, delinquent, decision)) => {
                failing_since = None;
                match decision {
                    Decision::Ready => {
                        return Ok(Outcome::Ready {
                            slot: position.absolute_slot,
                        })
                    }
                    Decision::Impossible(reason) => {
                        return Ok(Outcome::Impossible {
                            reason,
                            slot: position.absolute_slot,
                        })
                    }
                    Decision::Wait { reason, .. } => {
                        status.waiting(
                            Instant::now(),
                            &PollStatus {
                                elapsed: started.elapsed(),
                                slot: position.absolute_slot,
                                delinquent_stake_percent: delinquent,
                                reason: &reason,
                            },
                        );
                        *last_reason = Some(reason);
                    }
                }
            }
            Err(e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= MAX_RPC_OUTAGE {
                    return Err(e.context(format!(
                        "the node's RPC failed for {MAX_RPC_OUTAGE:?} in a row"
                    )));
                }
                status.note(Instant::now(), &format!("RPC error (retrying): {e:#}"));
            }
        }
        tokio::time::sleep_until(next_poll.into()).await;
    }
}

async fn poll_once(
    rpc: &NodeRpc,
    config: &WaitConfig,
    schedule: &mut Option<LeaderSlots>,
    status: &mut dyn StatusSink,
) -> anyhow::Result<(EpochPosition, Option<f64>, Decision)> {
    let health = if config.skip_health_check {
        None
    } else {
        Some(rpc.health().await)
    };
    let position = rpc.epoch_position().await?;
    if schedule.as_ref().map(LeaderSlots::epoch) != Some(position.epoch) {
        status.note(
            Instant::now(),
            &format!("Fetching leader schedule for epoch {}...", position.epoch),
        );
        *schedule = Some(rpc.leader_slots(&position, &config.identity).await?);
    }
    let delinquent = rpc.delinquent_stake_percent().await?;
    let leader_slots = schedule.as_ref().expect("fetched above");
    let observation = Observation {
        position,
        leader_slots,
        health,
        delinquent_stake_percent: Some(delinquent),
    };
    let decision = decide(&observation, &config.thresholds, config.slot_time);
    Ok((position, Some(delinquent), decision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_interval_shrinks_with_the_slot_time() {
        assert_eq!(
            poll_interval(Duration::from_millis(400)),
            Duration::from_millis(800)
        );
        assert_eq!(poll_interval(Duration::from_millis(10)), MIN_POLL_INTERVAL);
        assert_eq!(poll_interval(Duration::from_secs(30)), MAX_POLL_INTERVAL);
    }
}
