//! etcd, a cluster, and the seed's primary and secondary command lines.

use std::path::{Path, PathBuf};
use std::time::Duration;

use towerlock_cluster::genesis::{Consensus, InitOptions};
use towerlock_validator::admin::Role;

use crate::{EtcdProcess, LabCluster, LabError, ValidatorProcess};

/// The validator's flags for a cluster running `consensus` with `slot_ms`
/// slots: none on TowerBFT; on Alpenglow `--consensus alpenglow` and
/// Votor's timing (a window's first block comes within a slot of its start;
/// the cluster's synthetic voters skip a slot one slot after its end).
pub fn consensus_flags(consensus: Consensus, slot_ms: u64) -> Vec<String> {
    match consensus {
        Consensus::Tower => vec![],
        Consensus::Alpenglow => vec![
            "--consensus".into(),
            "alpenglow".into(),
            "--votor-block-ms".into(),
            slot_ms.to_string(),
            "--votor-timeout-ms".into(),
            (2 * slot_ms).to_string(),
        ],
    }
}

/// The whole system on one machine: a real etcd with the seed's mutual TLS,
/// a local cluster, and the validators started in its directory.
pub struct Lab {
    /// etcd (one member).
    pub etcd: EtcdProcess,
    /// The local cluster.
    pub cluster: LabCluster,
    /// The lab's directory: the cluster folder, ledgers and logs.
    pub dir: PathBuf,
    validator_bin: PathBuf,
    /// The cluster's consensus and slot length: validators are started
    /// for them.
    consensus: Consensus,
    slot_ms: u64,
    _tmp: Option<tempfile::TempDir>,
}

impl Lab {
    /// Starts etcd (TLS) and a cluster with `slot_ms` slots in a temporary
    /// directory (or `dir`, kept afterwards).
    pub async fn start(
        validator_bin: &Path,
        slot_ms: u64,
        dir: Option<PathBuf>,
    ) -> Result<Self, LabError> {
        Self::start_with_stake(validator_bin, slot_ms, dir, 10.0).await
    }

    /// Like [`Lab::start`], our validator holding `stake_percent` of the
    /// stake (more stake, more leader slots).
    pub async fn start_with_stake(
        validator_bin: &Path,
        slot_ms: u64,
        dir: Option<PathBuf>,
        stake_percent: f64,
    ) -> Result<Self, LabError> {
        let options = InitOptions {
            stake_percent,
            ..Self::options(slot_ms)
        };
        Self::start_with(validator_bin, dir, options).await
    }

    /// The genesis options of [`Lab::start`]: `slot_ms` slots, ten
    /// synthetic validators, ours with 10 % of the stake.
    pub fn options(slot_ms: u64) -> InitOptions {
        InitOptions {
            slot_ms,
            slots_per_epoch: 8192,
            fork_rate: 0.02,
            synthetic: 10,
            stake_percent: 10.0,
            ..InitOptions::default()
        }
    }

    /// Like [`Lab::start`], with the cluster's genesis options.
    pub async fn start_with(
        validator_bin: &Path,
        dir: Option<PathBuf>,
        options: InitOptions,
    ) -> Result<Self, LabError> {
        Self::start_with_consensus(validator_bin, dir, options, Consensus::Tower).await
    }

    /// Like [`Lab::start`], on a cluster running `consensus`; the
    /// validators are started for it (`--consensus alpenglow` and Votor's
    /// timing from the slot length).
    pub async fn start_with_consensus(
        validator_bin: &Path,
        dir: Option<PathBuf>,
        options: InitOptions,
        consensus: Consensus,
    ) -> Result<Self, LabError> {
        let (tmp, dir) = match dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .map_err(LabError::io("create the lab directory", &dir))?;
                (None, dir)
            }
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("towerlock-lab-")
                    .tempdir()
                    .map_err(LabError::io(
                        "create a temporary directory in",
                        std::env::temp_dir(),
                    ))?;
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        let etcd = EtcdProcess::start().await?;
        let cluster = LabCluster::start_with(&dir.join("cluster"), &options, consensus).await?;
        Ok(Self {
            etcd,
            cluster,
            dir,
            validator_bin: validator_bin.to_path_buf(),
            consensus,
            slot_ms: options.slot_ms,
            _tmp: tmp,
        })
    }

    /// The `towerlock-validator` binary the lab starts.
    pub fn validator_bin(&self) -> &Path {
        &self.validator_bin
    }

    /// Validators started from now on run `bin` (an upgrade); those
    /// running keep theirs.
    pub fn set_validator_bin(&mut self, bin: &Path) {
        self.validator_bin = bin.to_path_buf();
    }

    /// `--tower-storage etcd` and the etcd flags, as the seed gives them.
    pub fn etcd_flags(&self) -> Vec<String> {
        let mut flags = vec!["--tower-storage".into(), "etcd".into()];
        flags.extend(self.etcd.cli_flags());
        flags
    }

    fn common(&self) -> Vec<String> {
        let mut args = vec![
            "--vote-account".into(),
            self.cluster.vote_account_file().display().to_string(),
            "--entrypoint".into(),
            self.cluster.url.clone(),
            "--rpc-port".into(),
            "0".into(),
        ];
        args.extend(self.etcd_flags());
        args.extend(consensus_flags(self.consensus, self.slot_ms));
        args
    }

    /// The cluster's consensus.
    pub fn consensus(&self) -> Consensus {
        self.consensus
    }

    /// The primary: the staked identity.
    pub fn primary_args(&self) -> Vec<String> {
        let mut args = vec![
            "--identity".into(),
            self.cluster.identity_file().display().to_string(),
        ];
        args.extend(self.common());
        args
    }

    /// The seed's secondary: its own identity, `--no-check-vote-account`,
    /// and the primary's identity as authorized voter.
    pub fn secondary_args(&self) -> Vec<String> {
        let mut args = vec![
            "--identity".into(),
            self.cluster.secondary_identity_file().display().to_string(),
            "--no-check-vote-account".into(),
            "--authorized-voter".into(),
            self.cluster.identity_file().display().to_string(),
        ];
        args.extend(self.common());
        args
    }

    /// Starts a validator whose ledger is `<lab>/<name>`.
    pub fn spawn_validator(
        &self,
        name: &str,
        args: &[String],
    ) -> Result<ValidatorProcess, LabError> {
        ValidatorProcess::spawn(&self.validator_bin, name, self.dir.join(name), args)
    }

    /// Starts a validator as `name` and waits until it plays `role` and its
    /// admin RPC serves a running node; returns it with its instance id.
    pub async fn start_validator(
        &self,
        name: &str,
        args: &[String],
        role: Role,
        deadline: Duration,
    ) -> Result<(ValidatorProcess, String), LabError> {
        let mut node = self.spawn_validator(name, args)?;
        let status = node.wait_role(role, deadline).await?;
        node.wait_ready(deadline).await?;
        Ok((node, status.instance))
    }

    /// Starts the seed's secondary as `name` and waits until it replays as a
    /// hot spare and its admin RPC is ready; returns it with its instance id.
    pub async fn start_hot_spare(
        &self,
        name: &str,
        deadline: Duration,
    ) -> Result<(ValidatorProcess, String), LabError> {
        self.start_validator(name, &self.secondary_args(), Role::HotSpare, deadline)
            .await
    }
}
