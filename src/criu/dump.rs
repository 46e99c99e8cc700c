//! `runvz checkpoint`: dump a running container's processes with CRIU.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::runtime::Spec;

use super::{
    DESCRIPTORS_FILE, absolute, bind_mounts, criu_client, criu_failure, external_netns,
    joined_netns,
};
use crate::state::{Container, Status};

pub struct DumpOptions {
    pub criu: PathBuf,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    /// Memory only, tracked for a later dump with `--parent-path`; the
    /// container keeps running.
    pub pre_dump: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub lazy_pages: bool,
    pub status_fd: i32,
    pub page_server: Option<(String, i32)>,
    pub empty_netns: bool,
    pub auto_dedup: bool,
    pub cgroups_mode: rust_criu::CgMode,
}

/// Dumps the container into `image_path`; without `leave_running` CRIU ends
/// its processes (the caller then deletes the container, as runc does).
pub fn dump(container: &Container, opts: &DumpOptions) -> Result<()> {
    container.require("checkpoint", &[Status::Running])?;
    let pid = container
        .live_pid()
        .with_context(|| format!("container {} has no running init", container.id))?;
    let meta = container
        .meta
        .as_ref()
        .with_context(|| format!("container {} was not made by runvz", container.id))?;
    let spec = Spec::load(container.state_dir.join("config.json"))
        .with_context(|| format!("cannot read container {}'s config", container.id))?;

    if has_terminal(pid.as_raw()) {
        // CRIU finds no master for the container's pty (the console socket's
        // owner holds it, outside the container) and cannot dump it.
        bail!(
            "cannot checkpoint container {}: it has a terminal, whose pty master is held outside the container; runvz cannot checkpoint terminal containers yet",
            container.id
        );
    }
    let image_path = make_dir(&opts.image_path)?;
    let work_path = match &opts.work_path {
        Some(path) => make_dir(path)?,
        None => image_path.clone(),
    };
    if opts.pre_dump {
        return pre_dump(pid.as_raw(), &meta.rootfs, &image_path, &work_path, opts);
    }
    let images = fs::File::open(&image_path)?;
    let work = fs::File::open(&work_path)?;
    record_descriptors(pid.as_raw(), &image_path)?;

    let mut criu = criu_client(&opts.criu)?;
    criu.set_pid(pid.as_raw());
    criu.set_images_dir_fd(images.as_raw_fd());
    criu.set_work_dir_fd(work.as_raw_fd());
    criu.set_log_file("dump.log".to_string());
    criu.set_log_level(4);
    criu.set_root(meta.rootfs.to_string_lossy().into_owned());
    criu.set_manage_cgroups(true);
    criu.cgroups_mode(opts.cgroups_mode.clone());
    criu.set_leave_running(opts.leave_running);
    criu.set_tcp_established(opts.tcp_established);
    criu.set_ext_unix_sk(opts.ext_unix_sk);
    criu.set_shell_job(opts.shell_job);
    criu.set_file_locks(opts.file_locks);
    criu.set_lazy_pages(opts.lazy_pages);
    criu.set_auto_dedup(opts.auto_dedup);
    criu.set_empty_net_ns(opts.empty_netns);
    if opts.status_fd >= 0 {
        criu.set_status_fd(opts.status_fd);
    }
    if let Some((address, port)) = &opts.page_server {
        criu.set_page_server(address.clone(), *port);
    }
    if let Some(parent) = &opts.parent_path {
        criu.set_parent_img(parent.to_string_lossy().into_owned());
    }
    for (destination, _) in bind_mounts(&spec) {
        let key = destination.to_string_lossy().into_owned();
        criu.set_external_mount(key.clone(), key);
    }
    if let Some(netns) = joined_netns(&spec) {
        criu.add_external(external_netns(&netns)?);
    }

    criu.dump().map_err(|err| {
        criu_failure(
            &format!("checkpoint of container {}", container.id),
            err,
            &work_path.join("dump.log"),
        )
    })?;
    Ok(())
}

/// `checkpoint --pre-dump`: CRIU's pre-dump (memory only, with tracking so the
/// next dump saves what changed). rust-criu has no pre-dump request, so this
/// runs CRIU's command line with the dump's options.
fn pre_dump(
    pid: i32,
    rootfs: &Path,
    image_path: &Path,
    work_path: &Path,
    opts: &DumpOptions,
) -> Result<()> {
    let mut cmd = std::process::Command::new(&opts.criu);
    cmd.arg("pre-dump")
        .arg("--tree")
        .arg(pid.to_string())
        .arg("--images-dir")
        .arg(image_path)
        .arg("--work-dir")
        .arg(work_path)
        .args(["--log-file", "pre-dump.log", "-v4", "--track-mem"])
        .arg("--root")
        .arg(rootfs);
    if let Some(parent) = &opts.parent_path {
        cmd.arg("--prev-images-dir").arg(parent);
    }
    if let Some((address, port)) = &opts.page_server {
        cmd.args(["--page-server", "--address", address])
            .args(["--port", &port.to_string()]);
    }
    for (flag, on) in [
        ("--tcp-established", opts.tcp_established),
        ("--ext-unix-sk", opts.ext_unix_sk),
        ("--shell-job", opts.shell_job),
        ("--file-locks", opts.file_locks),
        ("--auto-dedup", opts.auto_dedup),
    ] {
        if on {
            cmd.arg(flag);
        }
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot run CRIU {}", opts.criu.display()))?;
    if !status.success() {
        bail!(
            "pre-dump of process {pid} failed ({status}); CRIU log: {}",
            work_path.join("pre-dump.log").display()
        );
    }
    Ok(())
}

fn make_dir(path: &Path) -> Result<PathBuf> {
    let path = absolute(path)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(path)
}

/// What the init's stdio pointed at (`pipe:[123]`, `/dev/null`, …), as runc's
/// descriptors.json: restore hands the new caller's pipes in their place.
fn record_descriptors(pid: i32, image_path: &Path) -> Result<()> {
    let descriptors: Vec<String> = (0..3)
        .map(|fd| {
            fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    fs::write(
        image_path.join(DESCRIPTORS_FILE),
        serde_json::to_vec(&descriptors)?,
    )
    .with_context(|| format!("cannot write {}/{DESCRIPTORS_FILE}", image_path.display()))
}

/// Whether the init's stdio is a pty (a container with `terminal: true`).
fn has_terminal(pid: i32) -> bool {
    (0..3).any(|fd| {
        fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .is_ok_and(|link| link.starts_with("/dev/pts/"))
    })
}
