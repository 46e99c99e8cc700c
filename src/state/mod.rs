//! The lifecycle record: where state lives under `--root`, the per-container
//! lock, loading a container and working out its status, and saving state
//! atomically. The operations on containers are in `container`; everything
//! that needs to know about a container reads it from here.
//!
//! Layout under the state root:
//! ```text
//! <root>/<id>/state.json  the one state file: libcontainer's State + runvz's Meta
//! <root>/<id>/            also config.json (the spec as built), libcontainer's
//!                         youki_config.json and notify.sock, maxheld.json
//! <root>/.locks/<id>      the per-container lock file (fcntl record lock)
//! ```
//! `create` writes state.json (status creating, with Meta) before anything else
//! of the container exists, so a create that dies halfway (even by SIGKILL)
//! leaves enough behind for `delete --force` to find and remove everything.

mod meta;

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use libcontainer::container::{ContainerStatus, State};
use nix::unistd::Pid;
use serde::Serialize;

pub use crate::files::write_atomic;
/// The per-container lock (`<root>/.locks/<id>`).
pub type ContainerLock = crate::files::FileLock;
pub use meta::Meta;

/// The longest container ID accepted: the ID names a directory and a cgroup, and
/// a path component cannot exceed 255 bytes.
const MAX_ID_LEN: usize = 255;

