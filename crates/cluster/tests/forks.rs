//! Minor forks happen at the configured rate, are abandoned, and are pruned
//! once the root passes them; roots keep up with the tip.

mod common;

use common::Fixture;
use towerlock_cluster::genesis::InitOptions;

fn run(fork_rate: f64, slots: u64) -> (Fixture, u64) {
    let mut f = Fixture::new(InitOptions {
        fork_rate,
        slots_per_epoch: 512,
        synthetic: 30,
        ..InitOptions::default()
    });
    // Count the rotations where a synthetic leader could fork: its first
    // slot, with a tip above the root.
    let mut eligible = 0;
    for _ in 0..slots {
        let slot = f.cluster.current_slot();
        let leader = f.cluster.leader_of(slot);
        let ours = f.cluster.ours().iter().any(|v| v.identity == leader);
        if slot.is_multiple_of(4) && !ours && f.cluster.tip() != f.cluster.root() {
            eligible += 1;
        }
        f.step(1);
    }
    (f, eligible)
}

#[test]
fn forks_happen_at_the_configured_rate_and_are_pruned() {
    let rate = 0.25;
    let (f, eligible) = run(rate, 2500);
    let stats = f.cluster.stats().clone();
    let expected = rate * eligible as f64;
    let sigma = (eligible as f64 * rate * (1.0 - rate)).sqrt();
    assert!(
        (stats.forks_started as f64 - expected).abs() < 5.0 * sigma,
        "{} forks in {eligible} rotations, expected about {expected:.0}",
        stats.forks_started
    );
    // Every fork left one abandoned bank; all but the most recent are pruned.
    assert!(stats.banks_pruned_off_fork + 64 >= stats.forks_started);
    assert!(stats.banks_pruned_off_fork > 0);
    assert_live_tree_is_rooted(&f);
    // Roots keep up: the cluster roots ~32 votes behind the tip.
    assert!(f.cluster.root() + 128 > f.cluster.tip(), "{:?}", stats);
}

#[test]
fn no_forks_at_rate_zero() {
    let (f, _) = run(0.0, 1000);
    assert_eq!(f.cluster.stats().forks_started, 0);
    assert_eq!(f.cluster.stats().banks_pruned_off_fork, 0);
    assert_live_tree_is_rooted(&f);
}

/// Below the root only ancestors of the root remain; above it only descendants.
fn assert_live_tree_is_rooted(f: &Fixture) {
    let root = f.cluster.root();
    assert!(f.cluster.is_ancestor_or_equal(root, f.cluster.tip()));
    for (slot, bank) in f.cluster.banks() {
        if *slot <= root {
            assert!(
                f.cluster.is_ancestor_or_equal(*slot, root),
                "{slot} is off the root's fork"
            );
        } else {
            assert!(
                f.cluster.is_ancestor_or_equal(root, *slot),
                "{slot} does not descend from the root"
            );
            assert!(f.cluster.banks().contains_key(&bank.parent));
        }
    }
    // Bounded: at most the SlotHashes history below the root.
    assert!(f.cluster.banks().range(..root).count() < 512);
}

#[test]
fn the_bank_lines_rebuild_the_fork_tree() {
    let (f, _) = run(0.3, 500);
    let mut parents = std::collections::BTreeMap::new();
    for event in &f.events {
        if let towerlock_audit::Event::Bank(b) = event {
            assert!(
                parents.insert(b.slot, b.parent).is_none(),
                "one bank per slot"
            );
            assert!(
                b.slot == 0 || parents.contains_key(&b.parent),
                "parent before child"
            );
        }
    }
    for (slot, bank) in f.cluster.banks() {
        assert_eq!(parents[slot], bank.parent);
    }
}
