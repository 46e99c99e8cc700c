//! `create`: check the bundle, write the container's state file and generated
//! config, let libcontainer build the container, and leave nothing behind when
//! that fails.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{ContainerStatus, State};
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;

use crate::beancounter::{self, Settings};

use super::destroy;
use super::steps::{STEPS, Step};
use crate::state::{
    Container, ContainerLock, Meta, Store, process_start_time, save_state, validate_id,
};

pub struct CreateOptions<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    pub systemd: bool,
    /// Keep the caller's session keyring instead of giving the container its own.
    pub no_new_keyring: bool,
    /// False only for `run` in the foreground without a console socket: the init
    /// then shares runvz's stdio (and a terminal spec needs no socket).
    pub detach: bool,
    /// Bring the processes back from CRIU images instead of starting the init.
    pub restore: Option<&'a crate::criu::RestoreOptions>,
}

/// Creates the container and returns it (status `created`) with its lock held.
pub fn create_container(store: &Store, opts: &CreateOptions) -> Result<(Container, ContainerLock)> {
    validate_id(opts.id)?;
    let lock = store.lock(opts.id)?;
    if store.exists(opts.id) {
        match Container::load(store, opts.id) {
            // Left by a create that was killed before its init existed (this
            // create holds the lock, so no other is at work): clear it (and any
            // cgroup or process it made) before starting afresh.
            Ok(stale) if stale.interrupted_create() => destroy(&stale, &lock)
                .context("cannot clear what an interrupted create left behind")?,
            // The lock file belongs to the existing container: leave it.
            _ => bail!("container with id {} already exists", opts.id),
        }
    }

    let dir = store.state_dir(opts.id);
    let prepared = fs::canonicalize(opts.bundle)
        .map_err(|err| {
            anyhow::anyhow!(
                "bundle {}: cannot open: {}",
                opts.bundle.display(),
                crate::logging::os_words(&err)
            )
        })
        .and_then(|bundle| prepare_spec(&bundle, opts, store.root(), &dir));
    // The annotations were checked with the config (`check_config`, which the
    // fuzz target runs and which hands back the spec alone): read the disk
    // quota they ask for from the same values.
    let prepared = prepared.and_then(|(spec, meta, system, userns_root)| {
        let annotations = spec.annotations().clone().unwrap_or_default();
        let disk_limits = Settings::from_annotations(&annotations, "config.json")?.disk_limits();
        Ok((spec, meta, system, userns_root, disk_limits))
    });
    let (spec, meta, system, userns_root, disk_limits) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => {
            lock.remove();
            return Err(err);
        }
    };

    let mut job = Job {
        store,
        opts,
        idmap_dir: crate::idmap::dir(&crate::userns::key(store.root(), opts.id)),
        state: initial_state(opts.id, &meta),
        dir,
        spec,
        meta,
        system,
        userns_root,
        disk_limits,
        marker: None,
    };
    let result = STEPS
        .iter()
        .try_for_each(|step| job.run(*step))
        .and_then(|()| {
            let mut container = Container::load(store, opts.id)?;
            record_init(&mut container)?;
            Ok(container)
        });

    match result {
        Ok(container) => Ok((container, lock)),
        Err(err) => {
            if let Ok(partial) = Container::load(store, opts.id)
                && let Err(cleanup) = destroy(&partial, &lock)
            {
                tracing::warn!("cleanup after failed create: {cleanup:#}");
            }
            lock.remove();
            Err(err)
        }
    }
}

/// A create in progress: what `prepare_spec` worked out, taken through the steps.
struct Job<'a> {
    store: &'a Store,
    opts: &'a CreateOptions<'a>,
    idmap_dir: PathBuf,
    /// The container's directory (`Store::state_dir`).
    dir: PathBuf,
    /// The state file as runvz writes it before libcontainer takes over.
    state: State,
    spec: Spec,
    meta: Meta,
    system: Option<crate::system::SystemMode>,
    userns_root: Option<PathBuf>,
    /// The disk quota asked for (`runvz.diskspace`, `runvz.diskinodes`).
    disk_limits: Option<crate::quota::Limits>,
    /// [`CREATE_MARKER`], held open for the whole create.
    marker: Option<fs::File>,
}

