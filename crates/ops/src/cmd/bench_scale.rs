//! `towerlock bench scale`: how many validators one etcd cluster carries.
//!
//! N simulated identities, each with its own signed 31-lockout tower and
//! fence, store once a 400 ms slot (and fence their leader slots) against
//! one etcd member and against three, with mutual TLS, the seed's
//! compaction flags and a `--quota-backend-bytes`. The two clusters run
//! side by side and take the load in alternating slices, so that noise
//! from other work on the machine falls on both alike.
//!
//! Connections: a real deployment has one `EtcdTowerStorage` (one client
//! connection per endpoint) per validator process. One process opening a
//! thousand TLS connections would measure this process's connection
//! handling more than etcd, so the identities share `--connections`
//! clients (default 8), round robin: each is an HTTP/2 connection that
//! multiplexes its identities' requests, and etcd serves every request in a
//! goroutine of its own whatever connection it came on.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::bench::{print_header, print_row};
use super::bench_scale_etcd::{Target, Usage};
use super::bench_scale_fleet::{Fleet, Measured};

/// etcd's revision compactor (the seed's `--auto-compaction-mode
/// revision`) runs every five minutes: the history between two runs is
/// what the database holds at most.
const COMPACTION_INTERVAL_S: f64 = 300.0;

/// N simulated validators storing their towers in etcd, against one member
/// and three.
#[derive(Debug, Args)]
pub struct BenchScaleArgs {
    /// Simulated validators (independent identities).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    validators: u32,
    /// Search the largest number of validators whose store p99 stays under
    /// --p99-limit-ms (doubling from --validators / 8, then bisecting;
    /// one slice per step).
    #[arg(long)]
    find: bool,
    /// Load only a cluster of this many members, 1 or 3 (default: both,
    /// alternating).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["1", "3"]))]
    members: Option<String>,
    /// Measured minutes per cluster (longer runs: opt in).
    #[arg(long, default_value_t = 0.5)]
    minutes: f64,
    /// Length of one slice of load, in seconds.
    #[arg(long, default_value_t = 10)]
    slice_seconds: u64,
    /// Client connections the identities share (each: an EtcdTowerStorage).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// Slot length in milliseconds.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(20..))]
    slot_ms: u64,
    /// Stores of all validators fall within this many ms after each slot's
    /// start, each at a fixed random point (default: the whole slot; less
    /// models validators replaying a bank at the same moment).
    #[arg(long)]
    spread_ms: Option<u64>,
    /// etcd's --quota-backend-bytes (a quota, not an allocation).
    #[arg(long, default_value_t = 8 << 30)]
    quota_backend_bytes: u64,
    /// The store p99 a validator can live with, for --find and the verdict.
    #[arg(long, default_value_t = 50.0)]
    p99_limit_ms: f64,
}

/// One cluster's figures at one fleet size.
struct Result {
    name: String,
    members: usize,
    validators: usize,
    measured: Measured,
    usage: Usage,
    seconds: f64,
}

impl Result {
    fn new(target: &Target, validators: usize) -> Self {
        Self {
            name: target.name.clone(),
            members: target.members,
            validators,
            measured: Measured::default(),
            usage: Usage::default(),
            seconds: 0.0,
        }
    }

    fn p99(&self) -> f64 {
        self.measured.stores.quantile_ms(0.99)
    }

    fn writes(&self) -> f64 {
        (self.measured.stores.len() + self.measured.fences.len()) as f64
    }

    /// Whether this size is carried: store p99 under the limit, no error,
    /// under 1% of the slots missed.
    fn carried(&self, limit_ms: f64) -> bool {
        let slots = self.measured.stores.len() as f64 + self.measured.missed as f64;
        self.p99() < limit_ms
            && self.measured.errors == 0
            && (self.measured.missed as f64) < 0.01 * slots.max(1.0)
    }

    fn bytes_per_write(&self) -> f64 {
        self.usage.db_in_use_growth / self.writes().max(1.0)
    }

    fn growth_per_hour(&self) -> f64 {
        self.usage.db_in_use_growth / self.seconds.max(1e-9) * 3600.0
    }
}

