//! The view's processes: a supervisor (`runvz internal-procview`) that holds
//! the server lock for its whole life and a worker it starts
//! (`internal-procview --worker`) that mounts the FUSE filesystem at
//! [`MOUNT`] and serves it.
//!
//! The supervisor owns no FUSE state, so what can die is the worker. When it
//! does, its mount answers "Transport endpoint is not connected"; the
//! supervisor unmounts it, starts a worker again and binds the new mount's
//! files into every container it serves, in place of the dead ones. A worker
//! cannot outlive its supervisor (parent-death signal); a supervisor that is
//! gone is started again by the next `create`, `state` or `exec`.
//!
//! Liveness is the lock, the mount and a marker: a supervisor holds
//! `/run/runvz/.procview/server.lock`, a working view answers statfs as a
//! FUSE filesystem, and `ready` names the supervisor once every container
//! has the files of the mount now answering (it is removed while a worker is
//! restarted).

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::load::{self, Loads};
use super::{CONTAINERS, Entry, HOME, MOUNT, Stamped, sysinfo};
use crate::files::FileLock;

/// How long the server stays once it serves no container.
const IDLE: Duration = Duration::from_secs(30);
/// How long `create` waits for a server to answer.
const START_TIMEOUT: Duration = Duration::from_secs(5);

fn lock_path() -> PathBuf {
    Path::new(HOME).join("server.lock")
}

fn ready_path() -> PathBuf {
    Path::new(HOME).join("ready")
}

