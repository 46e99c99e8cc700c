//! System containers: a container whose process is an init (systemd, busybox or
//! sysvinit) and which should behave like a standalone server.
//!
//! System mode is `runvz.system=true`, or on its own when the process is an init
//! (`/sbin/init`, `/lib/systemd/systemd`, `/usr/lib/systemd/systemd`, or a link to
//! one) unless `runvz.system=false`. In system mode runvz gives the init what
//! systemd's container interface asks for: tmpfs on /run, /run/lock and /tmp
//! (unless the bundle mounts them), a cgroup namespace with the cgroup tree
//! mounted writable (delegated), `container=` in its environment and an
//! /etc/machine-id. `kill` with SIGTERM becomes the init's halt signal, so
//! engines' "stop" shuts the container down like a server.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType, Mount, MountBuilder, Spec};

/// Paths that make a process an init.
const INIT_PATHS: [&str; 3] = [
    "/sbin/init",
    "/lib/systemd/systemd",
    "/usr/lib/systemd/systemd",
];

/// What runvz records for a system container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemMode {
    /// The signal SIGTERM is turned into (None: SIGTERM goes through).
    pub halt_signal: Option<i32>,
    /// The rootfs has no usable /etc/machine-id: runvz provides one.
    pub needs_machine_id: bool,
    /// sysinfo(2) answers with the container's numbers (`runvz.sysinfo`:
    /// `container`, the default, or `host`).
    pub sysinfo: bool,
}

/// Decides whether the container is a system container and, if so, with which
/// halt signal. `where_` names the config for errors.
pub fn detect(spec: &Spec, rootfs: &Path, where_: &str) -> Result<Option<SystemMode>> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let args = spec
        .process()
        .as_ref()
        .and_then(|p| p.args().clone())
        .unwrap_or_default();
    // The image's paths resolve inside it, as they would in the container: a
    // symlink in it (absolute or with `..`) must not lead runvz onto the host.
    let root = crate::safepath::root(rootfs).map_err(|err| anyhow::anyhow!("{where_}: {err:#}"))?;
    let init = args
        .first()
        .and_then(|program| resolve_init(&root, program, spec));
    let enabled = match annotations.get("runvz.system").map(|v| v.trim()) {
        Some("true") => true,
        Some("false") => false,
        None => init.is_some(),
        Some(other) => bail!("{where_}: runvz.system: {other:?} is not true or false"),
    };
    // Checked even when system mode is off: an annotation runvz accepts is one
    // it understood.
    let asked_halt_signal = annotations
        .get("runvz.haltsignal")
        .map(|text| {
            crate::signal::parse(text)
                .map_err(|err| anyhow::anyhow!("{where_}: runvz.haltsignal: {err}"))
        })
        .transpose()?;
    let sysinfo = match annotations.get("runvz.sysinfo").map(|v| v.trim()) {
        None | Some("container") => true,
        Some("host") => false,
        Some(other) => bail!("{where_}: runvz.sysinfo: {other:?} is not container or host"),
    };
    if !enabled {
        return Ok(None);
    }
    let halt_signal = asked_halt_signal.or_else(|| default_halt_signal(init.as_deref()));
    // With a writable rootfs systemd writes a missing machine ID itself (and a
    // bind-mounted one would make systemd-machine-id-commit fail); a read-only
    // rootfs gets one from runvz.
    let readonly = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    let needs_machine_id = readonly && lacks_machine_id(&root);
    Ok(Some(SystemMode {
        halt_signal,
        needs_machine_id,
        sysinfo,
    }))
}

