//! One module per subcommand; each exposes a clap `Args` type with `run`.

pub mod audit;
pub mod bench;
pub mod bench_cluster;
pub mod bench_storage;
pub mod certs;
pub mod cluster;
pub mod drill;
pub mod etcd;
pub mod tower;
