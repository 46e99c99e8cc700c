//! The container's own view of /proc (as LXCFS gives): in a system container
//! `/proc/meminfo`, `/proc/cpuinfo` and `/proc/uptime` show its memory limit
//! and use, the CPUs it may use and the time since its init started, and
//! `/proc/loadavg` its own load, as an OpenVZ container's did, so `free`,
//! `top`, `nproc`-minded tools and `uptime` tell the truth inside.
//!
//! A small FUSE filesystem per container serves the files, each made afresh
//! from the container's cgroup at every open (the load from samples taken
//! every 5 s, as the kernel's own). Its server is runvz
//! itself (`runvz internal-procview`, started by `create`), mounted in the
//! container's directory of host-side mounts ([`crate::idmap::dir`]); the spec
//! binds each file over the container's procfs (runc's list of paths allowed
//! there is exactly what LXCFS binds). `delete` unmounts it, which ends the
//! server. /proc/user_beancounters cannot be offered the same way: a bind
//! needs an existing file to cover, and procfs has no such entry on a stock
//! kernel; `runvz beancounters` reports them from the host.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use fuser::{
    FileAttr, FileType, Filesystem, MountOption, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, Request,
};
use oci_spec::runtime::{MountBuilder, Spec};

use crate::cgroups::{self, File, Stat};
use crate::signal::ProcessHandle;
use crate::state::Store;

/// A file of the view: its name in the FUSE filesystem and the path inside
/// the container it is bound over (the host's own file is what it shows when
/// the container cannot be read).
#[derive(Debug, Clone, Copy)]
struct ViewFile {
    name: &'static str,
    path: &'static str,
}

/// The files served, by inode (the root directory is 1). The /proc ones are
/// among the paths runc lets a bind cover; `online` is what `lscpu` and
/// `htop` count CPUs by (`nproc` asks the scheduler, which the cpuset bounds).
const FILES: [ViewFile; 5] = [
    ViewFile {
        name: "meminfo",
        path: "/proc/meminfo",
    },
    ViewFile {
        name: "cpuinfo",
        path: "/proc/cpuinfo",
    },
    ViewFile {
        name: "uptime",
        path: "/proc/uptime",
    },
    ViewFile {
        name: "loadavg",
        path: "/proc/loadavg",
    },
    ViewFile {
        name: "online",
        path: "/sys/devices/system/cpu/online",
    },
];
/// Where the filesystem is mounted, in the container's host-side directory
/// (whose layout is idmap's).
const MOUNT_DIR: &str = crate::idmap::PROCVIEW;
/// The server's PID, beside it, so `delete` can make sure it is gone.
const PID_FILE: &str = "procview.pid";

