//! One module per subcommand; each exposes a clap `Args` type with `run`.

pub mod audit;
pub mod bench;
pub mod bench_cluster;
pub mod bench_cluster_voters;
pub mod bench_failover;
pub mod bench_failover_votor;
pub mod bench_scale;
pub mod bench_scale_etcd;
pub mod bench_scale_fleet;
pub mod bench_sentinel;
pub mod bench_storage;
pub mod bench_vote_path;
pub mod certs;
pub mod chaos;
pub mod cluster;
pub mod drill;
pub mod drill_alpenglow;
pub mod drill_sentinel;
pub mod drill_upgrade;
pub mod etcd;
pub mod etcd_access;
pub mod fence;
pub mod sentinel;
pub mod status;
pub mod tower;
pub mod vote_history;

/// The `towerlock-validator` binary: `explicit`, else the one next to this
/// executable (where `cargo build --workspace` puts it).
pub fn validator_bin(explicit: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .context("cannot locate this executable")?
            .with_file_name("towerlock-validator"),
    };
    if !path.is_file() {
        anyhow::bail!(
            "towerlock-validator not found at {}: build it with `cargo build --workspace`, or name it with --validator-bin",
            path.display()
        );
    }
    Ok(path)
}
