//! The genesis config (`genesis.json`) and the key files `init` writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;

use crate::core::hashv;

/// Lamports in all stake together.
pub const TOTAL_STAKE_LAMPORTS: u64 = 100_000_000 * 1_000_000_000;

/// File names inside a validator's folder, as the failover guide names them.
pub const IDENTITY_FILE: &str = "validator-keypair.json";
pub const SECONDARY_IDENTITY_FILE: &str = "secondary-validator-keypair.json";
pub const VOTE_ACCOUNT_FILE: &str = "vote-account-keypair.json";
pub const GENESIS_FILE: &str = "genesis.json";

/// One of our validators: a staked identity with its vote account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisValidator {
    /// Folder (relative to the cluster dir) holding its key files.
    pub dir: String,
    pub identity: Pubkey,
    pub secondary_identity: Pubkey,
    pub vote_account: Pubkey,
    /// Initially the identity, as the failover guide expects.
    pub authorized_voter: Pubkey,
    pub authorized_withdrawer: Pubkey,
    pub stake: u64,
    pub commission: u8,
}

/// Everything a cluster is made of; `run` reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Genesis {
    pub creation_time_ms: u64,
    /// 32 bytes, base-58: seeds the leader schedule, forks and synthetic keys.
    pub seed: String,
    pub slots_per_epoch: u64,
    /// Default slot length for `run`.
    pub slot_ms: u64,
    /// Probability that a leader rotation starts a minor fork.
    pub fork_rate: f64,
    pub validators: Vec<GenesisValidator>,
    pub synthetic_validators: u32,
    /// Stake all synthetic validators hold together.
    pub synthetic_stake: u64,
    /// The consensus the cluster runs. Absent (TowerBFT) in the JSON unless
    /// Alpenglow, so that a TowerBFT genesis keeps the bytes, and so the
    /// hash, it had before the choice existed.
    #[serde(default, skip_serializing_if = "Consensus::is_tower")]
    pub consensus: Consensus,
}

/// The consensus a cluster runs, chosen at genesis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consensus {
    /// TowerBFT: TowerSync vote transactions, lockouts, roots.
    #[default]
    Tower,
    /// Alpenglow's Votor (SIMD-0326): leader windows, Votor votes and
    /// certificates; the root follows finalization (`core::votor`).
    Alpenglow,
}

impl Consensus {
    pub fn is_tower(&self) -> bool {
        *self == Self::Tower
    }

    /// The name `--consensus` takes and `genesis.json` stores.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Tower => "tower",
            Self::Alpenglow => "alpenglow",
        }
    }
}

impl std::fmt::Display for Consensus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `init` options (the CLI's flags).
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub validators: u32,
    pub stake_percent: f64,
    pub slots_per_epoch: u64,
    pub slot_ms: u64,
    pub fork_rate: f64,
    pub synthetic: u32,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            validators: 1,
            stake_percent: 10.0,
            slots_per_epoch: 8192,
            slot_ms: 400,
            fork_rate: 0.02,
            synthetic: 20,
        }
    }
}

