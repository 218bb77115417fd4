//! `towerlock bench storage`: what the fence costs.
//!
//! Every round runs each operation once, in the same order, so that noise
//! from other work on the machine falls on all of them alike.

use std::{process::ExitCode, time::Instant};

use anyhow::Context;
use clap::Args;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_etcd::{EtcdArgs, EtcdConfig};
use towerlock_lab::EtcdProcess;
use towerlock_storage::{EtcdTowerStorage, FileTowerStorage, TowerStorage};
use towerlock_tower::{SavedTower, Tower};

use super::bench::{print_header, print_row, Samples};

#[derive(Debug, Args)]
pub struct BenchStorageArgs {
    /// Rounds to run (each round: one of every operation).
    #[arg(long, default_value_t = 500)]
    rounds: usize,
    /// Measure a takeover every this many rounds.
    #[arg(long, default_value_t = 5)]
    takeover_every: usize,
    /// Use this etcd instead of starting one (all etcd flags required).
    #[command(flatten)]
    etcd: Option<EtcdArgs>,
}

impl BenchStorageArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let (_etcd, config) = match &self.etcd {
            Some(args) => (None, EtcdConfig::from(args)),
            None => {
                eprintln!("starting a local etcd with mutual TLS…");
                let etcd = EtcdProcess::start().await?;
                let config = etcd.config();
                (Some(etcd), config)
            }
        };
        let storage = EtcdTowerStorage::connect(&config)
            .await
            .context("cannot connect to etcd")?;
        let dir = tempfile::tempdir().context("cannot create a scratch directory")?;
        let synced = FileTowerStorage::new(dir.path().join("fsync"));
        let unsynced = FileTowerStorage::new(dir.path().join("no-fsync")).without_fsync();

        // A full tower (31 lockouts and a root): the size a validator stores.
        let keypair = Keypair::new();
        let identity = keypair.pubkey();
        let mut tower = Tower::new(identity);
        for slot in 1..=64 {
            let _ = tower.record_vote(slot, Hash::new_from_array([1; 32]), Hash::default(), 0);
        }
        let saved = SavedTower::new(&tower, &keypair)?;
        let bytes = saved.to_bytes();
        let plain_key = format!("{}bench/{identity}/plain", config.key_prefix);

        let mut token = storage.takeover(&identity).await?.token;
        let synced_token = synced.takeover(&identity).await?.token;
        let unsynced_token = unsynced.takeover(&identity).await?.token;
        let mut kv = storage.client().kv_client();

        let (mut fenced, mut plain, mut fsync, mut no_fsync, mut takeover) = Default::default();
        let rounds = self.rounds.max(1);
        let progress_every = (rounds / 10).max(1);
        for round in 0..rounds {
            // Alternate which of the two goes first, so neither always pays
            // for whatever the previous operation left behind.
            if round % 2 == 0 {
                time(&mut fenced, storage.store(&token, &saved)).await?;
                time(&mut plain, kv.put(plain_key.as_str(), bytes.clone(), None)).await?;
            } else {
                time(&mut plain, kv.put(plain_key.as_str(), bytes.clone(), None)).await?;
                time(&mut fenced, storage.store(&token, &saved)).await?;
            }
            time(&mut fsync, synced.store(&synced_token, &saved)).await?;
            time(&mut no_fsync, unsynced.store(&unsynced_token, &saved)).await?;
            if round % self.takeover_every.max(1) == 0 {
                let started = Instant::now();
                token = storage.takeover(&identity).await?.token;
                Samples::push(&mut takeover, started.elapsed());
            }
            if (round + 1) % progress_every == 0 {
                eprint!("\r{} / {rounds} rounds", round + 1);
            }
        }
        eprintln!();
        // Leave nothing behind in a shared etcd.
        kv.delete(plain_key.as_str(), None).await?;
        for name in ["instance", "tower"] {
            kv.delete(storage.key(&identity, name), None).await?;
        }

        print_header();
        print_row("etcd fenced store", &fenced);
        print_row("etcd plain put", &plain);
        print_row("file store, fsync", &fsync);
        print_row("file store, no fsync (agave)", &no_fsync);
        print_row("etcd takeover", &takeover);
        let ratio = fenced.quantile_ms(0.5) / plain.quantile_ms(0.5);
        println!(
            "fenced/plain p50 ratio {ratio:.2} (target ≤ 1.25); tower {} bytes",
            bytes.len()
        );
        println!(
            "fenced_p50_ms={:.3} plain_p50_ms={:.3} ratio={ratio:.2} file_fsync_p50_ms={:.3} file_nofsync_p50_ms={:.3} takeover_p50_ms={:.3} fenced_p99_ms={:.3} plain_p99_ms={:.3}",
            fenced.quantile_ms(0.5),
            plain.quantile_ms(0.5),
            fsync.quantile_ms(0.5),
            no_fsync.quantile_ms(0.5),
            takeover.quantile_ms(0.5),
            fenced.quantile_ms(0.99),
            plain.quantile_ms(0.99),
        );
        Ok(ExitCode::SUCCESS)
    }
}

async fn time<T, E>(
    samples: &mut Samples,
    operation: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    operation.await?;
    samples.push(started.elapsed());
    Ok(())
}