/// Where runvz keeps its state: `--root`.
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: &Path) -> Result<Self> {
        // 0700 as runc: container state (bundles, pids, consoles) is root's business.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|err| match err.raw_os_error() {
                // runc's words for a --root that is a file.
                Some(libc::EEXIST) if !root.is_dir() => {
                    anyhow::anyhow!("mkdir {}: not a directory", root.display())
                }
                _ => anyhow::Error::from(err)
                    .context(format!("cannot create state root {}", root.display())),
            })?;
        let root = fs::canonicalize(root)
            .with_context(|| format!("cannot resolve state root {}", root.display()))?;
        Ok(Self { root })
    }

    /// The store at `root` if it exists (made by nobody else).
    pub fn existing(root: &Path) -> Option<Self> {
        let root = fs::canonicalize(root).ok()?;
        root.is_dir().then_some(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A container's directory (state.json, its config.json, libcontainer's files).
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn lock_path(&self, id: &str) -> PathBuf {
        self.root.join(".locks").join(id)
    }

    /// Takes the container's exclusive lock; every command that changes a container
    /// holds it for the change.
    pub fn lock(&self, id: &str) -> Result<ContainerLock> {
        ContainerLock::acquire(&self.lock_path(id))
    }

    /// True when anything of the container is on disk (a complete or half-made one).
    pub fn exists(&self, id: &str) -> bool {
        self.state_dir(id).exists()
    }

    /// IDs of every container under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries = fs::read_dir(&self.root)
            .with_context(|| format!("cannot read state root {}", self.root.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Dot directories are runvz's own (.locks).
            if !name.starts_with('.') && entry.path().is_dir() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Takes the container's lock and loads it; a missing container leaves no lock
    /// file behind.
    pub fn load_locked(&self, id: &str) -> Result<(Container, ContainerLock)> {
        validate_id(id)?;
        let lock = self.lock(id)?;
        if !self.exists(id) {
            lock.remove();
            bail!("container {id} does not exist");
        }
        Ok((Container::load(self, id)?, lock))
    }

    /// Loads a container for `delete --force`, which must work even when its
    /// state file is corrupt.
    pub fn load_for_cleanup(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        Container::load_for_cleanup(self, id)
    }

    /// Loads a container, failing with runc's message when there is none.
    pub fn load(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        if !self.exists(id) {
            bail!("container {id} does not exist");
        }
        Container::load(self, id)
    }
}

/// Checks a container ID the way runc does (`^[\w+\-.]+$`, not `.` or `..`),
/// plus a length bound and no leading dot (runvz's own directories start with one).
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        bail!("invalid container ID: the ID is empty");
    }
    if id.len() > MAX_ID_LEN {
        bail!(
            "invalid container ID: {} bytes long, the limit is {MAX_ID_LEN}",
            id.len()
        );
    }
    if id.starts_with('.') {
        bail!("invalid container ID {id:?}: it must not start with '.'");
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.')))
    {
        bail!(
            "invalid container ID {id:?}: character {c:?} is not allowed (use letters, digits, '_', '+', '-', '.')"
        );
    }
    Ok(())
}

/// The status runc reports, in its spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container as runvz sees it: its state file (libcontainer's state with
/// runvz's meta in it), with the status worked out from the live init process.
pub struct Container {
    pub id: String,
    /// The container's directory (`<root>/<id>`).
    pub state_dir: PathBuf,
    /// The state; None for a create that died before writing it.
    pub state: Option<State>,
    /// runvz's record in the state; None only for a state made by something
    /// other than runvz.
    pub meta: Option<Meta>,
    pub status: Status,
}

impl Container {
    /// Loads what the store records for `id` (which must exist).
    pub fn load(store: &Store, id: &str) -> Result<Self> {
        Self::load_with(store, id, load_state)
    }

    /// For `delete --force`: a container whose state.json is corrupt is loaded
    /// without it (as stopped), so everything runvz finds without it (the ID
    /// range, idmapped mounts, the directory) can be removed.
    fn load_for_cleanup(store: &Store, id: &str) -> Result<Self> {
        Self::load_with(store, id, |dir| match load_state(dir) {
            Ok(state) => Ok(state),
            Err(err) => {
                tracing::warn!("{err:#}; removing the container anyway (--force)");
                Ok(None)
            }
        })
    }

    fn load_with(
        store: &Store,
        id: &str,
        read_state: impl FnOnce(&Path) -> Result<Option<(State, Option<Meta>)>>,
    ) -> Result<Self> {
        let state_dir = store.state_dir(id);
        let (state, meta) = read_state(&state_dir)?.unzip();
        let mut container = Container {
            id: id.to_string(),
            state_dir,
            state,
            meta: meta.flatten(),
            status: Status::Stopped,
        };
        container.status = container.compute_status();
        Ok(container)
    }

    /// A create that died before the init existed: no state file, or one still
    /// saying creating with no init recorded.
    pub fn interrupted_create(&self) -> bool {
        self.state
            .as_ref()
            .is_none_or(|s| s.status == ContainerStatus::Creating && s.pid.is_none())
    }

    /// The init process's PID as recorded, alive or not.
    pub fn init_pid(&self) -> Option<Pid> {
        self.state.as_ref()?.pid.map(Pid::from_raw)
    }

    /// The init process's PID while it is alive (and is still the process runvz
    /// started, not a recycled PID).
    pub fn live_pid(&self) -> Option<Pid> {
        let pid = self.state.as_ref()?.pid?;
        let start_time = self.meta.as_ref().and_then(|m| m.init_start_time);
        process_alive(pid, start_time).then(|| Pid::from_raw(pid))
    }

    /// A handle on the init while it is alive and still the process runvz
    /// started: signals through it cannot reach a process that reused its PID.
    pub fn init_handle(&self) -> Option<crate::signal::ProcessHandle> {
        let pid = self.state.as_ref()?.pid?;
        let start_time = self.meta.as_ref().and_then(|m| m.init_start_time);
        crate::signal::ProcessHandle::open(pid, |pid| process_alive(pid, start_time))
    }

    pub fn compute_status(&self) -> Status {
        let Some(state) = &self.state else {
            return Status::Stopped;
        };
        let Some(init) = self.live_pid() else {
            return Status::Stopped;
        };
        if state.status == ContainerStatus::Creating {
            return Status::Creating;
        }
        // As runc: paused is what the cgroup says (a `pause` killed between
        // freezing and recording it left state.json saying running).
        if self
            .own_cgroup(init.as_raw())
            .is_some_and(|cgroup| crate::cgroups::is_frozen(&cgroup))
        {
            return Status::Paused;
        }
        match state.status {
            ContainerStatus::Created => Status::Created,
            // Thawed, whatever state.json says.
            ContainerStatus::Paused if !init_started(init.as_raw()) => Status::Created,
            _ => Status::Running,
        }
    }

    /// The container's own cgroup: the one recorded, or under
    /// --systemd-cgroup (where the recorded path names a unit) its init's.
    pub fn own_cgroup(&self, init: i32) -> Option<PathBuf> {
        match self.cgroup_path() {
            Some(path) if !self.systemd() => Some(path),
            _ => crate::cgroups::host().cgroup_of(init),
        }
    }

    /// The bundle the user gave (not runvz's generated one).
    pub fn bundle(&self) -> PathBuf {
        match (&self.meta, &self.state) {
            (Some(meta), _) => meta.bundle.clone(),
            (None, Some(state)) => state.bundle.clone(),
            (None, None) => PathBuf::new(),
        }
    }

    pub fn cgroup_path(&self) -> Option<PathBuf> {
        self.meta.as_ref().map(|m| m.cgroup_path.clone())
    }

    pub fn systemd(&self) -> bool {
        self.meta.as_ref().map(|m| m.systemd).unwrap_or(false)
    }

    /// Records a new status in state.json (atomically).
    pub fn set_status(&mut self, status: ContainerStatus) -> Result<()> {
        let Some(state) = self.state.as_mut() else {
            bail!("container {} has no state", self.id);
        };
        state.status = status;
        self.save()?;
        self.status = self.compute_status();
        Ok(())
    }

    /// Writes the state file (state and meta) atomically. The caller holds the
    /// container's lock.
    pub fn save(&mut self) -> Result<()> {
        let Some(state) = self.state.as_mut() else {
            bail!("container {} has no state", self.id);
        };
        save_state(&self.state_dir, state, self.meta.as_ref())
    }

    /// Fails with runc-like wording unless the container is in one of `allowed`.
    pub fn require(&self, what: &str, allowed: &[Status]) -> Result<()> {
        if allowed.contains(&self.status) {
            return Ok(());
        }
        match self.status {
            // runc's words, which containerd and Podman match on.
            Status::Stopped => bail!("cannot {what} container {}: container not running", self.id),
            other => bail!("cannot {what} container {}: container is {other}", self.id),
        }
    }
}

/// The one state file in a container's directory.
pub fn state_file(state_dir: &Path) -> PathBuf {
    state_dir.join("state.json")
}

/// Reads state.json, once: every writer (runvz, and libcontainer with patch
/// 26) replaces it atomically, so what is there is whole. None: a create that
/// died before writing it.
fn load_state(state_dir: &Path) -> Result<Option<(State, Option<Meta>)>> {
    let path = state_file(state_dir);
    let corrupt = || format!("{}: the container's state is corrupt", path.display());
    match fs::read(&path) {
        Ok(bytes) => {
            let state = serde_json::from_slice::<State>(&bytes).with_context(corrupt)?;
            let meta = Meta::from_state(&state).with_context(corrupt)?;
            Ok(Some((state, meta)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes state.json (with runvz's meta in it) atomically: a temporary file,
/// then rename.
pub fn save_state(state_dir: &Path, state: &mut State, meta: Option<&Meta>) -> Result<()> {
    if let Some(meta) = meta {
        meta.put_into(state)?;
    }
    write_atomic(&state_file(state_dir), &serde_json::to_vec(state)?)
}

/// The start time (clock ticks since boot) of a process, used to tell a live init
/// from a recycled PID.
pub fn process_start_time(pid: i32) -> Option<u64> {
    procfs::process::Process::new(pid)
        .ok()?
        .stat()
        .ok()
        .map(|s| s.starttime)
}

/// Whether the init has exec'd the container's program: before `start` it is
/// still runvz's own binary (the same file as this process's).
pub fn init_started(pid: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let init = fs::metadata(format!("/proc/{pid}/exe"));
    let ours = fs::metadata("/proc/self/exe");
    match (init, ours) {
        (Ok(init), Ok(ours)) => (init.dev(), init.ino()) != (ours.dev(), ours.ino()),
        _ => true,
    }
}

/// True when `pid` runs, is not a zombie, and (if known) started at `start_time`.
pub fn process_alive(pid: i32, start_time: Option<u64>) -> bool {
    let Ok(process) = procfs::process::Process::new(pid) else {
        return false;
    };
    let Ok(stat) = process.stat() else {
        return false;
    };
    if matches!(stat.state, 'Z' | 'X' | 'x') {
        return false;
    }
    start_time.is_none_or(|t| t == stat.starttime)
}