/// Why `init` failed.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// Options that make no cluster.
    #[error("invalid options: {0}")]
    Invalid(String),
    /// The folder already holds a cluster.
    #[error("{0} already holds a genesis; use another folder")]
    Exists(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `genesis.json` does not parse.
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GenesisError + '_ {
    move |source| GenesisError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Genesis {
    /// The genesis hash: SHA-256 of the canonical JSON.
    pub fn hash(&self) -> Hash {
        hashv(&[&serde_json::to_vec(self).expect("genesis serializes")])
    }

    pub fn seed_bytes(&self) -> Vec<u8> {
        bs58::decode(&self.seed).into_vec().unwrap_or_default()
    }

    /// The synthetic validators' (identity, vote account, stake), derived
    /// from the seed (nobody holds their keys).
    pub fn synthetic(&self) -> Vec<(Pubkey, Pubkey, u64)> {
        let seed = self.seed_bytes();
        let n = self.synthetic_validators as u64;
        if n == 0 {
            return vec![];
        }
        // Weights 1.0..2.0 derived from the seed, normalized to the stake.
        let weights: Vec<u64> = (0..n)
            .map(|i| {
                let h = hashv(&[b"synthetic-weight", &seed, &i.to_le_bytes()]).to_bytes();
                1000 + u64::from(u16::from_le_bytes([h[0], h[1]]) % 1000)
            })
            .collect();
        let total: u64 = weights.iter().sum();
        (0..n)
            .map(|i| {
                let id = hashv(&[b"synthetic-identity", &seed, &i.to_le_bytes()]).to_bytes();
                let vote = hashv(&[b"synthetic-vote", &seed, &i.to_le_bytes()]).to_bytes();
                let stake = (self.synthetic_stake as u128 * weights[i as usize] as u128
                    / total as u128) as u64;
                (
                    Pubkey::new_from_array(id),
                    Pubkey::new_from_array(vote),
                    stake,
                )
            })
            .collect()
    }

    /// Reads `<dir>/genesis.json`.
    pub fn load(dir: &Path) -> Result<Self, GenesisError> {
        let path = dir.join(GENESIS_FILE);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        serde_json::from_str(&text).map_err(|source| GenesisError::Parse { path, source })
    }
}

/// Keypairs made by [`init`], for callers that want them in memory too.
pub struct ValidatorKeys {
    pub dir: PathBuf,
    pub identity: Keypair,
    pub secondary_identity: Keypair,
    pub vote_account: Keypair,
}

/// Writes a keypair in solana-keygen's JSON format, mode 0600.
pub fn write_keypair_file(keypair: &Keypair, path: &Path) -> Result<(), GenesisError> {
    let mut buf = Vec::new();
    solana_keypair::write_keypair(keypair, &mut buf)
        .map_err(|e| io(path)(std::io::Error::other(e.to_string())))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(&buf).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// Creates a new TowerBFT cluster in `dir`: `genesis.json` and each
/// validator's key files.
pub fn init(
    dir: &Path,
    options: &InitOptions,
    now_ms: u64,
) -> Result<(Genesis, Vec<ValidatorKeys>), GenesisError> {
    init_with(dir, options, Consensus::Tower, now_ms)
}

/// [`init`] for a cluster running `consensus`, stored in the genesis so
/// that every run of the folder runs it.
pub fn init_with(
    dir: &Path,
    options: &InitOptions,
    consensus: Consensus,
    now_ms: u64,
) -> Result<(Genesis, Vec<ValidatorKeys>), GenesisError> {
    let invalid = |m: String| Err(GenesisError::Invalid(m));
    if options.validators == 0 {
        return invalid("--validators must be at least 1".into());
    }
    let ours = options.stake_percent * options.validators as f64;
    if !(options.stake_percent > 0.0 && ours < 100.0) {
        return invalid(format!(
            "--stake-percent {} for {} validator(s) leaves no stake to the rest of the cluster",
            options.stake_percent, options.validators
        ));
    }
    if options.synthetic == 0 {
        return invalid("--synthetic must be at least 1 (they hold the rest of the stake)".into());
    }
    if options.slots_per_epoch < 32 {
        return invalid("--epoch-slots must be at least 32".into());
    }
    if options.slot_ms == 0 {
        return invalid("--slot-ms must be at least 1".into());
    }
    if !(0.0..=1.0).contains(&options.fork_rate) {
        return invalid("--fork-rate must be between 0 and 1".into());
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let genesis_path = dir.join(GENESIS_FILE);
    if genesis_path.exists() {
        return Err(GenesisError::Exists(dir.to_path_buf()));
    }
    let seed: [u8; 32] = rand::random();
    let each = (TOTAL_STAKE_LAMPORTS as f64 * options.stake_percent / 100.0) as u64;
    let mut validators = vec![];
    let mut keys = vec![];
    for i in 0..options.validators {
        let rel = if options.validators == 1 {
            String::new()
        } else {
            format!("validator-{i}")
        };
        let vdir = dir.join(&rel);
        std::fs::create_dir_all(&vdir).map_err(io(&vdir))?;
        let identity = Keypair::new();
        let secondary = Keypair::new();
        let vote = Keypair::new();
        write_keypair_file(&identity, &vdir.join(IDENTITY_FILE))?;
        write_keypair_file(&secondary, &vdir.join(SECONDARY_IDENTITY_FILE))?;
        write_keypair_file(&vote, &vdir.join(VOTE_ACCOUNT_FILE))?;
        validators.push(GenesisValidator {
            dir: rel,
            identity: identity.pubkey(),
            secondary_identity: secondary.pubkey(),
            vote_account: vote.pubkey(),
            authorized_voter: identity.pubkey(),
            authorized_withdrawer: identity.pubkey(),
            stake: each,
            commission: 0,
        });
        keys.push(ValidatorKeys {
            dir: vdir,
            identity,
            secondary_identity: secondary,
            vote_account: vote,
        });
    }
    let genesis = Genesis {
        creation_time_ms: now_ms,
        seed: bs58::encode(seed).into_string(),
        slots_per_epoch: options.slots_per_epoch,
        slot_ms: options.slot_ms,
        fork_rate: options.fork_rate,
        validators,
        synthetic_validators: options.synthetic,
        synthetic_stake: TOTAL_STAKE_LAMPORTS - each * options.validators as u64,
        consensus,
    };
    let text = serde_json::to_string_pretty(&genesis).expect("genesis serializes");
    std::fs::write(&genesis_path, text + "\n").map_err(io(&genesis_path))?;
    Ok((genesis, keys))
}