/// The supervisor that last said its view is ready.
fn ready_pid() -> Option<i32> {
    std::fs::read_to_string(ready_path())
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What statfs says of the view's mount point.
#[derive(Debug, PartialEq)]
enum Mount {
    /// A FUSE filesystem that answers.
    Answering,
    /// A FUSE mount whose server is gone.
    Dead,
    /// No view mounted (the directory itself, or nothing).
    Absent,
}

fn mount_state() -> Mount {
    match nix::sys::statfs::statfs(MOUNT) {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::FUSE_SUPER_MAGIC => Mount::Answering,
        Ok(_) => Mount::Absent,
        Err(nix::errno::Errno::ENOTCONN) => Mount::Dead,
        Err(_) => Mount::Absent,
    }
}

/// Waits until a supervisor holds the lock and says its view is ready,
/// starting a supervisor when none holds it (several `create`s may race here:
/// one supervisor wins the lock, the others leave at once).
pub fn ensure_running() -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut spawned: Option<Instant> = None;
    loop {
        let holder = FileLock::holder(&lock_path())?;
        if holder.is_some() && holder == ready_pid() && mount_state() == Mount::Answering {
            return Ok(());
        }
        if holder.is_none() && spawned.is_none_or(|at| at.elapsed() > Duration::from_millis(500)) {
            spawn_supervisor()?;
            spawned = Some(Instant::now());
        }
        if Instant::now() > deadline {
            bail!(
                "the /proc view server does not answer at {MOUNT} within {} s",
                START_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `runvz internal-procview` in its own session, with none of the caller's
/// descriptors: an engine's sync pipe held open by a server that outlives
/// the container would hang the engine.
fn spawn_supervisor() -> Result<()> {
    let exe = std::env::current_exe().context("cannot find runvz's own binary")?;
    let mut supervisor = Command::new(exe);
    supervisor
        .arg("internal-procview")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid and close_range are async-signal-safe syscalls that
    // touch no memory of the process.
    unsafe {
        use std::os::unix::process::CommandExt;
        supervisor.pre_exec(|| {
            nix::unistd::setsid()?;
            close_inherited();
            Ok(())
        });
    }
    // Not waited for: it lives on; its parent's exit hands it to init.
    supervisor
        .spawn()
        .context("cannot start the /proc view server")?;
    Ok(())
}

/// Marks every descriptor from 3 up close-on-exec (not closed, so std's own
/// exec-error pipe still works).
fn close_inherited() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range and fcntl only change descriptor flags.
    unsafe {
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
    }
}

/// The supervisor: `runvz internal-procview [--stay]`. Leaves at once when
/// another holds the lock.
pub fn serve(stay: bool) -> Result<()> {
    std::fs::create_dir_all(HOME).with_context(|| format!("cannot create {HOME}"))?;
    let Some(_lock) = FileLock::try_acquire(&lock_path())? else {
        return Ok(());
    };
    // Out of the caller's cgroup: an engine's scope for one container is
    // stopped (and every process in it killed) when that container ends. A
    // unit (`--stay`) stays in the cgroup its service manager gave it.
    if !stay {
        crate::cgroups::join_own_cgroup("runvz-procview");
    }
    raise_open_files_limit();
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(MOUNT)
            .or_else(|err| match err.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(err),
            })
            .with_context(|| format!("cannot create {MOUNT}"))?;
    }
    // The lock is held: a socket file left there is a dead supervisor's.
    let socket_path = sysinfo::socket_path();
    let _ = std::fs::remove_file(&socket_path);
    let socket = UnixListener::bind(&socket_path)
        .with_context(|| format!("cannot listen at {}", socket_path.display()))?;
    socket.set_nonblocking(true)?;
    Supervisor {
        socket,
        listeners: sysinfo::Listeners::new(),
        loads: Loads::new(),
        table: Stamped::new(CONTAINERS.path()),
        stay,
    }
    .run()
}

/// One notification fd per process tree that loaded the container's filter
/// (its init, each `exec`): as many open files as the host has those.
fn raise_open_files_limit() {
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let _ =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
}

struct Supervisor {
    /// Where `create` and `exec` hand over the sysinfo notification fds.
    socket: UnixListener,
    listeners: sysinfo::Listeners,
    loads: Loads,
    /// The containers served, read again only when the table changed (a
    /// sysinfo call costs one stat of it).
    table: Stamped<BTreeMap<String, Entry>>,
    stay: bool,
}

impl Supervisor {
    fn run(&mut self) -> Result<()> {
        let ready = ready_path();
        let mut next_sample = Instant::now();
        let mut empty_since: Option<Instant> = None;
        // Workers that could not be started or did not mount, in a row.
        let mut failed = 0;
        loop {
            let _ = std::fs::remove_file(&ready);
            unmount_dead()?;
            let started = Instant::now();
            let worker = spawn_worker().and_then(|mut worker| {
                if wait_answering(&mut worker) {
                    return Ok(worker);
                }
                let _ = worker.kill();
                let _ = worker.wait();
                bail!("the /proc view worker did not mount {MOUNT}")
            });
            let mut worker = match worker {
                Ok(worker) => worker,
                Err(err) if failed < 5 => {
                    tracing::warn!("{err:#}: trying again");
                    failed += 1;
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
                Err(err) => return Err(err),
            };
            failed = 0;
            rebind_all();
            crate::files::write_atomic(&ready, std::process::id().to_string().as_bytes())?;
            let pidfd = crate::signal::ProcessHandle::open(worker.id() as i32, |_| true)
                .context("cannot watch the /proc view worker")?;
            loop {
                let timeout = next_sample.saturating_duration_since(Instant::now());
                if self.wait(&pidfd, timeout) {
                    let status = worker.wait()?;
                    tracing::warn!("the /proc view worker ended ({status}): starting it again");
                    break;
                }
                if Instant::now() >= next_sample {
                    self.table.refresh();
                    if let Err(err) = load::sample_all(&self.table.value, &mut self.loads) {
                        tracing::warn!("cannot record the containers' loads: {err:#}");
                    }
                    next_sample = Instant::now() + load::LOAD_INTERVAL;
                    empty_since = match idle()? {
                        true => empty_since.or(Some(Instant::now())),
                        false => None,
                    };
                    if !self.stay && empty_since.is_some_and(|since| since.elapsed() >= IDLE) {
                        let _ = std::fs::remove_file(&ready);
                        let _ = worker.kill();
                        let _ = worker.wait();
                        unmount_dead()?;
                        let _ = std::fs::remove_file(socket_path_of(&self.socket));
                        return Ok(());
                    }
                }
            }
            // A worker that dies at once is not restarted in a tight loop.
            if started.elapsed() < Duration::from_secs(1) {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }

    /// Waits up to `timeout`, answering what comes meanwhile: new
    /// notification fds and sysinfo calls. True when the worker ended.
    fn wait(&mut self, worker: &crate::signal::ProcessHandle, timeout: Duration) -> bool {
        let mut polled = vec![
            libc::pollfd {
                fd: worker.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        polled.extend(self.listeners.keys().map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }));
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: a vector of pollfds that lives across the call.
        let ready = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, ms) };
        if ready <= 0 {
            return false;
        }
        if polled[0].revents != 0 {
            return true;
        }
        if polled[1].revents != 0 {
            self.accept();
        }
        for entry in &polled[2..] {
            if entry.revents & libc::POLLIN != 0 {
                if let Some(listener) = self.listeners.get(&entry.fd) {
                    self.table.refresh();
                    let (table, loads) = (&self.table.value, &self.loads);
                    let _ = sysinfo::answer(listener, |key| numbers(table.get(key)?, key, loads));
                }
            } else if entry.revents != 0 {
                // No process uses the filter any more (POLLHUP).
                self.listeners.remove(&entry.fd);
            }
        }
        false
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.socket.accept() {
            let _ = stream.set_nonblocking(false);
            match sysinfo::receive(&stream) {
                Ok(listener) => {
                    self.listeners.insert(listener.fd.as_raw_fd(), listener);
                }
                Err(err) => tracing::warn!("{err:#}"),
            }
        }
    }
}

fn socket_path_of(socket: &UnixListener) -> PathBuf {
    socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf))
        .unwrap_or_else(sysinfo::socket_path)
}