impl Job<'_> {
    fn run(&mut self, step: Step) -> Result<()> {
        match step {
            Step::Record => self.record(),
            Step::IdRange => self.id_range(),
            Step::DiskQuota => self.disk_quota(),
            Step::Mounts => self.mounts(),
            Step::ProcView => self.proc_view(),
            Step::Build => self.build(),
            Step::Delegate => match (self.meta.userns_start, self.opts.restore) {
                (Some(start), None) => {
                    crate::userns::delegate_cgroup(&self.meta.cgroup_path, start)
                }
                _ => Ok(()),
            },
        }
    }

    /// The container's directory, its state file (status creating) and the
    /// create marker.
    fn record(&mut self) -> Result<()> {
        let dir = &self.dir;
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        save_state(dir, &mut self.state, Some(&self.meta))?;
        let marker = dir.join(CREATE_MARKER);
        self.marker = Some(
            fs::File::create(&marker)
                .with_context(|| format!("cannot create {}", marker.display()))?,
        );
        Ok(())
    }

    /// With the state on disk, a create killed from here on leaves what
    /// `delete --force` needs to give the range back.
    fn id_range(&mut self) -> Result<()> {
        if let Some(root) = &self.userns_root {
            let key = crate::userns::key(self.store.root(), self.opts.id);
            let size = self.meta.userns_size.unwrap_or(crate::userns::RANGE);
            let start = crate::userns::allocate(&key, size)?;
            crate::userns::apply_to_spec(&mut self.spec, start, size, root);
            self.meta.userns_start = Some(start);
            save_state(&self.dir, &mut self.state, Some(&self.meta))?;
        }
        Ok(())
    }

    /// Before any process of the container can write: the quota is planned
    /// (a project ID reserved) and recorded, then the tree tagged and bounded.
    fn disk_quota(&mut self) -> Result<()> {
        let Some(limits) = self.disk_limits else {
            return Ok(());
        };
        let key = crate::userns::key(self.store.root(), self.opts.id);
        let mut quota = crate::quota::plan(&self.meta.rootfs, &key, &limits)?;
        self.meta.disk_quota = Some(quota.clone());
        save_state(&self.dir, &mut self.state, Some(&self.meta))?;
        crate::quota::apply(&mut quota, &limits)?;
        self.meta.disk_quota = Some(quota);
        save_state(&self.dir, &mut self.state, Some(&self.meta))
    }

    fn mounts(&mut self) -> Result<()> {
        // Before the bind mounts are cloned: it is one of them.
        if self.system.as_ref().is_some_and(|s| s.needs_machine_id) {
            fs::write(
                self.dir.join(MACHINE_ID_FILE),
                crate::system::new_machine_id()? + "\n",
            )?;
        }
        let userns_start = self.meta.userns_start;
        if let Some(start) = userns_start {
            let size = self.meta.userns_size.unwrap_or(crate::userns::RANGE);
            crate::idmap::rootfs(&self.meta.rootfs, &self.idmap_dir, start, size)?;
            crate::idmap::sysfs_of_joined_netns(&mut self.spec, &self.idmap_dir, start)?;
            if self.system.is_some() {
                crate::nesting::devices(&mut self.spec, &self.idmap_dir, start)?;
            }
        }
        crate::idmap::bind_mounts(&mut self.spec, &self.idmap_dir, userns_start.is_some())
    }

    fn proc_view(&mut self) -> Result<()> {
        if self.meta.system && self.opts.restore.is_none() {
            let sysinfo = self.system.as_ref().is_some_and(|s| s.sysinfo);
            self.meta.proc_view =
                crate::procview::start(&mut self.spec, self.store.root(), self.opts.id, sysinfo)?;
            save_state(&self.dir, &mut self.state, Some(&self.meta))?;
        }
        Ok(())
    }

    /// The spec as built goes beside the state; then libcontainer builds the
    /// container (a system container's init inside its named v1 systemd
    /// cgroup), or CRIU restores it.
    fn build(&mut self) -> Result<()> {
        let (store, opts, meta) = (self.store, self.opts, &self.meta);
        self.spec
            .save(self.dir.join("config.json"))
            .with_context(|| format!("cannot write {}/config.json", self.dir.display()))?;
        crate::cgroups::precreate_parents(&meta.cgroup_path, meta.systemd);
        if let Some(restore) = opts.restore {
            let target = crate::criu::Target {
                id: opts.id,
                dir: &self.dir,
                spec: &self.spec,
                meta,
            };
            return crate::criu::restore(&target, restore).map(|_| ());
        }
        let named = meta
            .system
            .then(|| crate::system::named_systemd_dir(&meta.cgroup_path))
            .flatten();
        match named {
            Some(dir) => {
                crate::system::while_in_named_cgroup(&dir, || build(store, opts, &meta.bundle))
            }
            None => build(store, opts, &meta.bundle),
        }
    }
}

