//! `runvz checkpoint` / `runvz restore` through CRIU. Before touching the container
//! runvz asks CRIU itself (`criu check`) whether it can work on this host, and says
//! plainly when it cannot.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use libcontainer::container::{CheckpointOptions, Container as LcContainer};

use super::GlobalOpts;
use crate::container::{Status, Store};

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// path for saving criu image files
    #[arg(long = "image-path", default_value = "checkpoint")]
    pub image_path: PathBuf,
    /// path for saving work files and logs
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// path for previous criu image files in pre-dump
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// leave the process running after checkpointing
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// allow file locks
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// cgroups mode: soft|full|strict|ignore
    #[arg(long = "manage-cgroups-mode", default_value = "soft")]
    pub manage_cgroups_mode: String,
    /// the container's ID
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// path to the criu image files
    #[arg(long = "image-path", default_value = "checkpoint")]
    pub image_path: PathBuf,
    /// path for work files and logs
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// allow file locks
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// cgroups mode: soft|full|strict|ignore
    #[arg(long = "manage-cgroups-mode", default_value = "soft")]
    pub manage_cgroups_mode: String,
    /// the container's ID
    pub id: String,
}

pub fn checkpoint(store: &Store, global: &GlobalOpts, args: CheckpointArgs) -> Result<()> {
    let (container, _lock) = store.load_locked(&args.id)?;
    container.require("checkpoint", &[Status::Running])?;
    criu_usable(&global.criu).context("checkpoint")?;
    let mode = cg_mode(&args.manage_cgroups_mode)?;
    let mut lc = LcContainer::load(container.state_dir.clone())?;
    let image_path = absolute(&args.image_path)?;
    lc.checkpoint(&CheckpointOptions {
        ext_unix_sk: args.ext_unix_sk,
        file_locks: args.file_locks,
        image_path,
        leave_running: args.leave_running,
        shell_job: args.shell_job,
        tcp_established: args.tcp_established,
        work_path: args.work_path.as_deref().map(absolute).transpose()?,
        manage_cgroups_mode: mode,
        link_remap: false,
    })
    .with_context(|| format!("checkpoint of container {} failed", args.id))?;
    Ok(())
}

pub fn restore(store: &Store, global: &GlobalOpts, args: RestoreArgs) -> Result<()> {
    crate::container::validate_id(&args.id)?;
    if store.exists(&args.id) {
        bail!("container with id {} already exists", args.id);
    }
    criu_usable(&global.criu).context("restore")?;
    if !args.image_path.join("inventory.img").exists() {
        bail!(
            "restore: {} holds no checkpoint (inventory.img missing)",
            args.image_path.display()
        );
    }
    // CRIU works here, but runvz cannot yet rebuild a container from images:
    // libcontainer has no restore, and runvz's own is not written yet.
    bail!("restore: not supported by this version of runvz (CRIU is usable on this host)")
}

/// Asks CRIU whether it can dump and restore on this kernel; its own reason is
/// passed on when it cannot.
fn criu_usable(criu: &Path) -> Result<()> {
    let output = std::process::Command::new(criu)
        .arg("check")
        .output()
        .map_err(|err| {
            anyhow::anyhow!(
                "CRIU binary {} cannot be run ({err}); install criu",
                criu.display()
            )
        })?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    let reason = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Error") || l.contains("error"))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("no reason given");
    bail!(
        "CRIU cannot work on this host: `{} check` failed: {reason}",
        criu.display()
    )
}

fn cg_mode(mode: &str) -> Result<rust_criu::CgMode> {
    Ok(match mode {
        "soft" => rust_criu::CgMode::SOFT,
        "full" => rust_criu::CgMode::FULL,
        "strict" => rust_criu::CgMode::STRICT,
        "ignore" => rust_criu::CgMode::IGNORE,
        other => bail!("--manage-cgroups-mode {other:?}: use soft, full, strict or ignore"),
    })
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}
