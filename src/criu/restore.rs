//! `runvz restore`: bring a container back from CRIU images.
//!
//! The processes must land in the container's own cgroup, which may not be the
//! one they were dumped from (another ID, another cgroupsPath). As runc does,
//! CRIU runs inside that cgroup and is told to rebase the dumped cgroups onto it;
//! runvz forks a helper for that, so runvz itself never joins the cgroup.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use libcgroups::common::CgroupManager;
use libcontainer::config::YoukiConfig;
use libcontainer::container::{ContainerStatus, State};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, getpid};
use oci_spec::runtime::{LinuxResources, Spec};
use rust_criu::rust_criu_protobuf::rpc::Criu_notify;

use super::{
    DESCRIPTORS_FILE, EXTERNAL_NETNS_KEY, absolute, bind_mounts, criu_client, criu_failure,
    joined_netns,
};
use crate::state::{Meta, save_state};

pub struct RestoreOptions {
    pub criu: PathBuf,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    /// How CRIU treats the cgroups it restores into (runc's default: soft).
    pub cgroups_mode: rust_criu::CgMode,
    /// Restore into an empty network namespace (`--empty-ns network`).
    pub empty_netns: bool,
    /// Become the child subreaper, so the restored init ends up runvz's child
    /// (needed to wait for it in the foreground).
    pub subreaper: bool,
}

/// What the container being restored is: where its state goes and its config.
pub struct Target<'a> {
    pub id: &'a str,
    /// The container's directory, with its state file and config.json.
    pub dir: &'a Path,
    pub spec: &'a Spec,
    pub meta: &'a Meta,
}

/// The init PID CRIU reports in its post-restore notification (the callback is
/// a plain fn, so it can only hand the value back through a static).
static RESTORED_PID: AtomicI32 = AtomicI32::new(0);

fn on_notify(script: &str, notify: &Criu_notify, _fd: Option<RawFd>) -> i32 {
    if script == "post-restore" {
        RESTORED_PID.store(notify.pid(), Ordering::SeqCst);
    }
    0
}

/// Restores the container's processes and writes its state (status running).
pub fn restore(target: &Target, opts: &RestoreOptions) -> Result<i32> {
    let image_path = absolute(&opts.image_path)?;
    if !image_path.join("inventory.img").exists() {
        bail!(
            "{} holds no checkpoint (inventory.img missing)",
            image_path.display()
        );
    }
    let terminal = target
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal {
        bail!(
            "cannot restore container {}: it has a terminal; runvz cannot checkpoint or restore terminal containers yet",
            target.id
        );
    }
    // CRIU wants the root it restores into to be a mount point of its own.
    let criu_root = target.dir.join(super::CRIU_ROOT);
    fs::create_dir_all(&criu_root)?;
    mount(
        Some(&target.meta.rootfs),
        &criu_root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("cannot bind {} for CRIU", target.meta.rootfs.display()))?;
    let restored = restore_in_helper(target, opts, &image_path, &criu_root);
    let _ = umount2(&criu_root, MntFlags::MNT_DETACH);
    let _ = fs::remove_dir(&criu_root);
    let pid = restored?;

    let mut state = State::new(
        target.id,
        ContainerStatus::Running,
        Some(pid),
        target.meta.bundle.clone(),
    );
    state.created = Some(chrono::Utc::now());
    state.creator = Some(nix::unistd::geteuid().as_raw());
    state.use_systemd = target.meta.systemd;
    state.annotations = target.spec.annotations().clone();
    save_state(target.dir, &mut state, Some(target.meta))?;
    // What libcontainer's exec reads besides config.json (its builder, which
    // CRIU stands in for here, writes it at create).
    YoukiConfig::from_spec(target.spec, target.id)
        .map_err(|err| anyhow!("cannot derive libcontainer's config: {err}"))?
        .save(target.dir)
        .map_err(|err| anyhow!("cannot write libcontainer's config: {err}"))?;
    Ok(pid)
}

/// Forks the helper that joins the cgroup and runs CRIU; returns the restored
/// init's PID, or the helper's error.
fn restore_in_helper(
    target: &Target,
    opts: &RestoreOptions,
    image_path: &Path,
    criu_root: &Path,
) -> Result<i32> {
    let manager =
        crate::cgroups::manager(&target.meta.cgroup_path, target.meta.systemd, target.id)?;
    if opts.subreaper {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) takes plain integers.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error()).context("cannot become a subreaper");
        }
    }
    let (reader, writer) = nix::unistd::pipe()?;
    // SAFETY: the child only runs the restore below and exits without
    // returning into the caller.
    match unsafe { crate::fork::fork_single_threaded() }
        .context("cannot fork the restore helper")?
    {
        ForkResult::Child => {
            drop(reader);
            let report = match helper(target, opts, image_path, criu_root, &manager) {
                Ok(pid) => format!("ok {pid}"),
                Err(err) => format!("error {err:#}"),
            };
            let mut writer = fs::File::from(writer);
            let _ = writer.write_all(report.as_bytes());
            drop(writer);
            // SAFETY: _exit skips the parent's atexit handlers and buffers.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(writer);
            let mut report = String::new();
            let read = fs::File::from(reader).read_to_string(&mut report);
            let _ = waitpid(child, None);
            read.context("cannot read the restore helper's report")?;
            match report.split_once(' ') {
                Some(("ok", pid)) => Ok(pid.trim().parse()?),
                Some(("error", message)) => Err(anyhow!("{message}")),
                _ => bail!("the restore helper died without a report"),
            }
        }
    }
}