/// What `prepare_spec` works out: the spec, the meta to record, the system
/// mode, and (when the container gets an ID range of its own) its root: the
/// idmapped mount runvz makes.
type Prepared = (
    Spec,
    Meta,
    Option<crate::system::SystemMode>,
    Option<PathBuf>,
);

/// The machine ID runvz gives a system container whose rootfs has none.
const MACHINE_ID_FILE: &str = "machine-id";

/// A file in the container's directory that `create` holds open
/// while it works. libcontainer's intermediate and init processes are clones
/// of it and inherit the descriptor until the init execs the container's
/// program (it is close-on-exec): if `create` is killed, `delete --force` finds
/// the processes it left by that open file (`teardown`), not by a command line.
pub const CREATE_MARKER: &str = "creating";

/// Reads and checks `<bundle>/config.json` and fills in what runvz decides
/// (absolute rootfs, a cgroups path of runvz's own when none is given).
fn prepare_spec(
    bundle: &Path,
    opts: &CreateOptions,
    store_root: &Path,
    dir: &Path,
) -> Result<Prepared> {
    let config_path = bundle.join("config.json");
    let bytes = fs::read(&config_path).map_err(|err| match err.kind() {
        // runc's words, which scripts know.
        std::io::ErrorKind::NotFound => anyhow::anyhow!(
            "{}: JSON specification file config.json not found",
            config_path.display()
        ),
        _ => anyhow::anyhow!(
            "{}: cannot read: {}",
            config_path.display(),
            crate::logging::os_words(&err)
        ),
    })?;
    let where_ = config_path.display().to_string();
    let mut spec = parse_config(&bytes, &where_)?;
    let root = spec
        .root()
        .as_ref()
        .with_context(|| format!("{}: root is missing", config_path.display()))?;
    let rootfs = bundle.join(root.path());
    if !rootfs.is_dir() {
        bail!(
            "{}: root.path: rootfs {} does not exist or is not a directory",
            config_path.display(),
            rootfs.display()
        );
    }
    let canonical = fs::canonicalize(&rootfs)?;
    // runc's rule: the rootfs is named by its real path (a symlink in it could
    // be changed under the caller).
    if canonical != crate::safepath::lexically_normal(&rootfs) {
        bail!(
            "{}: root.path: invalid rootfs {}: not an absolute path, or a symlink",
            config_path.display(),
            rootfs.display()
        );
    }
    let rootfs = canonical;
    let mut root = root.clone();
    root.set_path(rootfs.clone());
    spec.set_root(Some(root));

    let mut linux = check_sections(&spec, &where_, opts.systemd)?;
    let cgroup_path = match linux.cgroups_path() {
        Some(path) => path.clone(),
        None => default_cgroup_path(opts.id, opts.systemd),
    };
    if linux
        .resources()
        .as_ref()
        .and_then(|r| r.unified().as_ref())
        .is_some_and(|u| !u.is_empty())
        && !crate::cgroups::host().takes_unified()
    {
        bail!(
            "{}: linux.resources.unified: invalid configuration: cannot use unified on cgroup v1",
            config_path.display()
        );
    }
    if opts.restore.is_none() {
        crate::cgroups::check_existing(&cgroup_path, opts.systemd)?;
    }
    linux.set_cgroups_path(Some(cgroup_path.clone()));
    spec.set_linux(Some(linux));
    let system = crate::system::detect(&spec, &rootfs, &config_path.display().to_string())?;
    if let Some(mode) = &system {
        crate::system::apply(&mut spec, mode, &dir.join(MACHINE_ID_FILE))?;
        // A restored container keeps the clock its checkpoint recorded.
        if opts.restore.is_none() {
            crate::system::own_clock(&mut spec)?;
        }
    }
    // A system container's own user-namespace range (runvz.userns=auto): its
    // rootfs is then the idmapped mount runvz makes at the idmap directory.
    // Checked for every container (an accepted annotation is an understood one),
    // used by system containers.
    let userns_size = crate::userns::wanted(&spec, &config_path.display().to_string())?
        .filter(|_| system.is_some());
    let userns = userns_size.is_some();
    if system.is_some() && crate::nesting::wanted(&spec, userns) {
        crate::nesting::apply(&mut spec)?;
    }
    let userns_root = userns.then(|| {
        crate::idmap::dir(&crate::userns::key(store_root, opts.id)).join(crate::idmap::ROOTFS)
    });

    let meta = Meta {
        bundle: bundle.to_path_buf(),
        rootfs,
        cgroup_path,
        systemd: opts.systemd,
        init_start_time: None,
        system: system.is_some(),
        halt_signal: system.as_ref().and_then(|s| s.halt_signal),
        // Allocated once the state file is on disk (Step::IdRange).
        userns_start: None,
        userns_size: userns_size.filter(|&size| size != crate::userns::RANGE),
        beancounters: Default::default(),
        disk_quota: None,
        proc_view: false,
    };
    Ok((spec, meta, system, userns_root))
}