/// A clock of its own for a system container whose config has no time
/// namespace: a new one whose boot and monotonic clocks start at zero when it
/// is created. Its processes then read their own uptime from the kernel, and
/// the start times in `/proc/PID/stat` are counted from its boot, as on a
/// server that just booted: `ps` (elapsed time, START) and `top` agree with
/// the container's `/proc/uptime`, where with the host's clock a process
/// started before the container's boot shows a negative age. Without the kernel's time
/// namespaces (before 5.6) nothing changes.
pub fn own_clock(spec: &mut Spec) -> Result<()> {
    use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType, LinuxTimeOffsetBuilder};
    let Some(mut linux) = spec.linux().clone() else {
        return Ok(());
    };
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    if namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::Time)
        || !Path::new("/proc/self/ns/time").exists()
    {
        return Ok(());
    }
    namespaces.push(
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::Time)
            .build()?,
    );
    let mut offsets = std::collections::HashMap::new();
    for (name, clock) in [
        ("boottime", libc::CLOCK_BOOTTIME),
        ("monotonic", libc::CLOCK_MONOTONIC),
    ] {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec we own.
        if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
            return Err(std::io::Error::last_os_error()).context("cannot read the clock");
        }
        // −now as the kernel takes it: whole seconds, then 0 ≤ ns < 10⁹.
        let (secs, nanos) = match now.tv_nsec {
            0 => (-now.tv_sec, 0),
            ns => (-now.tv_sec - 1, 1_000_000_000 - ns),
        };
        offsets.insert(
            name.to_string(),
            LinuxTimeOffsetBuilder::default()
                .secs(secs)
                .nanosecs(nanos as u32)
                .build()?,
        );
    }
    linux.set_namespaces(Some(namespaces));
    linux.set_time_offsets(Some(offsets));
    spec.set_linux(Some(linux));
    Ok(())
}

/// systemd halts on SIGRTMIN+3 and busybox init powers off on SIGUSR2; for
/// another init SIGTERM is left as it is.
fn default_halt_signal(init: Option<&Path>) -> Option<i32> {
    let init = init?.to_string_lossy().into_owned();
    if init.contains("systemd") {
        Some(libc::SIGRTMIN() + 3)
    } else if init.ends_with("busybox") {
        Some(libc::SIGUSR2)
    } else {
        None
    }
}

/// Whether the image has no usable /etc/machine-id (a symlink counts as one:
/// systemd follows it inside). Read in the rootfs, by fd, and only from a
/// regular file: a FIFO or a device there would hang or flood runvz.
fn lacks_machine_id(root: &pathrs::Root) -> bool {
    use std::io::Read;
    let Ok(handle) = root.resolve_nofollow("etc/machine-id") else {
        return true;
    };
    match crate::safepath::file_type(std::os::fd::AsFd::as_fd(&handle)) {
        Ok(libc::S_IFLNK) => return false,
        Ok(libc::S_IFREG) => {}
        _ => return true,
    }
    let Ok(file) =
        handle.reopen(pathrs::flags::OpenFlags::O_RDONLY | pathrs::flags::OpenFlags::O_NONBLOCK)
    else {
        return true;
    };
    // A machine ID is 32 hex digits and a newline; anything longer is not one.
    let mut id = String::new();
    if file.take(4096).read_to_string(&mut id).is_err() {
        return true;
    }
    id.trim().len() != 32
}

/// If `program` (as the container would run it) is an init, the file it finally
/// resolves to inside the rootfs (following links the way the container would:
/// every lookup and readlink is resolved inside `root`).
fn resolve_init(root: &pathrs::Root, program: &str, spec: &Spec) -> Option<PathBuf> {
    let start = if program.contains('/') {
        PathBuf::from(program)
    } else {
        let path_env = spec
            .process()
            .as_ref()
            .and_then(|p| p.env().clone())
            .unwrap_or_default()
            .into_iter()
            .find_map(|e| e.strip_prefix("PATH=").map(str::to_string))
            .unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".to_string());
        path_env
            .split(':')
            .map(|dir| Path::new(dir).join(program))
            .find(|p| root.resolve(inside(p)).is_ok())?
    };
    let mut is_init = false;
    let mut current = start;
    for _ in 0..16 {
        is_init |= INIT_PATHS.iter().any(|i| Path::new(i) == current);
        match root.readlink(inside(&current)) {
            Ok(target) if target.is_absolute() => current = target,
            Ok(target) => {
                current = current.parent().unwrap_or(Path::new("/")).join(target);
            }
            Err(_) => break,
        }
    }
    is_init.then_some(current)
}

