//! The pool's processes: the trustpool binaries found next to the running one, started
//! with their output in `DIR/logs/NAME.log`, stopped with SIGTERM (SIGKILL after a grace
//! period), and their pids recorded for `trustpool dev down`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rustix::process::{Pid, Signal, kill_process};

/// Where `trustpool-attestation`, `trustpool-scheduler` and `trustpool-agent` are.
#[derive(Debug, Clone)]
pub struct Bins {
    dir: PathBuf,
}

const BINARIES: [&str; 3] = [
    "trustpool-attestation",
    "trustpool-scheduler",
    "trustpool-agent",
];

impl Bins {
    /// `dir`, or else the running executable's directory or its parent (tests run from
    /// `target/debug/deps`, the binaries are in `target/debug`).
    ///
    /// # Errors
    /// When the binaries are not there (build them: `cargo build --workspace`).
    pub fn find(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut candidates: Vec<PathBuf> = dir.map(Path::to_path_buf).into_iter().collect();
        if let Ok(exe) = std::env::current_exe()
            && let Some(parent) = exe.parent()
        {
            candidates.push(parent.to_path_buf());
            if let Some(up) = parent.parent() {
                candidates.push(up.to_path_buf());
            }
        }
        for candidate in &candidates {
            if BINARIES.iter().all(|b| candidate.join(b).is_file()) {
                return Ok(Self {
                    dir: candidate.clone(),
                });
            }
        }
        bail!(
            "{} not found in {} (build them: cargo build --workspace)",
            BINARIES.join(", "),
            candidates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        )
    }

    /// Starts `binary args…` with stdout and stderr appended to `logs/NAME.log`.
    ///
    /// # Errors
    /// When the log cannot be opened or the process cannot start.
    pub fn spawn(
        &self,
        binary: &str,
        args: &[&str],
        logs: &Path,
        name: &str,
    ) -> anyhow::Result<Child> {
        std::fs::create_dir_all(logs)?;
        let log_path = logs.join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        Command::new(self.dir.join(binary))
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {binary}"))
    }
}

/// Whether process `pid` exists.
#[must_use]
pub fn alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    rustix::process::test_kill_process(pid).is_ok()
}

/// SIGTERM, then SIGKILL after `grace` if it is still there.
pub fn stop_pid(pid: u32, grace: Duration) {
    let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    if kill_process(p, Signal::TERM).is_err() {
        return;
    }
    let deadline = Instant::now() + grace;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        let _ = kill_process(p, Signal::KILL);
    }
}

/// Stops a child we started (SIGTERM, then SIGKILL) and reaps it.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let Some(p) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) else {
        return;
    };
    let _ = kill_process(p, Signal::TERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