/// What sysinfo answers for the container `entry` (of `key`), now.
fn numbers(entry: &Entry, key: &str, loads: &Loads) -> Option<sysinfo::Numbers> {
    let container = entry.load()?;
    let cgroup = super::render::cgroup_of(&container)?;
    Some(sysinfo::Numbers {
        memory: super::render::read_memory(&cgroup).1,
        uptime: container
            .live_pid()
            .and_then(|init| super::render::seconds_up(init.as_raw())),
        load: loads.get(key).copied().unwrap_or_default(),
    })
}

/// `runvz internal-procview --worker`, started by the supervisor: mounts the
/// view and serves until unmounted (or its supervisor dies).
fn spawn_worker() -> Result<Child> {
    // The supervisor's own binary, even once a new runvz replaced it on disk
    // (an upgrade): the worker speaks the same protocol of files.
    let supervisor = std::process::id() as i32;
    let mut worker = Command::new("/proc/self/exe");
    worker
        .args(["internal-procview", "--worker"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory.
    unsafe {
        use std::os::unix::process::CommandExt;
        worker.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                || libc::getppid() != supervisor
            {
                return Err(std::io::Error::other("the supervisor is gone"));
            }
            Ok(())
        });
    }
    worker.spawn().context("cannot start the /proc view worker")
}

/// The worker's side.
pub fn work() -> Result<()> {
    super::view::mount(Path::new(MOUNT))
}

fn wait_answering(worker: &mut Child) -> bool {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if mount_state() == Mount::Answering {
            return true;
        }
        if !matches!(worker.try_wait(), Ok(None)) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Lazily unmounts the view's dead (or stray) FUSE mounts at [`MOUNT`].
fn unmount_dead() -> Result<()> {
    for _ in 0..8 {
        if mount_state() == Mount::Absent {
            return Ok(());
        }
        nix::mount::umount2(
            MOUNT,
            nix::mount::MntFlags::MNT_DETACH | nix::mount::MntFlags::UMOUNT_NOFOLLOW,
        )
        .with_context(|| format!("cannot unmount the dead /proc view at {MOUNT}"))?;
    }
    bail!("{MOUNT} stays mounted")
}

/// Whether no container is served (entries of containers that are gone are
/// dropped on the way).
fn idle() -> Result<bool> {
    CONTAINERS.change(|table: &mut BTreeMap<String, Entry>| {
        let before = table.len();
        table.retain(|_, entry| entry.exists());
        Ok((table.is_empty(), table.len() != before))
    })
}

/// Binds the view's files, as now mounted, into every container served that
/// has an init, over whatever was bound there (a dead mount's files).
fn rebind_all() {
    let table: BTreeMap<String, Entry> = CONTAINERS.read().unwrap_or_default();
    for (key, entry) in &table {
        let Some(container) = entry.load() else {
            continue;
        };
        if !container.meta.as_ref().is_some_and(|m| m.proc_view) {
            continue;
        }
        let Some(init) = container.init_handle() else {
            continue;
        };
        if let Err(err) = rebind_in_container(key, &init) {
            tracing::warn!("container {}: {err:#}", entry.id);
        }
    }
}

/// In the container's mount namespace, replaces the binds over its view
/// files by its files of the view now mounted at [`MOUNT`].
fn rebind_in_container(key: &str, init: &crate::signal::ProcessHandle) -> Result<()> {
    let view = crate::safepath::strict_root(Path::new(MOUNT))?;
    let mut trees = Vec::new();
    for file in super::binds() {
        let path = super::file_path(key, file.name);
        let inside = path.strip_prefix(MOUNT).unwrap_or(&path);
        let handle = view
            .resolve_nofollow(inside)
            .map_err(|err| anyhow::anyhow!("cannot open {}: {err}", path.display()))?;
        let fd = std::os::fd::AsFd::as_fd(&handle).as_raw_fd();
        trees.push(
            crate::idmap::clone_tree(fd, c"", libc::AT_EMPTY_PATH as u32)
                .with_context(|| format!("cannot clone {}", path.display()))?,
        );
    }
    let targets: Vec<std::ffi::CString> = super::binds()
        .map(|file| std::ffi::CString::new(file.path).unwrap_or_default())
        .collect();
    let ns = init
        .open_namespace("mnt")
        .context("cannot open the container's mount namespace")?;
    // SAFETY: the child only makes syscalls and exits.
    match unsafe { crate::fork::fork_single_threaded() }? {
        nix::unistd::ForkResult::Child => {
            // setns makes the namespace's root this process's root and cwd:
            // the paths below are the container's.
            let mut ok = nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS).is_ok();
            for (tree, target) in trees.iter().zip(&targets) {
                // SAFETY: umount2 and move_mount take NUL-terminated paths and fds we own.
                unsafe {
                    libc::umount2(target.as_ptr(), libc::MNT_DETACH);
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
            // SAFETY: _exit ends the child without running the parent's cleanup.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None)? {
            nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
            _ => bail!("cannot replace the /proc view's files inside the container"),
        },
    }
}
