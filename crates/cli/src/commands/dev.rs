//! `trustpool dev up|down|tamper`: the local pool launcher of `trustpool-testkit`.

use anyhow::Context as _;
use trustpool_testkit::pool::{Pool, PoolSpec, down_dir, tamper_dir};

use crate::Outcome;
use crate::cli::DevCommand;

pub(crate) fn run(command: &DevCommand) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match command {
        DevCommand::Up {
            hosts,
            tampered,
            dir,
            postgres,
            interval,
            detach,
            bin_dir,
        } => runtime.block_on(async {
            let spec = PoolSpec {
                hosts: *hosts,
                tampered: *tampered,
                dir: dir.clone(),
                postgres: postgres.clone(),
                bin_dir: bin_dir.clone(),
                interval_secs: (*interval).max(1),
            };
            eprintln!(
                "starting a pool of {hosts} hosts ({tampered} tampered) in {} …",
                dir.display()
            );
            let pool = Pool::up(&spec).await.context("the pool did not come up")?;
            crate::emit(&pool.summary());
            if *detach {
                let dir = pool.detach()?;
                crate::emit(&format!(
                    "\ndetached: stop it with  trustpool dev down --dir {}\n",
                    dir.display()
                ));
                return Ok(Outcome::Success);
            }
            crate::emit("\nrunning; Ctrl-C stops everything.\n");
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("stopping the pool …");
            tokio::task::spawn_blocking(move || pool.down()).await?;
            eprintln!("stopped.");
            Ok(Outcome::Success)
        }),
        DevCommand::Down { dir } => {
            let stopped = down_dir(dir)?;
            crate::emit(&format!("stopped {}\n", stopped.join(", ")));
            Ok(Outcome::Success)
        }
        DevCommand::Tamper { host, dir, bin_dir } => {
            tamper_dir(dir, host, bin_dir.as_deref())?;
            crate::emit(&format!(
                "{host}: BIOS changed in its boot manifest; rebooting (its agent re-measures)\n"
            ));
            Ok(Outcome::Success)
        }
    }
}