/// Starts the server for container `id` of `store_root`, waits until it is
/// mounted and binds its files over the container's /proc in the spec. Without
/// FUSE on the host, the container keeps the host's files (with a warning).
pub fn start(spec: &mut Spec, store_root: &Path, id: &str, dir: &Path) -> Result<()> {
    if !Path::new("/dev/fuse").exists() {
        tracing::warn!(
            "no /dev/fuse: container {id} sees the host's /proc/meminfo, cpuinfo, uptime and loadavg"
        );
        return Ok(());
    }
    let mountpoint = spawn_server(store_root, id, dir)?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for file in FILES {
        mounts.push(
            MountBuilder::default()
                .destination(file.path)
                .typ("bind")
                .source(mountpoint.join(file.name))
                .options(vec!["bind".to_string(), "ro".to_string()])
                .build()?,
        );
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// Starts `runvz internal-procview` for the container, records it and waits
/// until its filesystem is mounted; returns the mount point.
fn spawn_server(store_root: &Path, id: &str, dir: &Path) -> Result<PathBuf> {
    // The directory belongs to the container's root: resolved in it, without
    // following anything.
    let own = crate::safepath::strict_root(dir)?;
    let mountpoint = dir.join(MOUNT_DIR);
    {
        use std::os::unix::fs::PermissionsExt;
        own.mkdir_all(MOUNT_DIR, &fs::Permissions::from_mode(0o777))
            .map_err(|err| anyhow::anyhow!("cannot create {}: {err}", mountpoint.display()))?;
    }
    let exe = std::env::current_exe().context("cannot find runvz's own binary")?;
    let mut server = std::process::Command::new(exe);
    server
        .arg("--root")
        .arg(store_root)
        .arg("internal-procview")
        .arg(id)
        .arg(&mountpoint)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // Its own session: the caller's terminal or signals must not end it. And
    // none of the caller's descriptors: an engine's sync pipe held open by a
    // server that lives as long as the container would hang the engine.
    // SAFETY: setsid, close_range and fcntl are async-signal-safe syscalls
    // that touch no memory of the process.
    unsafe {
        use std::os::unix::process::CommandExt;
        server.pre_exec(|| {
            nix::unistd::setsid()?;
            // Close-on-exec rather than closed, so std's own exec-error pipe
            // still works; every fd from 3 up is gone once the server runs.
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            let rc = libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            );
            if rc != 0 {
                // Kernels before 5.11: one by one.
                for fd in 3..4096 {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            Ok(())
        });
    }
    let mut child = server
        .spawn()
        .context("cannot start the /proc view server")?;
    write_pid(&own, child.id())
        .with_context(|| format!("cannot write {}", dir.join(PID_FILE).display()))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !crate::idmap::is_mounted(dir, MOUNT_DIR) {
        if let Some(status) = child.try_wait()? {
            bail!("the /proc view server of {id} ended ({status}) before mounting");
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            bail!("the /proc view server of {id} did not mount within 5 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(mountpoint)
}

/// Supervision: called by `exec` and `state` for a running container with a
/// /proc view. A server that is gone (killed, OOM-killed) leaves the view's
/// files failing with "Transport endpoint is not connected"; it is started
/// again and its files bound again over the container's /proc. If that fails,
/// the dead binds are removed so the container reads the kernel's files.
/// Either way the container's /proc/meminfo reads again.
pub fn ensure_served(store_root: &Path, id: &str, dir: &Path, init: &ProcessHandle) -> Result<()> {
    let Some(recorded) = read_pid(dir) else {
        return Ok(()); // no view (no FUSE at create)
    };
    if held(recorded).is_some() {
        return Ok(());
    }
    tracing::warn!("the /proc view server of container {id} is gone: starting it again");
    let restarted = unmount_dead(dir)
        .and_then(|()| spawn_server(store_root, id, dir))
        .and_then(|mountpoint| rebind_in_container(init, Some(&mountpoint)));
    if let Err(err) = restarted {
        tracing::warn!(
            "cannot restart the /proc view of container {id} ({err:#}): it sees the kernel's /proc files"
        );
        if let Some(server) = server(dir) {
            let _ = server.send(libc::SIGKILL);
        }
        rebind_in_container(init, None)?;
    }
    Ok(())
}

/// Lazily unmounts the view's dead FUSE mount(s). By path from the
/// directory's fd and without following a symlink: the mount's own root
/// cannot be opened or even statx'd on every kernel once its server is gone
/// (6.1 answers ENOTCONN). "Not a mount" (EINVAL) ends it.
fn unmount_dead(dir: &Path) -> Result<()> {
    let own = crate::safepath::strict_root(dir)?;
    let target = crate::safepath::fd_path(&own).join(MOUNT_DIR);
    for _ in 0..8 {
        match nix::mount::umount2(
            &target,
            nix::mount::MntFlags::MNT_DETACH | nix::mount::MntFlags::UMOUNT_NOFOLLOW,
        ) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) => return Ok(()),
            Err(err) => {
                return Err(err).with_context(|| {
                    format!(
                        "cannot unmount the dead /proc view at {}",
                        dir.join(MOUNT_DIR).display()
                    )
                });
            }
        }
    }
    bail!("{} stays mounted", dir.join(MOUNT_DIR).display())
}

/// In the container's mount namespace, replaces the binds over its /proc
/// files: by the files of the view mounted at `mountpoint` (host side), or,
/// with None, by nothing (the kernel's files show again).
fn rebind_in_container(init: &ProcessHandle, mountpoint: Option<&Path>) -> Result<()> {
    use std::os::fd::AsRawFd;
    let mut trees = Vec::new();
    if let Some(mountpoint) = mountpoint {
        let view = crate::safepath::strict_root(mountpoint)?;
        for file in FILES {
            let handle = view.resolve_nofollow(file.name).map_err(|err| {
                anyhow::anyhow!(
                    "cannot open {}: {err}",
                    mountpoint.join(file.name).display()
                )
            })?;
            let fd = std::os::fd::AsFd::as_fd(&handle).as_raw_fd();
            trees.push(
                crate::idmap::clone_tree(fd, c"", libc::AT_EMPTY_PATH as u32).with_context(
                    || format!("cannot clone {}", mountpoint.join(file.name).display()),
                )?,
            );
        }
    }
    let ns = init
        .open_namespace("mnt")
        .context("cannot open the container's mount namespace")?;
    // SAFETY: the child only makes syscalls and exits.
    match unsafe { crate::fork::fork_single_threaded() }? {
        nix::unistd::ForkResult::Child => {
            // setns makes the namespace's root this process's root and cwd:
            // the paths below are the container's.
            let mut ok = nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS).is_ok();
            for (index, file) in FILES.iter().enumerate() {
                let target = std::ffi::CString::new(file.path).unwrap_or_default();
                // SAFETY: umount2 and move_mount take NUL-terminated paths and fds we own.
                unsafe {
                    libc::umount2(target.as_ptr(), libc::MNT_DETACH);
                    if let Some(tree) = trees.get(index) {
                        ok &= libc::syscall(
                            libc::SYS_move_mount,
                            tree.as_raw_fd(),
                            c"".as_ptr(),
                            libc::AT_FDCWD,
                            target.as_ptr(),
                            crate::idmap::MOVE_MOUNT_F_EMPTY_PATH,
                        ) == 0;
                    }
                }
            }
            // SAFETY: _exit ends the child without running the parent's cleanup.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None)? {
            nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
            _ => bail!("cannot replace the /proc view's files inside the container"),
        },
    }
}

/// Ends the server of a container's host-side directory `dir`, if it runs;
/// its mount goes with the directory ([`crate::idmap::remove`]).
pub fn stop(dir: &Path) {
    if let Some(server) = server(dir) {
        let _ = server.send(libc::SIGKILL);
        server.wait_exit(Duration::from_secs(2));
    }
}

/// The server, held by a pidfd, while the process its PID file names is
/// alive and still the one started (same start time: not a reused PID).
fn server(dir: &Path) -> Option<ProcessHandle> {
    read_pid(dir).and_then(held)
}

/// The process recorded as (PID, start time), if it is still that one.
fn held((pid, start_time): (i32, u64)) -> Option<ProcessHandle> {
    ProcessHandle::open(pid, |pid| {
        crate::state::process_alive(pid, Some(start_time))
    })
}

/// Writes the server's PID and start time beside its mount point, by fd
/// (never through a symlink).
fn write_pid(own: &pathrs::Root, pid: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let start_time = crate::state::process_start_time(pid as i32)
        .context("the /proc view server exited at once")?;
    let mut file = own
        .create_file(
            PID_FILE,
            pathrs::flags::OpenFlags::O_WRONLY | pathrs::flags::OpenFlags::O_TRUNC,
            &fs::Permissions::from_mode(0o644),
        )
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    file.write_all(format!("{pid} {start_time}").as_bytes())?;
    Ok(())
}

/// The server's PID and start time from its file in `dir`, read by fd from a
/// regular file.
fn read_pid(dir: &Path) -> Option<(i32, u64)> {
    use std::io::Read;
    let own = crate::safepath::strict_root(dir).ok()?;
    let handle = own.resolve_nofollow(PID_FILE).ok()?;
    if crate::safepath::file_type(std::os::fd::AsFd::as_fd(&handle)).ok()? != libc::S_IFREG {
        return None;
    }
    let file = handle
        .reopen(pathrs::flags::OpenFlags::O_RDONLY | pathrs::flags::OpenFlags::O_NONBLOCK)
        .ok()?;
    let mut text = String::new();
    file.take(64).read_to_string(&mut text).ok()?;
    let (pid, start_time) = text.trim().split_once(' ')?;
    Some((pid.parse().ok()?, start_time.parse().ok()?))
}

/// `runvz internal-procview ID MOUNTPOINT`: serves until unmounted.
pub fn serve(store: Store, id: String, mountpoint: PathBuf) -> Result<()> {
    // fuser mounts by path (it canonicalizes it): refuse one that a symlink
    // would lead elsewhere (the container's root owns the directory it is in).
    let resolved = fs::canonicalize(&mountpoint)
        .with_context(|| format!("cannot resolve {}", mountpoint.display()))?;
    if resolved != mountpoint {
        bail!(
            "the /proc view's mount point {} leads to {}: refused",
            mountpoint.display(),
            resolved.display()
        );
    }
    let load = Arc::new(Mutex::new(Load::default()));
    sample_load_forever(store.root().to_path_buf(), id.clone(), Arc::clone(&load));
    let view = ProcView {
        store,
        id,
        load,
        snapshots: HashMap::new(),
        next_handle: 1,
    };
    fuser::mount2(
        view,
        &mountpoint,
        &[
            MountOption::FSName("runvz-procview".into()),
            MountOption::RO,
            // The container's processes are other users (its own range).
            MountOption::AllowOther,
        ],
    )
    .with_context(|| format!("cannot mount the /proc view at {}", mountpoint.display()))
}

struct ProcView {
    store: Store,
    id: String,
    /// The container's load average, kept by the sampling thread.
    load: Arc<Mutex<Load>>,
    /// Each open file's contents as they were at open, by file handle, so a
    /// reader that reads in pieces gets one consistent file.
    snapshots: HashMap<u64, String>,
    next_handle: u64,
}

/// Attributes, with the size of the file as it reads now: sendfile and
/// splice (busybox's and coreutils' cat) read no further than the size.
fn attr(ino: u64, size: u64) -> FileAttr {
    let now = SystemTime::now();
    FileAttr {
        ino,
        size,
        blocks: 0,
        atime: now,
        mtime: now,
        ctime: now,
        crtime: now,
        kind: if ino == 1 {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: if ino == 1 { 0o555 } else { 0o444 },
        nlink: if ino == 1 { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// No caching of attributes: the size changes as the contents do.
const TTL: Duration = Duration::ZERO;
/// Reads go to the server every time, not to the page cache.
const FOPEN_DIRECT_IO: u32 = 1;

impl Filesystem for ProcView {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        match FILES.iter().position(|f| OsStr::new(f.name) == name) {
            Some(index) if parent == 1 => {
                let ino = index as u64 + 2;
                reply.entry(&TTL, &attr(ino, self.size(ino)), 0)
            }
            _ => reply.error(libc::ENOENT),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        if ino == 1 || (2..2 + FILES.len() as u64).contains(&ino) {
            reply.attr(&TTL, &attr(ino, self.size(ino)));
        } else {
            reply.error(libc::ENOENT);
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        match self.contents(ino) {
            Some(text) => {
                let handle = self.next_handle;
                self.next_handle += 1;
                self.snapshots.insert(handle, text);
                reply.opened(handle, FOPEN_DIRECT_IO);
            }
            None => reply.error(libc::EISDIR),
        }
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.snapshots.remove(&fh);
        reply.ok();
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let Some(text) = self.snapshots.get(&fh) else {
            reply.error(libc::EBADF);
            return;
        };
        let bytes = text.as_bytes();
        let start = (offset.max(0) as usize).min(bytes.len());
        let end = (start + size as usize).min(bytes.len());
        reply.data(&bytes[start..end]);
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        if ino != 1 {
            reply.error(libc::ENOTDIR);
            return;
        }
        let entries = [
            (1, FileType::Directory, "."),
            (1, FileType::Directory, ".."),
        ]
        .into_iter()
        .chain(
            FILES
                .iter()
                .enumerate()
                .map(|(i, f)| (i as u64 + 2, FileType::RegularFile, f.name)),
        );
        for (index, (ino, kind, name)) in entries.enumerate().skip(offset.max(0) as usize) {
            if reply.add(ino, index as i64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

impl ProcView {
    /// File `ino` as it reads now.
    fn contents(&self, ino: u64) -> Option<String> {
        let file = FILES.get(ino.checked_sub(2)? as usize)?;
        Some(self.render(file.name).unwrap_or_else(|| {
            // The container is gone or unreadable: the host's file, as without a view.
            fs::read_to_string(file.path).unwrap_or_default()
        }))
    }

    fn size(&self, ino: u64) -> u64 {
        self.contents(ino).map_or(0, |text| text.len() as u64)
    }

    fn render(&self, file: &str) -> Option<String> {
        let container = self.store.load(&self.id).ok()?;
        let cgroup = container.cgroup_path()?;
        match file {
            "meminfo" => Some(meminfo(&cgroup)),
            "cpuinfo" => Some(cpuinfo(&cgroup)),
            "uptime" => uptime(container.live_pid()?.as_raw()),
            "loadavg" => Some(self.load.lock().ok()?.render()),
            "online" => Some(cpus_online(&cgroup)),
            _ => None,
        }
    }
}

/// How often the load is sampled (the kernel's LOAD_FREQ).
const LOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The container's load average, as the kernel computes the host's and LXCFS
/// a container's: every 5 s the number of its threads that are runnable or in
/// uninterruptible sleep, folded into 1, 5 and 15-minute exponential averages.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Load {
    averages: [f64; 3],
    /// Runnable threads at the last sample, and all threads.
    running: usize,
    threads: usize,
    /// The highest PID in the container's own PID namespace.
    last_pid: i32,
}

impl Load {
    fn fold(&mut self, sample: &Sample) {
        for (average, minutes) in self.averages.iter_mut().zip([1.0, 5.0, 15.0]) {
            let decay = (-LOAD_INTERVAL.as_secs_f64() / (60.0 * minutes)).exp();
            *average = *average * decay + sample.active as f64 * (1.0 - decay);
        }
        self.running = sample.running;
        self.threads = sample.threads;
        self.last_pid = sample.last_pid;
    }

    fn render(&self) -> String {
        let [one, five, fifteen] = self.averages;
        format!(
            "{one:.2} {five:.2} {fifteen:.2} {}/{} {}\n",
            self.running, self.threads, self.last_pid
        )
    }
}

/// One look at the container's threads.
#[derive(Debug, Default)]
struct Sample {
    /// Runnable or in uninterruptible sleep (what the load counts).
    active: usize,
    running: usize,
    threads: usize,
    last_pid: i32,
}

fn sample(cgroup: &Path) -> Sample {
    let mut sample = Sample::default();
    for pid in cgroups::procs(cgroup) {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        // NSpid's last field is the PID in the container's own namespace.
        if let Some(own) = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|ids| ids.split_whitespace().last()?.parse().ok())
        {
            sample.last_pid = sample.last_pid.max(own);
        }
        let tasks = fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            sample.threads += 1;
            match state {
                Some('R') => {
                    sample.running += 1;
                    sample.active += 1;
                }
                Some('D') => sample.active += 1,
                _ => {}
            }
        }
    }
    sample
}

/// Samples the container's load every 5 s for as long as the server runs
/// (its cgroup is read from the state each time: at the server's start the
/// container is still being made).
fn sample_load_forever(root: PathBuf, id: String, load: Arc<Mutex<Load>>) {
    std::thread::spawn(move || {
        loop {
            let cgroup = Store::new(&root)
                .and_then(|store| store.load(&id))
                .ok()
                .and_then(|container| container.cgroup_path());
            if let (Some(cgroup), Ok(mut load)) = (cgroup, load.lock()) {
                load.fold(&sample(&cgroup));
            }
            std::thread::sleep(LOAD_INTERVAL);
        }
    });
}

/// A memory.stat value (0 where the kernel gives none).
fn memory_stat(cgroup: &Path, stat: Stat) -> u64 {
    cgroups::memory_stat(cgroup, stat).unwrap_or(0)
}

/// The host's meminfo with the totals, free and cache lines of the
/// container's memory cgroup (kB), when it has a limit below the host's.
fn meminfo(cgroup: &Path) -> String {
    let host = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let host_kb = |key: &str| -> u64 {
        host.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    let limit = cgroups::memory_limit(cgroup);
    if limit <= 0 || limit as u64 / 1024 >= host_kb("MemTotal:") {
        return host;
    }
    let total = limit as u64 / 1024;
    let used = cgroups::read_number(cgroup, File::MemoryUsage).unwrap_or(0) / 1024;
    let cached = memory_stat(cgroup, Stat::Cache) / 1024;
    let shmem = memory_stat(cgroup, Stat::Shmem) / 1024;
    let free = total.saturating_sub(used);
    let available = (free + cached.saturating_sub(shmem)).min(total);
    let host_swap = host_kb("SwapTotal:");
    let swap_total = cgroups::host()
        .swap_limit(cgroup)
        .map_or(host_swap, |l| (l / 1024).min(host_swap));
    let swap_used = cgroups::host().swap_usage(cgroup).unwrap_or(0) / 1024;
    host.lines()
        .map(|line| {
            let key = line.split_whitespace().next().unwrap_or("");
            let value = match key {
                "MemTotal:" => Some(total),
                "MemFree:" => Some(free),
                "MemAvailable:" => Some(available),
                "Buffers:" => Some(0),
                "Cached:" => Some(cached),
                "Shmem:" => Some(shmem),
                "SwapTotal:" => Some(swap_total),
                "SwapFree:" => Some(swap_total.saturating_sub(swap_used)),
                _ => None,
            };
            match value {
                Some(kb) => format!("{key:<16}{kb:>8} kB\n"),
                None => format!("{line}\n"),
            }
        })
        .collect()
}

/// How many CPUs the container may use: its cpuset, cut to its CPU quota.
fn cpu_count(cgroup: &Path) -> usize {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpuset = cgroups::read_file(cgroup, File::CpusetEffective)
        .map(|list| cpu_list(list.trim()).len())
        .filter(|&n| n > 0)
        .unwrap_or(online);
    let quota = cgroups::host().cpu_quota_cpus(cgroup);
    match quota {
        Some(q) if q > 0 => cpuset.min(q as usize),
        _ => cpuset,
    }
}

/// The CPUs the container may use as a list (`0-1`): its cpuset's, the first
/// as many as its CPU quota allows.
fn cpus_online(cgroup: &Path) -> String {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpuset = cgroups::read_file(cgroup, File::CpusetEffective)
        .map(|list| cpu_list(list.trim()))
        .filter(|cpus| !cpus.is_empty())
        .unwrap_or_else(|| (0..online).collect());
    let kept: Vec<usize> = cpuset.into_iter().take(cpu_count(cgroup)).collect();
    format_cpu_list(&kept) + "\n"
}

/// The CPUs of a list such as `0-3,6`.
fn cpu_list(list: &str) -> Vec<usize> {
    list.split(',')
        .filter(|part| !part.is_empty())
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                // Bounded: a corrupt range must not become a huge list.
                (Ok(a), Ok(b)) if b >= a && b < 1 << 16 => (a..=b).collect(),
                _ => Vec::new(),
            },
            None => part.parse::<usize>().into_iter().collect(),
        })
        .collect()
}

/// `[0, 1, 2, 5]` as `0-2,5`.
fn format_cpu_list(cpus: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        parts.push(if cpus[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", cpus[i])
        });
        i += 1;
    }
    parts.join(",")
}

/// The host's cpuinfo, its first CPUs only, as many as the container may use.
fn cpuinfo(cgroup: &Path) -> String {
    let host = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let count = cpu_count(cgroup);
    let mut out = String::new();
    for block in host
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .take(count)
    {
        out.push_str(block.trim_end_matches('\n'));
        out.push_str("\n\n");
    }
    out
}

/// Seconds since the container's init started (and, as the kernel's second
/// field, the idle time, which a container has no count of: 0).
fn uptime(init: i32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{init}/stat")).ok()?;
    // The fields after the command's closing parenthesis; starttime is field 22.
    let after = stat.rsplit_once(')')?.1;
    let start_ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let host: f64 = fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let up = (host - start_ticks as f64 / ticks).max(0.0);
    Some(format!("{up:.2} 0.00\n"))
}

#[cfg(test)]
mod tests {
    use super::{Load, Sample, cpu_list, format_cpu_list};

    #[test]
    fn cpu_lists_round_trip() {
        assert_eq!(cpu_list("0-2,5"), vec![0, 1, 2, 5]);
        assert_eq!(format_cpu_list(&[0, 1, 2, 5]), "0-2,5");
        assert_eq!(format_cpu_list(&[3]), "3");
        assert_eq!(cpu_list("4-2,x"), Vec::<usize>::new());
    }

    #[test]
    fn load_follows_the_kernels_averages() {
        let mut load = Load::default();
        let busy = Sample {
            active: 2,
            running: 2,
            threads: 5,
            last_pid: 40,
        };
        // One minute of two busy threads: the 1-minute average reaches
        // 2 × (1 − 1/e), the longer ones less.
        for _ in 0..12 {
            load.fold(&busy);
        }
        let [one, five, fifteen] = load.averages;
        assert!((one - 2.0 * (1.0 - (-1.0f64).exp())).abs() < 0.01, "{one}");
        assert!(five < one && fifteen < five, "{:?}", load.averages);
        assert_eq!(
            load.render(),
            format!("1.26 {five:.2} {fifteen:.2} 2/5 40\n")
        );
    }

    #[test]
    fn cpu_lists_count_ranges_and_singles() {
        assert_eq!(cpu_list("0-3,6").len(), 5);
        assert_eq!(cpu_list("0").len(), 1);
        assert_eq!(cpu_list("").len(), 0);
    }
}