/// `path` (absolute inside the container) relative to the rootfs.
fn inside(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// Gives the init systemd's container interface (see the module comment).
/// `machine_id` is the host file to bind over /etc/machine-id when needed.
pub fn apply(spec: &mut Spec, mode: &SystemMode, machine_id: &Path) -> Result<()> {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    let has =
        |mounts: &[Mount], dest: &str| mounts.iter().any(|m| m.destination() == Path::new(dest));
    for (dest, options) in [
        ("/run", "nosuid,nodev,mode=755"),
        ("/run/lock", "nosuid,nodev,noexec,size=5242880"),
        ("/tmp", "nosuid,nodev"),
    ] {
        if !has(&mounts, dest) {
            mounts.push(tmpfs(dest, options)?);
        }
    }
    // The cgroup tree, writable: systemd manages its own subtree (delegation).
    // runvz mounts the whole tree (the named systemd hierarchy included) inside
    // the container's cgroup namespace, so an engine's mounts below it (Podman
    // binds the host's /sys/fs/cgroup/systemd) go: they would show systemd the
    // host's tree. The mount keeps its place in the list.
    let cgroup = MountBuilder::default()
        .destination("/sys/fs/cgroup")
        .typ("cgroup")
        .source("cgroup")
        .options(vec![
            "nosuid".to_string(),
            "noexec".to_string(),
            "nodev".to_string(),
            "relatime".to_string(),
            "rw".to_string(),
        ])
        .build()?;
    mounts.retain(|m| !m.destination().starts_with("/sys/fs/cgroup/"));
    match mounts
        .iter()
        .position(|m| m.destination() == Path::new("/sys/fs/cgroup"))
    {
        Some(i) => mounts[i] = cgroup,
        None => mounts.push(cgroup),
    }
    if mode.needs_machine_id {
        mounts.push(
            MountBuilder::default()
                .destination("/etc/machine-id")
                .typ("bind")
                .source(machine_id)
                .options(vec!["bind".to_string(), "ro".to_string()])
                .build()?,
        );
    }
    spec.set_mounts(Some(mounts));

    if let Some(mut linux) = spec.linux().clone() {
        let mut namespaces = linux.namespaces().clone().unwrap_or_default();
        if !namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Cgroup)
        {
            namespaces.push(
                LinuxNamespaceBuilder::default()
                    .typ(LinuxNamespaceType::Cgroup)
                    .build()?,
            );
        }
        linux.set_namespaces(Some(namespaces));
        spec.set_linux(Some(linux));
    }

    if let Some(mut process) = spec.process().clone() {
        let mut env = process.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("container=")) {
            env.push("container=runvz".to_string());
        }
        process.set_env(Some(env));
        spec.set_process(Some(process));
    }
    Ok(())
}

fn tmpfs(dest: &str, options: &str) -> Result<Mount> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ("tmpfs")
        .source("tmpfs")
        .options(options.split(',').map(str::to_string).collect::<Vec<_>>())
        .build()?)
}

/// A fresh machine ID (128 random bits as 32 hex digits), as systemd wants.
pub fn new_machine_id() -> Result<String> {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")?;
    Ok(uuid.trim().replace('-', ""))
}

/// The named `systemd` hierarchy of a cgroup v1 host, where systemd keeps its
/// own tree. libcgroups manages only the controllers, so runvz gives a system
/// container a directory there (at its cgroupsPath) and has the init start in
/// it: its cgroup namespace is then rooted there and systemd inside can build
/// its tree (init.scope, system.slice) in a subtree of its own.
pub fn named_systemd_dir(cgroup_path: &Path) -> Option<PathBuf> {
    let root = crate::cgroups::host().named_systemd_root()?;
    let relative = cgroup_path.to_string_lossy();
    if relative.contains(':') {
        // A systemd-driver path: the host's systemd places the scope itself.
        return None;
    }
    // Only below the hierarchy: a cgroupsPath with `..` gets no directory here
    // (nothing is made, joined or removed outside it).
    let relative = crate::safepath::plain_relative(cgroup_path, "cgroupsPath").ok()?;
    Some(root.join(relative))
}

