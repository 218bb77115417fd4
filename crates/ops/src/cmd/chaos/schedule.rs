//! The fault schedule: which faults, on what, for how long. A pure function
//! of the seed, so that a run can be replayed with `--seed`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// The kinds of fault chaos injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// SIGKILL a validator; its supervisor restarts it when the fault heals.
    Kill,
    /// SIGSTOP a validator; SIGCONT when the fault heals.
    Pause,
    /// Cut a validator from every etcd member.
    PartitionEtcd,
    /// Cut a validator from the cluster (RPC and websocket).
    PartitionCluster,
    /// Both at once.
    PartitionBoth,
    /// Delay a validator's etcd traffic (fixed plus random).
    DelayEtcd,
    /// Hold a validator's etcd traffic and release it late.
    HoldEtcd,
    /// Throw away etcd's answers to a validator (one-way).
    BlackholeEtcd,
    /// Reset every connection of a validator (etcd and cluster).
    Reset,
    /// Kill one etcd member (the leader half of the time).
    EtcdMember,
    /// Kill two etcd members: no quorum.
    EtcdQuorum,
    /// `set-identity` on both nodes at once, repeatedly.
    SetIdentityRace,
    /// A failover: `set-identity` on the node that does not vote.
    Failover,
    /// Restart a validator with its wall clock 90 s off (ahead for the
    /// primary, behind for the secondary); restart it right when it heals.
    SkewClock,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 14] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::PartitionEtcd,
        FaultKind::PartitionCluster,
        FaultKind::PartitionBoth,
        FaultKind::DelayEtcd,
        FaultKind::HoldEtcd,
        FaultKind::BlackholeEtcd,
        FaultKind::Reset,
        FaultKind::EtcdMember,
        FaultKind::EtcdQuorum,
        FaultKind::SetIdentityRace,
        FaultKind::Failover,
        FaultKind::SkewClock,
    ];

    /// The name used by `--faults`, the log and the report.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::PartitionEtcd => "partition-etcd",
            FaultKind::PartitionCluster => "partition-cluster",
            FaultKind::PartitionBoth => "partition-both",
            FaultKind::DelayEtcd => "delay-etcd",
            FaultKind::HoldEtcd => "hold-etcd",
            FaultKind::BlackholeEtcd => "blackhole-etcd",
            FaultKind::Reset => "reset",
            FaultKind::EtcdMember => "etcd-member",
            FaultKind::EtcdQuorum => "etcd-quorum",
            FaultKind::SetIdentityRace => "set-identity-race",
            FaultKind::Failover => "failover",
            FaultKind::SkewClock => "skew-clock",
        }
    }

    /// Whether the fault aims at one validator (else at etcd or both).
    pub fn targets_node(self) -> bool {
        !matches!(
            self,
            FaultKind::EtcdMember
                | FaultKind::EtcdQuorum
                | FaultKind::SetIdentityRace
                | FaultKind::Failover
        )
    }

    /// Whether the fault is a moment rather than a window.
    pub fn is_instant(self) -> bool {
        matches!(self, FaultKind::Reset | FaultKind::Failover)
    }

    /// The colour of its windows in the timeline.
    pub fn color(self) -> (u8, u8, u8) {
        match self {
            FaultKind::Kill => (214, 39, 40),
            FaultKind::Pause => (148, 103, 189),
            FaultKind::PartitionEtcd => (255, 127, 14),
            FaultKind::PartitionCluster => (140, 86, 75),
            FaultKind::PartitionBoth => (227, 119, 194),
            FaultKind::DelayEtcd => (188, 189, 34),
            FaultKind::HoldEtcd => (23, 190, 207),
            FaultKind::BlackholeEtcd => (127, 127, 127),
            FaultKind::Reset => (31, 119, 180),
            FaultKind::EtcdMember => (174, 199, 232),
            FaultKind::EtcdQuorum => (255, 187, 120),
            FaultKind::SetIdentityRace => (152, 223, 138),
            FaultKind::Failover => (44, 160, 44),
            FaultKind::SkewClock => (99, 99, 0),
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown fault {s:?}; known: {}", names.join(", "))
            })
    }
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Pause before it, after the previous fault healed.
    pub gap: Duration,
    pub kind: FaultKind,
    /// The validator aimed at (0 primary, 1 secondary), or the etcd member
    /// for `etcd-member` (`None`: the leader).
    pub target: Option<usize>,
    /// How long it lasts (zero for a moment).
    pub hold: Duration,
}

/// Faults one after another until `duration` is filled: first every kind
/// of `kinds` once (in a seeded order), then kinds drawn at random. Each
/// lasts 1–6 s (scaled by `slot_ms`/100, at least 1 s) after a gap of 1–4 s.
pub fn plan(seed: u64, kinds: &[FaultKind], duration: Duration, slot_ms: u64) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let scale = (slot_ms as f64 / 100.0).max(0.5);
    let ms = |rng: &mut StdRng, lo: f64, hi: f64| {
        Duration::from_millis((rng.gen_range(lo..hi) * scale * 1000.0) as u64)
    };
    let mut first: Vec<FaultKind> = kinds.to_vec();
    first.shuffle(&mut rng);
    let mut planned = Vec::new();
    let mut total = Duration::ZERO;
    let mut next = 0;
    while next < first.len() || (total < duration && !kinds.is_empty()) {
        let kind = match first.get(next) {
            Some(kind) => *kind,
            None => kinds[rng.gen_range(0..kinds.len())],
        };
        next += 1;
        let gap = ms(&mut rng, 1.0, 4.0);
        let hold = if kind.is_instant() {
            Duration::ZERO
        } else {
            ms(&mut rng, 1.0, 6.0)
        };
        let target = match kind {
            FaultKind::EtcdMember => rng.gen_bool(0.5).then(|| rng.gen_range(0..3)),
            k if k.targets_node() => Some(rng.gen_range(0..2)),
            _ => None,
        };
        total += gap + hold;
        planned.push(Planned {
            gap,
            kind,
            target,
            hold,
        });
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let a = plan(7, &FaultKind::ALL, Duration::from_secs(120), 100);
        let b = plan(7, &FaultKind::ALL, Duration::from_secs(120), 100);
        let c = plan(8, &FaultKind::ALL, Duration::from_secs(120), 100);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn every_kind_comes_first_once() {
        let planned = plan(1, &FaultKind::ALL, Duration::from_secs(90), 100);
        let mut first: Vec<FaultKind> = planned
            .iter()
            .take(FaultKind::ALL.len())
            .map(|p| p.kind)
            .collect();
        first.sort();
        assert_eq!(first, FaultKind::ALL);
        assert!(planned
            .iter()
            .all(|p| p.kind.is_instant() == p.hold.is_zero()));
    }

    #[test]
    fn names_parse_back() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.name().parse::<FaultKind>(), Ok(kind));
        }
        assert!("nope".parse::<FaultKind>().is_err());
    }
}
