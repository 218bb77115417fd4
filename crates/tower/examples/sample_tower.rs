//! Writes a sample identity keypair and the agave tower file it signed, for
//! trying `towerlock tower show` without a validator.
//!
//! Usage: cargo run -p towerlock-tower --example sample_tower -- DIR [VOTES]

use std::{env, fs, path::PathBuf};

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_tower::{SavedTower, Tower};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: sample_tower DIR [VOTES]")?);
    let votes: u64 = args.next().map(|v| v.parse()).transpose()?.unwrap_or(40);
    fs::create_dir_all(&dir)?;

    let keypair = Keypair::new();
    let keypair_path = dir.join("validator-keypair.json");
    write_private(
        &keypair_path,
        serde_json_array(&keypair.to_bytes()).as_bytes(),
    )?;

    let mut tower = Tower::new(keypair.pubkey());
    let now = 1_700_000_000;
    for slot in 1..=votes {
        let hash = Hash::new_from_array([(slot % 251) as u8; 32]);
        let _ = tower.record_vote(slot, hash, Hash::default(), now + slot as i64);
    }
    let saved = SavedTower::new(&tower, &keypair)?;
    let tower_path = dir.join(format!("tower-1_9-{}.bin", keypair.pubkey()));
    fs::write(&tower_path, saved.to_bytes())?;
    println!("{}", tower_path.display());
    Ok(())
}

/// solana-keygen's format: a JSON array of the 64 keypair bytes.
fn serde_json_array(bytes: &[u8]) -> String {
    let numbers: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("[{}]", numbers.join(","))
}

/// Keypair files are secrets: readable by their owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}
