//! Faults carried out on the [`World`]: each one applied, held for its
//! time while the supervisor runs, healed, and logged with timestamps.

use std::time::{Duration, Instant};

use serde::Serialize;
use towerlock_lab::{now_ms, Direction, Fault};

use super::schedule::{FaultKind, Planned};
use super::world::{Seen, World};

/// How long one `set-identity` may take.
const ADMIN_DEADLINE: Duration = Duration::from_secs(10);

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    pub kind: String,
    /// What it hit: a node's name, `etcd m1`, `both nodes`.
    pub target: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// What happened (e.g. how many set-identity calls succeeded).
    pub detail: String,
    /// Its colour in the timeline (`#rrggbb`).
    pub color: String,
}

/// The hook a sentinel plugs into: decides and performs a failover.
/// Chaos's own does what monitoring would: `set-identity` on the node that
/// does not vote.
pub trait FailoverTrigger {
    /// Performs one failover; returns what it did.
    fn failover<'a>(
        &'a mut self,
        world: &'a mut World,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + 'a>>;
}

/// `set-identity` on the hot spare, as a monitoring script would.
pub struct SetIdentityOnSpare;

impl FailoverTrigger for SetIdentityOnSpare {
    fn failover<'a>(
        &'a mut self,
        world: &'a mut World,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + 'a>> {
        Box::pin(async move {
            for index in 0..world.nodes.len() {
                if world.observe(index).await == Seen::HotSpare {
                    let ok = set_identity(world, index).await;
                    return format!("set-identity on {}: {ok}", world.nodes[index].name);
                }
            }
            "no hot spare to promote".into()
        })
    }
}

async fn set_identity(world: &World, index: usize) -> String {
    let node = &world.nodes[index].process;
    let args = ["set-identity", world.identity_file.as_str()];
    let call = node.admin(&args);
    match tokio::time::timeout(ADMIN_DEADLINE, call).await {
        Ok(Ok(out)) if out.status.success() => "ok".into(),
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr);
            format!("refused ({})", err.lines().last().unwrap_or("").trim())
        }
        Ok(Err(err)) => format!("failed ({err})"),
        Err(_) => "no answer".into(),
    }
}

/// Applies `planned`, holds it while supervising, heals it; returns its
/// record.
pub async fn inject(
    world: &mut World,
    planned: &Planned,
    trigger: &mut dyn FailoverTrigger,
) -> anyhow::Result<FaultRecord> {
    let start_ms = now_ms();
    let until = Instant::now() + planned.hold;
    let node = planned.target.unwrap_or(0).min(world.nodes.len() - 1);
    let name = world.nodes[node].name.to_string();
    let (target, detail) = match planned.kind {
        FaultKind::EtcdMember | FaultKind::EtcdQuorum => etcd_loss(world, planned, until).await?,
        FaultKind::SetIdentityRace => ("both nodes".into(), race(world, until).await?),
        FaultKind::Failover => ("hot spare".into(), trigger.failover(world).await),
        kind => (name, node_fault(world, kind, node, until).await?),
    };
    Ok(FaultRecord {
        kind: planned.kind.name().into(),
        target,
        start_ms,
        end_ms: now_ms(),
        detail,
        color: hex(planned.kind.color()),
    })
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A fault on one validator or its links.
async fn node_fault(
    world: &mut World,
    kind: FaultKind,
    index: usize,
    until: Instant,
) -> anyhow::Result<String> {
    let node = &mut world.nodes[index];
    let delay = Fault::Delay {
        fixed: Duration::from_millis(300),
        jitter: Duration::from_millis(900),
    };
    match kind {
        FaultKind::Kill => {
            node.held_down = true;
            node.process.kill();
        }
        FaultKind::Pause => node.process.pause().map_or((), drop),
        FaultKind::PartitionEtcd => node.set_etcd(Fault::Partition),
        FaultKind::PartitionCluster => node.cluster_link.set(Fault::Partition),
        FaultKind::PartitionBoth => {
            node.set_etcd(Fault::Partition);
            node.cluster_link.set(Fault::Partition);
        }
        FaultKind::DelayEtcd => node.set_etcd(delay),
        FaultKind::HoldEtcd => node.set_etcd(Fault::Hold),
        FaultKind::BlackholeEtcd => node.set_etcd(Fault::Blackhole(Direction::Downstream)),
        FaultKind::Reset => {
            node.etcd_links.iter().for_each(|l| l.reset());
            node.cluster_link.reset();
        }
        FaultKind::SkewClock => {
            let offset = if index == 0 { "90000" } else { "-90000" };
            let mut args = node.process.args().to_vec();
            args.extend(["--clock-offset-ms".into(), offset.into()]);
            node.process.restart_with(args)?;
            node.restarts += 1;
        }
        _ => {}
    }
    world.run_until(until).await?;
    let node = &mut world.nodes[index];
    let detail = match kind {
        FaultKind::Kill => {
            node.held_down = false;
            node.process.restart()?;
            node.restarts += 1;
            "SIGKILL, restarted by its supervisor".to_string()
        }
        FaultKind::Pause => {
            let _ = node.process.resume();
            "SIGSTOP, then SIGCONT".into()
        }
        FaultKind::SkewClock => {
            let mut args = node.process.args().to_vec();
            args.truncate(args.len() - 2);
            node.process.restart_with(args)?;
            node.restarts += 1;
            "restarted with its clock 90 s off, then with the true clock".into()
        }
        _ => {
            let held: u64 = node.etcd_links.iter().map(|l| l.stats().held).sum();
            node.heal_links();
            format!("healed ({held} bytes released)")
        }
    };
    Ok(detail)
}

/// One etcd member lost (the leader when the plan names none), or two.
async fn etcd_loss(
    world: &mut World,
    planned: &Planned,
    until: Instant,
) -> anyhow::Result<(String, String)> {
    let leader = tokio::time::timeout(Duration::from_secs(3), world.etcd.leader())
        .await
        .ok()
        .flatten();
    let first = planned.target.or(leader).unwrap_or(0);
    let mut lost = vec![first];
    if planned.kind == FaultKind::EtcdQuorum {
        lost.push((first + 1) % world.etcd.size());
    }
    for member in &lost {
        world.etcd.kill(*member);
    }
    world.run_until(until).await?;
    for member in &lost {
        world.etcd.restart(*member).await?;
    }
    let names: Vec<String> = lost.iter().map(|m| format!("m{m}")).collect();
    let was_leader = if leader == Some(first) {
        " (the leader)"
    } else {
        ""
    };
    Ok((
        format!("etcd {}", names.join("+")),
        format!("killed{was_leader}, restarted"),
    ))
}

/// `set-identity` on both nodes at once, again and again until `until`.
async fn race(world: &mut World, until: Instant) -> anyhow::Result<String> {
    let mut rounds = 0;
    let mut outcomes = Vec::new();
    loop {
        rounds += 1;
        let (a, b) = tokio::join!(set_identity(world, 0), set_identity(world, 1));
        outcomes.push(format!("{a}/{b}"));
        world.tick().await?;
        if Instant::now() >= until {
            break;
        }
    }
    let ok = outcomes.iter().filter(|o| o.contains("ok")).count();
    Ok(format!("{rounds} rounds, {ok} with a success"))
}