impl BenchScaleArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        if cfg!(debug_assertions) {
            eprintln!("note: a debug build; build with --release for meaningful figures");
        }
        let sizes: Vec<usize> = match self.members.as_deref() {
            Some("1") => vec![1],
            Some(_) => vec![3],
            None => vec![1, 3],
        };
        let mut targets = Vec::new();
        for members in sizes {
            eprintln!("starting etcd, {members} member(s), mutual TLS…");
            targets.push(Target::start(members, self.quota_backend_bytes).await?);
        }
        if self.find {
            let mut found = Vec::new();
            for target in &targets {
                found.push(self.find(target).await?);
            }
            self.print_found(&found);
        } else {
            let results = self.alternate(&targets).await?;
            self.print(&results);
        }
        Ok(ExitCode::SUCCESS)
    }

    fn slot(&self) -> Duration {
        Duration::from_millis(self.slot_ms)
    }

    fn spread(&self) -> Duration {
        Duration::from_millis(self.spread_ms.unwrap_or(self.slot_ms).min(self.slot_ms))
    }

    async fn fleet(&self, target: &Target, validators: usize) -> anyhow::Result<Fleet> {
        eprintln!(
            "{}: {validators} identities take their fences…",
            target.name
        );
        let mut fleet = Fleet::start(
            &target.config,
            validators,
            self.connections as usize,
            self.spread(),
        )
        .await?;
        // Warm up: every identity stores a few times, unmeasured.
        let now = Instant::now();
        fleet.run(now, now + self.slot() * 5, self.slot()).await?;
        Ok(fleet)
    }

    /// One slice of load on `fleet`, added to `result`.
    async fn slice(
        &self,
        target: &Target,
        fleet: &mut Fleet,
        result: &mut Result,
    ) -> anyhow::Result<()> {
        let before = target.read().await?;
        let start = Instant::now();
        let length = Duration::from_secs(self.slice_seconds.max(1));
        let measured = fleet.run(start, start + length, self.slot()).await?;
        result.seconds += start.elapsed().as_secs_f64();
        let after = target.read().await?;
        result.usage.add(&before, &after);
        result.measured.merge(measured);
        Ok(())
    }

    /// The fixed size on every target, in alternating slices.
    async fn alternate(&self, targets: &[Target]) -> anyhow::Result<Vec<Result>> {
        let validators = self.validators as usize;
        let mut fleets = Vec::new();
        let mut results = Vec::new();
        for target in targets {
            fleets.push(self.fleet(target, validators).await?);
            results.push(Result::new(target, validators));
        }
        let slices = ((self.minutes * 60.0) / self.slice_seconds.max(1) as f64)
            .ceil()
            .max(1.0) as usize;
        for round in 0..slices {
            let mut order: Vec<usize> = (0..targets.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                self.slice(&targets[i], &mut fleets[i], &mut results[i])
                    .await?;
                let r = &results[i];
                eprintln!(
                    "slice {}/{slices} {}: {} stores, p99 so far {:.2} ms",
                    round + 1,
                    r.name,
                    r.measured.stores.len(),
                    r.p99()
                );
            }
        }
        Ok(results)
    }

    /// The largest fleet whose store p99 stays under the limit: doubling,
    /// then bisecting, one slice per step.
    async fn find(&self, target: &Target) -> anyhow::Result<Found> {
        let mut steps = Vec::new();
        let (mut good, mut bad): (Option<usize>, Option<usize>) = (None, None);
        let mut n = (self.validators as usize / 8).max(1);
        while steps.len() < 12 {
            let mut fleet = self.fleet(target, n).await?;
            let mut result = Result::new(target, n);
            self.slice(target, &mut fleet, &mut result).await?;
            drop(fleet);
            let carried = result.carried(self.p99_limit_ms);
            eprintln!(
                "{}: {n} validators: store p99 {:.2} ms, {} missed, {} errors: {}",
                target.name,
                result.p99(),
                result.measured.missed,
                result.measured.errors,
                if carried { "carried" } else { "too many" }
            );
            steps.push(result);
            if carried {
                good = Some(n);
            } else {
                bad = Some(n);
            }
            n = match (good, bad) {
                (Some(g), None) => g * 2,
                (None, Some(b)) if b > 1 => b / 2,
                (Some(g), Some(b)) if b - g > (g / 10).max(1) => g + (b - g) / 2,
                _ => break,
            };
        }
        Ok(Found {
            name: target.name.clone(),
            members: target.members,
            largest: good.unwrap_or(0),
            steps,
        })
    }
}

