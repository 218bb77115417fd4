//! The simulated fleet of `bench scale`: independent identities, each with
//! its own signed 31-lockout tower and fence, storing once a slot (and
//! fencing its leader slots) through a few shared client connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::Rng;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_etcd::EtcdConfig;
use towerlock_storage::{EtcdTowerStorage, FenceToken, TowerStorage};
use towerlock_tower::{SavedTower, Tower};

use super::bench::Samples;

/// Consecutive leader slots of one rotation, as a leader schedule gives.
pub const LEADER_ROTATION: u64 = 4;

/// One simulated validator.
struct Identity {
    index: usize,
    keypair: Keypair,
    tower: Tower,
    token: FenceToken,
    connection: usize,
    /// When in each slot it stores: the time its replay of the bank ends.
    phase: Duration,
}

/// What one identity measured in one slice.
#[derive(Default)]
pub struct Measured {
    pub stores: Samples,
    pub fences: Samples,
    /// Intended store time → the store call started (the client's lag).
    pub lag: Samples,
    /// Slots without a store: the previous one was still in flight.
    pub missed: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Measured {
    pub fn merge(&mut self, other: Measured) {
        self.stores.extend(other.stores);
        self.fences.extend(other.fences);
        self.lag.extend(other.lag);
        self.missed += other.missed;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// `validators` identities fenced in one etcd, over `connections` clients.
pub struct Fleet {
    identities: Vec<Identity>,
    storages: Vec<EtcdTowerStorage>,
    /// Slot 0 begins here; slots go on counting across runs.
    origin: Instant,
}

impl Fleet {
    /// Connects, builds every identity's tower (31 lockouts and a root,
    /// signed: agave's bytes) and takes every fence.
    pub async fn start(
        config: &EtcdConfig,
        validators: usize,
        connections: usize,
        spread: Duration,
    ) -> anyhow::Result<Self> {
        let mut storages = Vec::new();
        for _ in 0..connections.clamp(1, validators.max(1)) {
            storages.push(
                EtcdTowerStorage::connect(config)
                    .await
                    .context("cannot connect to etcd")?,
            );
        }
        let mut rng = rand::thread_rng();
        let mut pending = tokio::task::JoinSet::new();
        let limit = Arc::new(tokio::sync::Semaphore::new(32));
        for index in 0..validators {
            let keypair = Keypair::new();
            let mut tower = Tower::new(keypair.pubkey());
            for slot in 1..=64 {
                let _ = tower.record_vote(slot, Hash::new_from_array([1; 32]), Hash::default(), 0);
            }
            let connection = index % storages.len();
            let storage = storages[connection].clone();
            let phase = spread.mul_f64(rng.gen::<f64>());
            let limit = Arc::clone(&limit);
            pending.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let token = storage.takeover(&keypair.pubkey()).await?.token;
                anyhow::Ok(Identity {
                    index,
                    keypair,
                    tower,
                    token,
                    connection,
                    phase,
                })
            });
        }
        let mut identities = Vec::with_capacity(validators);
        while let Some(joined) = pending.join_next().await {
            identities.push(joined.context("a takeover task failed")??);
        }
        identities.sort_by_key(|i| i.index);
        Ok(Self {
            identities,
            storages,
            origin: Instant::now(),
        })
    }

    /// Runs every identity from `start` to `end`: slot `n` begins `n`
    /// slots after the fleet started; each identity stores once a slot at
    /// its phase (a leader first fences its slot).
    pub async fn run(
        &mut self,
        start: Instant,
        end: Instant,
        slot: Duration,
    ) -> anyhow::Result<Measured> {
        let origin = self.origin;
        let validators = self.identities.len() as u64;
        let mut tasks = tokio::task::JoinSet::new();
        for identity in std::mem::take(&mut self.identities) {
            let storage = self.storages[identity.connection].clone();
            let clock = Clock {
                origin,
                start,
                end,
                slot,
            };
            tasks.spawn(run_identity(identity, storage, clock, validators));
        }
        let mut measured = Measured::default();
        while let Some(joined) = tasks.join_next().await {
            let (identity, one) = joined.context("an identity's task failed")?;
            self.identities.push(identity);
            measured.merge(one);
        }
        self.identities.sort_by_key(|i| i.index);
        Ok(measured)
    }
}

#[derive(Clone, Copy)]
struct Clock {
    origin: Instant,
    start: Instant,
    end: Instant,
    slot: Duration,
}

impl Clock {
    fn slot_start(&self, n: u64) -> Instant {
        self.origin + self.slot * n as u32
    }

    fn first_slot(&self) -> u64 {
        let since = self.start.saturating_duration_since(self.origin);
        since.as_nanos().div_ceil(self.slot.as_nanos()) as u64
    }
}

/// Whether `identity` of `validators` leads `slot`: rotations of
/// [`LEADER_ROTATION`] slots, in turn.
pub fn leads(identity: usize, validators: u64, slot: u64) -> bool {
    (slot / LEADER_ROTATION) % validators.max(1) == identity as u64
}

async fn run_identity(
    mut identity: Identity,
    storage: EtcdTowerStorage,
    clock: Clock,
    validators: u64,
) -> (Identity, Measured) {
    let mut measured = Measured::default();
    let mut slot = clock.first_slot();
    // Slots of the tower start past the 64 it was built with.
    let base = 100;
    loop {
        let at = clock.slot_start(slot) + identity.phase;
        if at >= clock.end {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let started = Instant::now();
        measured.lag.push(started - at);
        if leads(identity.index, validators, slot) {
            let result = storage
                .fence_leader_slot(&identity.token, base + slot)
                .await;
            note(&mut measured, result.map(drop), started, true);
        }
        let _ = identity.tower.record_vote(
            base + slot,
            Hash::new_from_array([2; 32]),
            Hash::default(),
            0,
        );
        match SavedTower::new(&identity.tower, &identity.keypair) {
            Ok(saved) => {
                let started = Instant::now();
                let result = storage.store(&identity.token, &saved).await;
                note(&mut measured, result.map(drop), started, false);
            }
            Err(err) => note(&mut measured, Err(err), started, false),
        }
        slot = next_slot(&mut measured, &clock, identity.phase, slot);
    }
    (identity, measured)
}

fn note<E: std::fmt::Display>(
    measured: &mut Measured,
    result: Result<(), E>,
    started: Instant,
    fence: bool,
) {
    match result {
        Ok(()) if fence => measured.fences.push(started.elapsed()),
        Ok(()) => measured.stores.push(started.elapsed()),
        Err(err) => {
            measured.errors += 1;
            measured.first_error.get_or_insert(err.to_string());
        }
    }
}

/// The next slot whose store time is still ahead; those passed while the
/// store was in flight are missed (a node stores one tower at a time).
fn next_slot(measured: &mut Measured, clock: &Clock, phase: Duration, slot: u64) -> u64 {
    let now = Instant::now();
    let mut next = slot + 1;
    while clock.slot_start(next) + phase < now {
        next += 1;
        measured.missed += 1;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_identity_leads_one_rotation_in_turn() {
        let led: Vec<usize> = (0..24)
            .filter(|s| leads(1, 3, *s))
            .map(|s| s as usize)
            .collect();
        assert_eq!(led, [4, 5, 6, 7, 16, 17, 18, 19]);
    }
}