/// What `create` checks of a config.json before it looks at the rootfs or
/// the host (the fuzz target `config_json` runs exactly this).
pub fn check_config(bytes: &[u8], where_: &str, systemd: bool) -> Result<Spec> {
    let spec = parse_config(bytes, where_)?;
    if spec.root().is_none() {
        bail!("{where_}: root is missing");
    }
    check_sections(&spec, where_, systemd)?;
    crate::userns::wanted(&spec, where_)?;
    Ok(spec)
}

/// The JSON, its ociVersion, and the `runvz.*` annotations with the
/// beancounters they write into the spec.
fn parse_config(bytes: &[u8], where_: &str) -> Result<Spec> {
    let spec: Spec = serde_json::from_slice(bytes)
        .with_context(|| format!("{where_}: invalid runtime config"))?;
    if !spec.version().starts_with("1.") {
        bail!(
            "{where_}: ociVersion {:?} is not supported (runvz implements 1.x)",
            spec.version()
        );
    }
    apply_beancounters(spec, where_)
}

/// `process`, the namespaces, and the `linux` section returned with its
/// cgroupsPath confined and its device rules as runc applies them.
fn check_sections(spec: &Spec, where_: &str, systemd: bool) -> Result<oci_spec::runtime::Linux> {
    check_process(spec, where_)?;
    check_namespaces(spec, where_)?;
    let mut linux = spec
        .linux()
        .clone()
        .with_context(|| format!("{where_}: linux section is missing"))?;
    if let Some(path) = linux.cgroups_path() {
        let confined = crate::cgroups::confine(path, systemd)
            .with_context(|| format!("{where_}: linux.cgroupsPath"))?;
        linux.set_cgroups_path(Some(confined));
    }
    normalize_device_rules(&mut linux);
    Ok(linux)
}

/// runc's checks of `process`, in its words: it exists, has arguments and an
/// absolute working directory.
fn check_process(spec: &Spec, where_: &str) -> Result<()> {
    let Some(process) = spec.process() else {
        bail!("{where_}: process is missing");
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("{where_}: process.args: args must not be empty");
    }
    if !process.cwd().is_absolute() {
        bail!(
            "{where_}: process.cwd {:?}: Cwd must be an absolute path",
            process.cwd()
        );
    }
    Ok(())
}

/// Each namespace type at most once (runc: "duplicated ns").
fn check_namespaces(spec: &Spec, where_: &str) -> Result<()> {
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for ns in &namespaces {
        if !seen.insert(ns.typ()) {
            bail!("{where_}: linux.namespaces: duplicated ns {:?}", ns.typ());
        }
    }
    Ok(())
}

/// The device cgroup rules as runc applies them: from "deny everything" (a
/// config that only denies one device must not leave all others open), and
/// access strings keep only the letters the kernel knows (`rwa` → `rw`;
/// the kernel refuses the whole rule with EINVAL otherwise).
fn normalize_device_rules(linux: &mut oci_spec::runtime::Linux) {
    use oci_spec::runtime::LinuxDeviceCgroup;
    let mut resources = linux.resources().clone().unwrap_or_default();
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all
        .set_allow(false)
        .set_typ(Some(oci_spec::runtime::LinuxDeviceType::A))
        .set_major(None)
        .set_minor(None)
        .set_access(Some("rwm".into()));
    let mut rules = vec![deny_all];
    for rule in resources.devices().clone().unwrap_or_default() {
        let mut rule: LinuxDeviceCgroup = rule;
        if let Some(access) = rule.access().clone() {
            let mut kept = String::new();
            for c in access.chars().filter(|c| "rwm".contains(*c)) {
                if !kept.contains(c) {
                    kept.push(c);
                }
            }
            rule.set_access(Some(kept));
        }
        rules.push(rule);
    }
    resources.set_devices(Some(rules));
    linux.set_resources(Some(resources));
}

