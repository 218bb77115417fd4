//! The published Python Solana client (solana-py and solders, pinned in
//! `python/requirements.txt`) in a virtual environment under the target
//! folder, made on first use; and the check script that calls every served
//! method through it.
//!
//! Never skips: without a usable `python3` (with `venv`) or without PyPI the
//! test fails with a sentence saying what to install.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REQUIREMENTS: &str = include_str!("../python/requirements.txt");

/// The check script (`python/solana_client_check.py`).
pub fn check_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/solana_client_check.py")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn run(command: &mut Command, what: &str) -> Result<Output, String> {
    let output = command
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", command.get_program()))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(format!(
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// The virtual environment's python, made (once, under a lock: tests run in
/// parallel) with the pinned packages.
pub fn python() -> Result<PathBuf, String> {
    let dir = target_dir().join("solana-py");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let lock = File::create(dir.join(".lock")).map_err(|e| format!("{}: {e}", dir.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", dir.display()))?;
    let venv = dir.join("venv");
    let python = venv.join("bin/python");
    // The marker holds the requirements it was made with: a change remakes it.
    let marker = dir.join("installed.txt");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(REQUIREMENTS) {
        return Ok(python);
    }
    run(
        Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv),
        "creating a Python virtual environment (install python3 and python3-venv: scripts/ensure-deps.sh)",
    )?;
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/requirements.txt");
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "installing the Solana Python client from PyPI",
    )?;
    std::fs::write(&marker, REQUIREMENTS).map_err(|e| format!("{}: {e}", marker.display()))?;
    Ok(python)
}

/// Runs the check script against `http` (and the websocket `ws`, if any);
/// returns the methods it checked, or its failure.
pub fn check_rpc(
    http: &str,
    ws: Option<&str>,
    identity: Option<&str>,
) -> Result<Vec<String>, String> {
    let python = python()?;
    let mut command = Command::new(python);
    command.arg(check_script()).args(["--http", http]);
    if let Some(ws) = ws {
        command.args(["--ws", ws]);
    }
    if let Some(identity) = identity {
        command.args(["--identity", identity]);
    }
    let output = run(&mut command, "the Solana client check")?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("checked "))
        .map(str::to_string)
        .collect())
}