/// Runs in the helper: join the cgroup, set its limits, run CRIU.
fn helper(
    target: &Target,
    opts: &RestoreOptions,
    image_path: &Path,
    criu_root: &Path,
    manager: &libcgroups::common::AnyCgroupManager,
) -> Result<i32> {
    manager.add_task(getpid()).map_err(|err| {
        anyhow!(
            "cannot join cgroup {}: {err}",
            target.meta.cgroup_path.display()
        )
    })?;
    let default_resources = LinuxResources::default();
    let resources = target
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .unwrap_or(&default_resources);
    crate::cgroups::apply_resources(
        manager,
        &target.meta.cgroup_path,
        target.meta.systemd,
        resources,
    )
    .context("cannot set the container's cgroup limits")?;

    let work_path = match &opts.work_path {
        Some(path) => absolute(path)?,
        None => image_path.to_path_buf(),
    };
    fs::create_dir_all(&work_path)?;
    let images = fs::File::open(image_path)?;
    let work = fs::File::open(&work_path)?;

    let mut criu = criu_client(&opts.criu)?;
    criu.set_images_dir_fd(images.as_raw_fd());
    criu.set_work_dir_fd(work.as_raw_fd());
    criu.set_log_file("restore.log".to_string());
    criu.set_log_level(4);
    criu.set_root(criu_root.to_string_lossy().into_owned());
    // The init becomes the helper's sibling-child; the helper exits right after,
    // so it passes to runvz (a subreaper in the foreground) or to the caller's
    // subreaper (an engine's shim) as with runc.
    criu.set_rst_sibling(true);
    criu.set_manage_cgroups(true);
    criu.cgroups_mode(opts.cgroups_mode.clone());
    point_cgroup_root_here(&work_path)?;
    criu.set_tcp_established(opts.tcp_established);
    criu.set_ext_unix_sk(opts.ext_unix_sk);
    criu.set_shell_job(opts.shell_job);
    criu.set_file_locks(opts.file_locks);
    criu.set_empty_net_ns(opts.empty_netns);
    criu.set_notify_scripts(true);
    criu.set_notify_cb(on_notify);
    for (destination, source) in bind_mounts(target.spec) {
        criu.set_external_mount(
            destination.to_string_lossy().into_owned(),
            source.to_string_lossy().into_owned(),
        );
    }
    // Kept open (and inheritable) until CRIU is done with them.
    let mut inherited: Vec<OwnedFd> = Vec::new();
    if let Some(netns) = joined_netns(target.spec) {
        let fd = open_inheritable(&netns)?;
        criu.add_inherit_fd(fd.as_raw_fd(), EXTERNAL_NETNS_KEY.to_string())
            .map_err(|err| anyhow!("{err}"))?;
        inherited.push(fd);
    }
    // Pipes the init had as stdio are replaced by runvz's own stdio (the new
    // caller's pipes), as runc does.
    for (stdio, key) in dumped_descriptors(image_path)?.into_iter().enumerate() {
        if !key.starts_with("pipe:") {
            continue;
        }
        let fd = nix::unistd::dup(stdio as RawFd).context("cannot pass stdio to CRIU")?;
        // SAFETY: dup just returned this fd; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        criu.add_inherit_fd(fd.as_raw_fd(), key)
            .map_err(|err| anyhow!("{err}"))?;
        inherited.push(fd);
    }

    criu.restore().map_err(|err| {
        criu_failure(
            &format!("restore of container {}", target.id),
            err,
            &work_path.join("restore.log"),
        )
    })?;
    drop(inherited);
    let pid = RESTORED_PID.load(Ordering::SeqCst);
    if pid <= 0 {
        bail!(
            "CRIU restored container {} but did not say its PID",
            target.id
        );
    }
    Ok(pid)
}

/// Tells CRIU to rebase the dumped cgroups onto the helper's own (the
/// container's): `cgroup-root` lines in a config file named by CRIU_CONFIG_FILE,
/// since rust-criu cannot send CRIU's `cg_root` option. Without it CRIU would put
/// the processes back into the cgroup they were dumped from, which belongs to
/// another container when the ID or cgroupsPath changed.
fn point_cgroup_root_here(work_path: &Path) -> Result<()> {
    let own = fs::read_to_string("/proc/self/cgroup")?;
    let mut config = String::new();
    for line in own.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            config.push_str(&format!("cgroup-root {path}\n"));
        } else {
            config.push_str(&format!("cgroup-root {controllers}:{path}\n"));
        }
    }
    let file = work_path.join("runvz-criu.conf");
    fs::write(&file, config).with_context(|| format!("cannot write {}", file.display()))?;
    // SAFETY: the helper is single-threaded; CRIU (its child) reads the variable.
    unsafe { std::env::set_var("CRIU_CONFIG_FILE", &file) };
    Ok(())
}

/// The init's stdio at checkpoint time (missing file: none recorded).
fn dumped_descriptors(image_path: &Path) -> Result<Vec<String>> {
    let path = image_path.join(DESCRIPTORS_FILE);
    match fs::read(&path) {
        Ok(bytes) => parse_descriptors(&bytes).with_context(|| format!("{}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// descriptors.json (runc's format): what the init's stdin, stdout and stderr
/// were, e.g. `["/dev/null", "pipe:[1234]", "pipe:[1235]"]`. The images are
/// the caller's: anything but (at most) those three strings is refused, since
/// each entry names one of runvz's own descriptors to hand to CRIU.
pub fn parse_descriptors(bytes: &[u8]) -> Result<Vec<String>> {
    let descriptors: Vec<String> = serde_json::from_slice(bytes)
        .context("invalid descriptors (not a JSON list of strings)")?;
    if descriptors.len() > 3 {
        bail!(
            "invalid descriptors: {} entries where the init's stdin, stdout and stderr are 3",
            descriptors.len()
        );
    }
    Ok(descriptors)
}

/// Opens a file without O_CLOEXEC: CRIU (a child) takes it by number.
fn open_inheritable(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: open just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
