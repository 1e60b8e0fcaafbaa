//! A detached pool (`trustpool dev up --detach`), driven from its `pool.json`: stop it, or
//! tamper one of its hosts.

use std::path::Path;

use anyhow::{Context as _, anyhow};
use serde_json::json;

use super::process::{self, Bins, stop_pid};
use super::{GRACE, files};

/// Stops a detached pool from its `pool.json` (agents first, swtpm last).
///
/// # Errors
/// When `DIR/pool.json` is missing or unreadable.
pub fn down_dir(dir: &Path) -> anyhow::Result<Vec<String>> {
    let path = dir.join("pool.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no pool in {} ({} missing)", dir.display(), path.display()))?;
    let state: serde_json::Value = serde_json::from_str(&text).context("pool.json is corrupt")?;
    let pids = state["pids"].as_object().cloned().unwrap_or_default();
    let mut stopped = Vec::new();
    for prefix in ["agent", "scheduler", "attestation", "swtpm"] {
        for (name, pid) in pids.iter().filter(|(n, _)| n.starts_with(prefix)) {
            if let Some(pid) = pid.as_u64().and_then(|p| u32::try_from(p).ok())
                && process::alive(pid)
            {
                stop_pid(pid, GRACE);
                stopped.push(name.clone());
            }
        }
    }
    let _ = std::fs::remove_file(path);
    Ok(stopped)
}

/// Tampers a host of a detached pool (`trustpool dev tamper`): stops its agent, gives its
/// manifest the tampered BIOS, starts a new agent (which reboots the emulated machine).
///
/// # Errors
/// No pool in `dir`, an unknown host, or the agent cannot start.
pub fn tamper_dir(dir: &Path, host: &str, bin_dir: Option<&Path>) -> anyhow::Result<()> {
    let path = dir.join("pool.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no pool in {} ({} missing)", dir.display(), path.display()))?;
    let mut state: serde_json::Value =
        serde_json::from_str(&text).context("pool.json is corrupt")?;
    let key = format!("agent {host}");
    let pid = state["pids"][&key]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .ok_or_else(|| anyhow!("no host {host} in the pool in {}", dir.display()))?;
    stop_pid(pid, GRACE);
    let host_dir = dir.join("hosts").join(host);
    std::fs::write(host_dir.join("boot.toml"), files::TAMPERED_BIOS)?;
    let bins = Bins::find(bin_dir)?;
    let config = host_dir.join("agent.toml").display().to_string();
    let child = bins.spawn(
        "trustpool-agent",
        &["run", "--config", &config],
        &dir.join("logs"),
        host,
    )?;
    state["pids"][&key] = json!(child.id());
    std::fs::write(&path, serde_json::to_string_pretty(&state)?)?;
    Ok(())
}