/// Checks the `runvz.*` annotations and writes the beancounters the OCI spec can
/// carry into it (a config without them is passed through untouched).
fn apply_beancounters(mut spec: Spec, where_: &str) -> Result<Spec> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let settings = Settings::from_annotations(&annotations, where_)?;
    if settings != Settings::default() {
        beancounter::spec::apply(&settings, &mut spec, where_)?;
    }
    Ok(spec)
}

/// runc's default is a path relative to its own cgroup; libcontainer's has colons
/// that cgroupfs would take literally. runvz groups its containers under `runvz`.
fn default_cgroup_path(id: &str, systemd: bool) -> PathBuf {
    if systemd {
        PathBuf::from(format!("system.slice:runvz:{id}"))
    } else {
        PathBuf::from(format!("/runvz/{id}"))
    }
}

/// The state file `create` writes first: status creating, no init yet, and
/// runvz's meta (libcontainer keeps it when it takes the file over).
fn initial_state(id: &str, meta: &Meta) -> State {
    let mut state = State::new(id, ContainerStatus::Creating, None, meta.bundle.clone());
    state.created = Some(chrono::Utc::now());
    state.creator = Some(nix::unistd::geteuid().as_raw());
    state.use_systemd = meta.systemd;
    state
}

/// Has libcontainer make the container from runvz's generated config in the
/// container's directory (which runvz prepared, state file and all), recording
/// the caller's `bundle` (hooks and `state` see it).
fn build(store: &Store, opts: &CreateOptions, bundle: &Path) -> Result<()> {
    if !opts.no_new_keyring {
        join_session_keyring(opts.id)?;
    }
    ContainerBuilder::new(opts.id.to_string(), SyscallType::default())
        .with_root_path(store.root())?
        .with_console_socket(opts.console_socket.as_ref())
        .with_preserved_fds(opts.preserve_fds)
        .as_init(bundle)
        .with_config_dir(store.state_dir(opts.id))
        .with_prepared_dir(true)
        .with_systemd(opts.systemd)
        .with_detach(opts.detach)
        .with_no_pivot(opts.no_pivot)
        .build()
        .map_err(anyhow::Error::from)
        .with_context(|| format!("failed to create container {}", opts.id))?;
    Ok(())
}

/// Notes the init's start time (PID-reuse guard) in the state file.
fn record_init(container: &mut Container) -> Result<()> {
    let pid = container
        .init_pid()
        .context("container has no init pid after create")?;
    let meta = container
        .meta
        .as_mut()
        .context("container state lost runvz's record during create")?;
    meta.init_start_time = process_start_time(pid.as_raw());
    container.save()?;
    container.status = container.compute_status();
    Ok(())
}

/// Writes a PID file the way runc does: atomically, the number without newline.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    crate::state::write_atomic(&path, pid.to_string().as_bytes())
        .with_context(|| format!("cannot write pid file {}", path.display()))
}

/// Gives the container a session keyring of its own, as runc does: libcontainer
/// has no such step, and the init inherits runvz's keyring, so runvz joins a fresh
/// one (`_ses.<id>`) just before the init is cloned, with runc's permissions
/// (the default plus "link" for the owning user).
fn join_session_keyring(id: &str) -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    const KEYCTL_SETPERM: libc::c_long = 5;
    const SESSION_KEYRING_PERM: libc::c_long = 0x3f1b_0000;
    let name = std::ffi::CString::new(format!("_ses.{id}"))?;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, name) reads a NUL-terminated string we own.
    let serial =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if serial < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOSYS) {
            tracing::warn!("kernel has no keyrings; the container shares runvz's session keyring");
            return Ok(());
        }
        return Err(err)
            .context("cannot create the container's session keyring (try --no-new-keyring)");
    }
    // SAFETY: keyctl(SETPERM, serial, perm) takes plain integers.
    if unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_SETPERM,
            serial,
            SESSION_KEYRING_PERM,
        )
    } < 0
    {
        return Err(std::io::Error::last_os_error())
            .context("cannot set the session keyring's permissions");
    }
    Ok(())
}