/// What `--find` found on one target.
struct Found {
    name: String,
    members: usize,
    largest: usize,
    steps: Vec<Result>,
}

impl BenchScaleArgs {
    fn print(&self, results: &[Result]) {
        println!(
            "{} simulated validators, one store per {} ms slot each (spread over {} ms) plus \
             leader-slot fences, over {} client connections; etcd with mutual TLS, \
             --auto-compaction-mode revision --auto-compaction-retention 2, \
             --quota-backend-bytes {}",
            self.validators,
            self.slot_ms,
            self.spread().as_millis(),
            self.connections,
            self.quota_backend_bytes
        );
        print_header();
        for r in results {
            print_row(&format!("store, {}", r.name), &r.measured.stores);
            print_row(&format!("leader fence, {}", r.name), &r.measured.fences);
            print_row(&format!("client lag, {}", r.name), &r.measured.lag);
        }
        println!();
        for r in results {
            print_usage(r);
        }
        if let [one, three] = results {
            println!(
                "store p50 ratio 3 members / 1 member: {:.2}; p99 ratio: {:.2}",
                three.measured.stores.quantile_ms(0.5) / one.measured.stores.quantile_ms(0.5),
                three.p99() / one.p99()
            );
        }
        let verdict = results.iter().find(|r| r.members == 3).map(|r| {
            let met = r.validators >= 1000 && r.carried(self.p99_limit_ms);
            println!(
                "target ≥ 1000 validators per three-member cluster (store p99 < {} ms): {} \
                 validators, p99 {:.2} ms: {}",
                self.p99_limit_ms,
                r.validators,
                r.p99(),
                if met { "met" } else { "NOT met at this size" }
            );
            met
        });
        self.print_quota(results);
        self.print_line(results, verdict);
    }

    /// What an operator should set: twice the history of one compaction
    /// interval at the fleet's full rate, in whole GiB, at least etcd's
    /// 2 GiB default.
    fn print_quota(&self, results: &[Result]) {
        for r in results {
            let (gib, window) = quota_gib(r, self.slot_ms);
            println!(
                "{}: the database grew {:.0} MB per hour of this load ({:.0} bytes per write, \
                 {:.1} MB per validator-hour at one write a slot) until compaction, which runs \
                 every 5 minutes: {} validators keep at most {:.0} MB of history; set \
                 --quota-backend-bytes to {gib} GiB ({} bytes) for them",
                r.name,
                r.growth_per_hour() / 1e6,
                r.bytes_per_write(),
                self.mb_per_validator_hour(r),
                r.validators,
                window / 1e6,
                gib << 30,
            );
        }
    }

    /// Database growth per validator and hour at one write a slot.
    fn mb_per_validator_hour(&self, r: &Result) -> f64 {
        r.bytes_per_write() * 3600.0 * 1000.0 / self.slot_ms as f64 / 1e6
    }