/// The named systemd hierarchy as a root no symlink is followed in, and `dir`
/// relative to it.
fn named_hierarchy(dir: &Path) -> Result<(pathrs::Root, PathBuf)> {
    let top = crate::cgroups::host()
        .named_systemd_root()
        .context("the named systemd hierarchy is not mounted")?;
    let relative = dir
        .strip_prefix(&top)
        .map_err(|_| anyhow::anyhow!("{} is not in {}", dir.display(), top.display()))?;
    let relative = crate::safepath::plain_relative(relative, "cgroup")?;
    Ok((crate::safepath::strict_root(&top)?, relative))
}

/// Writes runvz's PID into `cgroup.procs` of `relative` in the hierarchy, by fd.
fn join_named(root: &pathrs::Root, relative: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let procs = root
        .resolve(relative.join("cgroup.procs"))
        .and_then(|h| h.reopen(pathrs::flags::OpenFlags::O_WRONLY))
        .map_err(std::io::Error::other)?;
    (&procs).write_all(std::process::id().to_string().as_bytes())
}

/// Moves runvz itself into `dir` for the time of `f` (the init is cloned from
/// runvz and so starts there), then back where it was.
pub fn while_in_named_cgroup<T>(dir: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let own = std::fs::read_to_string("/proc/self/cgroup")?;
    let previous = own
        .lines()
        .find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p.to_string()))
        .unwrap_or_else(|| "/".to_string());
    // The container's tree (its systemd makes sub-cgroups there): resolved in
    // the hierarchy, without following anything, and joined by fd.
    let (root, relative) = named_hierarchy(dir)?;
    use std::os::unix::fs::PermissionsExt;
    root.mkdir_all(&relative, &std::fs::Permissions::from_mode(0o755))
        .map_err(|err| anyhow::anyhow!("cannot create {}: {err}", dir.display()))?;
    join_named(&root, &relative)
        .map_err(|err| anyhow::anyhow!("cannot join {}: {err}", dir.display()))?;
    let result = f();
    let back = Path::new(previous.trim_start_matches('/'));
    if let Err(err) = crate::safepath::plain_relative(back, "cgroup")
        .and_then(|back| join_named(&root, &back).map_err(Into::into))
    {
        tracing::warn!(
            "cannot return to /sys/fs/cgroup/systemd/{}: {err:#}",
            back.display()
        );
    }
    result
}

/// On cgroup v2 a system container's init moves itself into a child cgroup
/// (systemd: init.scope) and enables controllers for its subtree, after which
/// no process may join the container's own cgroup ("no internal processes").
/// An exec'd process then joins the init's cgroup instead, as with runc: the
/// sub-cgroup (relative to the container's) to hand libcontainer, if any.
pub fn exec_sub_cgroup(container: &crate::state::Container) -> Option<String> {
    let meta = container.meta.as_ref().filter(|m| m.system)?;
    let pid = container.live_pid()?;
    if !crate::cgroups::host().exec_joins_init_cgroup() {
        return None;
    }
    let own = meta.cgroup_path.to_string_lossy().into_owned();
    if own.contains(':') {
        return None; // systemd driver: the host's systemd owns placement
    }
    let init_cgroup = crate::cgroups::host().cgroup_of(pid.as_raw())?;
    let init_cgroup = init_cgroup.to_string_lossy();
    let base = format!("/{}/", own.trim_start_matches('/'));
    // The name is the container's own (its init made it): plain names only.
    let sub = init_cgroup.strip_prefix(&base)?;
    crate::safepath::plain_relative(Path::new(sub), "sub-cgroup").ok()?;
    Some(sub.to_string())
}
