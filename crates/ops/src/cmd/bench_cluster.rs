//! `towerlock bench cluster`: does the local cluster keep its slot clock?

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use towerlock_cluster::genesis::{self, InitOptions};
use towerlock_cluster::server::{now_ms, Server, ServerConfig};

/// Run a cluster with fast slots and many synthetic validators; report how
/// late slots end (the distribution) and the CPU it uses.
#[derive(Debug, clap::Args)]
pub struct BenchClusterArgs {
    /// Slot length in milliseconds.
    #[arg(long, default_value_t = 20)]
    slot_ms: u64,
    /// Synthetic validators.
    #[arg(long, default_value_t = 200)]
    synthetic: u32,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Probability that a leader rotation starts a minor fork.
    #[arg(long, default_value_t = 0.02)]
    fork_rate: f64,
    /// Slots per epoch (small, so that epoch changes happen during the run).
    #[arg(long, default_value_t = 512)]
    epoch_slots: u64,
}

impl BenchClusterArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let dir = ScratchDir::new()?;
        let options = InitOptions {
            validators: 1,
            stake_percent: 10.0,
            slots_per_epoch: self.epoch_slots,
            slot_ms: self.slot_ms,
            fork_rate: self.fork_rate,
            synthetic: self.synthetic,
        };
        genesis::init(dir.path(), &options, now_ms()).context("cannot create the cluster")?;
        let server = Server::bind(ServerConfig {
            dir: dir.path().to_path_buf(),
            slot_ms: Some(self.slot_ms),
            rpc_addr: "127.0.0.1:0".parse().expect("a socket address"),
        })
        .await
        .context("cannot start the cluster")?;
        if cfg!(debug_assertions) {
            eprintln!("note: a debug build; build with --release for meaningful figures");
        }
        println!(
            "running {} synthetic validators, {} ms slots, for {} s ...",
            self.synthetic, self.slot_ms, self.seconds
        );
        let cpu_before = process_cpu_seconds()?;
        let wall = Instant::now();
        let report = server
            .run(tokio::time::sleep(Duration::from_secs(self.seconds)))
            .await
            .context("the cluster failed")?;
        let wall = wall.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds()? - cpu_before;

        let mut late: Vec<u64> = report.lateness_us.clone();
        late.sort_unstable();
        let pct = |p: f64| -> f64 {
            if late.is_empty() {
                return 0.0;
            }
            let i = ((late.len() as f64 - 1.0) * p).round() as usize;
            late[i] as f64 / 1000.0
        };
        let mean = late.iter().sum::<u64>() as f64 / late.len().max(1) as f64 / 1000.0;
        let expected = (report.elapsed.as_millis() as u64) / self.slot_ms;
        let over_slot = late.iter().filter(|l| **l >= self.slot_ms * 1000).count();
        println!("slots ended: {} (expected {expected})", report.slots);
        println!("slot lateness (ms after the deadline):");
        for (name, p) in [
            ("p50", 0.5),
            ("p90", 0.9),
            ("p99", 0.99),
            ("p99.9", 0.999),
            ("max", 1.0),
        ] {
            println!("  {name:>6}: {:8.3}", pct(p));
        }
        println!("    mean: {mean:8.3}");
        println!("  slots late by a whole slot or more: {over_slot}");
        println!(
            "cpu: {cpu:.2} s over {wall:.2} s wall = {:.3} cores",
            cpu / wall
        );
        println!(
            "slot_late_p50_ms={:.3} slot_late_p90_ms={:.3} slot_late_p99_ms={:.3} slot_late_max_ms={:.3} slots={} expected_slots={expected} late_by_a_slot={over_slot} cpu_cores={:.3} synthetic={} slot_ms={}",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(1.0),
            report.slots,
            cpu / wall,
            self.synthetic,
            self.slot_ms
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// A folder under the system's temporary folder, removed on drop.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new() -> anyhow::Result<Self> {
        let name = format!(
            "towerlock-bench-cluster-{}-{}",
            std::process::id(),
            now_ms()
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// User + system CPU time of this process (all threads), from /proc.
fn process_cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("cannot read /proc/self/stat")?;
    // Fields after the command name (which is in parentheses).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line (1-based).
    let ticks: u64 = fields
        .get(11..13)
        .context("unexpected /proc/self/stat")?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    Ok(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