    fn print_line(&self, results: &[Result], verdict: Option<bool>) {
        let mut line = Vec::new();
        for r in results {
            let m = format!("m{}", r.members);
            let u = &r.usage;
            line.extend([
                format!("{m}_store_p50_ms={:.3}", r.measured.stores.quantile_ms(0.5)),
                format!("{m}_store_p99_ms={:.3}", r.p99()),
                format!("{m}_store_max_ms={:.3}", r.measured.stores.quantile_ms(1.0)),
                format!(
                    "{m}_fence_p99_ms={:.3}",
                    r.measured.fences.quantile_ms(0.99)
                ),
                format!("{m}_writes_per_s={:.0}", r.writes() / r.seconds.max(1e-9)),
                format!("{m}_etcd_cores={:.2}", u.etcd_cpu_seconds / r.seconds),
                format!("{m}_client_cores={:.2}", u.client_cpu_seconds / r.seconds),
                format!("{m}_fsync_mean_ms={:.3}", u.fsync_mean_ms()),
                format!("{m}_db_mb_per_hour={:.1}", r.growth_per_hour() / 1e6),
                format!(
                    "{m}_mb_per_validator_hour={:.1}",
                    self.mb_per_validator_hour(r)
                ),
                format!("{m}_quota_gib={}", quota_gib(r, self.slot_ms).0),
                format!("{m}_missed={}", r.measured.missed),
                format!("{m}_errors={}", r.measured.errors),
            ]);
        }
        if let [one, three] = results {
            line.push(format!("p99_ratio={:.2}", three.p99() / one.p99()));
        }
        line.push(format!("validators={}", self.validators));
        line.push(format!("connections={}", self.connections));
        line.push(format!("slot_ms={}", self.slot_ms));
        if let Some(met) = verdict {
            line.push(format!("target_met={met}"));
        }
        println!("{}", line.join(" "));
    }

    fn print_found(&self, found: &[Found]) {
        println!(
            "largest fleet whose store p99 stays under {} ms ({} ms slots, {} connections, \
             {} s per step)",
            self.p99_limit_ms, self.slot_ms, self.connections, self.slice_seconds
        );
        println!(
            "{:<10} {:>10} {:>9} {:>9} {:>7} {:>7} {:>8} {:>8} {:>9}",
            "etcd",
            "validators",
            "p50 ms",
            "p99 ms",
            "missed",
            "errors",
            "etcd cpu",
            "client",
            "fsync ms"
        );
        for f in found {
            for r in &f.steps {
                println!(
                    "{:<10} {:>10} {:>9.2} {:>9.2} {:>7} {:>7} {:>8.2} {:>8.2} {:>9.3}",
                    f.name,
                    r.validators,
                    r.measured.stores.quantile_ms(0.5),
                    r.p99(),
                    r.measured.missed,
                    r.measured.errors,
                    r.usage.etcd_cpu_seconds / r.seconds,
                    r.usage.client_cpu_seconds / r.seconds,
                    r.usage.fsync_mean_ms()
                );
            }
            println!("{}: largest carried: {} validators", f.name, f.largest);
        }
        if let Some(error) = found
            .iter()
            .flat_map(|f| &f.steps)
            .find_map(|r| r.measured.first_error.as_deref())
        {
            println!("first error: {error}");
        }
        let mut line: Vec<String> = found
            .iter()
            .map(|f| format!("m{}_max_validators={}", f.members, f.largest))
            .collect();
        if let Some(three) = found.iter().find(|f| f.members == 3) {
            line.push(format!("target_met={}", three.largest >= 1000));
        }
        line.push(format!("connections={}", self.connections));
        line.push(format!("slot_ms={}", self.slot_ms));
        println!("{}", line.join(" "));
    }
}

fn print_usage(r: &Result) {
    let u = &r.usage;
    println!(
        "{}: {:.0} writes/s; etcd CPU {:.2} cores, this client {:.2} cores (of {} on this \
         machine); WAL fsync mean {:.3} ms, p99 ≤ {:.1} ms ({:.0}/s); {} slots missed, {} errors",
        r.name,
        r.writes() / r.seconds.max(1e-9),
        u.etcd_cpu_seconds / r.seconds,
        u.client_cpu_seconds / r.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        u.fsync_mean_ms(),
        u.fsync_quantile_ms(0.99),
        u.fsync_count / r.seconds / r.members as f64,
        r.measured.missed,
        r.measured.errors
    );
    if let Some(error) = &r.measured.first_error {
        println!("  first error: {error}");
    }
}

/// The quota to set for `r`'s fleet (GiB) and the history of one
/// compaction interval at the full rate of its validators (bytes): one
/// write per validator per slot.
fn quota_gib(r: &Result, slot_ms: u64) -> (u64, f64) {
    let writes = r.validators as f64 * COMPACTION_INTERVAL_S * 1000.0 / slot_ms as f64;
    let window = r.bytes_per_write() * writes;
    let gib = (2.0 * window / f64::from(1u32 << 30)).ceil() as u64;
    (gib.max(2), window)
}
