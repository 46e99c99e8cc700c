//! `runvz checkpoint` / `runvz restore`: runc's flags, handed to `crate::criu`.
//! Before touching anything runvz asks CRIU itself (`criu check`) whether it can
//! work on this host, and says plainly when it cannot.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::GlobalOpts;
use crate::container::{CreateOptions, create_container, write_pid_file};
use crate::criu::{self, DumpOptions, RestoreOptions};
use crate::state::{Status, Store};

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
    /// dump container's memory information only, leave the container running after this
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// use userfaultfd to lazily restore memory pages
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// criu writes \0 to this FD once lazy-pages is ready
    #[arg(long = "status-fd", default_value_t = -1, allow_negative_numbers = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// create a namespace, but don't save its properties (only "network")
    #[arg(long = "empty-ns")]
    pub empty_ns: Option<String>,
    /// enable auto deduplication of memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
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
    /// path to an AF_UNIX socket for the console (terminal containers cannot be restored yet)
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// disable the use of the subreaper used to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
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
    /// create a namespace, but don't restore its properties (only "network")
    #[arg(long = "empty-ns", value_parser = ["network"])]
    pub empty_ns: Option<String>,
    /// the container's ID
    pub id: String,
}

/// Checks every argument in runc's order (the container's state, the image
/// paths, the page server, the modes) before asking CRIU whether it can work.
pub fn checkpoint(store: &Store, global: &GlobalOpts, args: CheckpointArgs) -> Result<()> {
    let (container, lock) = store.load_locked(&args.id)?;
    if matches!(container.status, Status::Created | Status::Stopped) {
        bail!(
            "Container cannot be checkpointed in {} state",
            container.status
        );
    }
    container.require("checkpoint", &[Status::Running])?;
    let parent_path = match &args.parent_path {
        Some(parent) => Some(criu::parent_images(&args.image_path, parent)?),
        None => None,
    };
    let page_server = args
        .page_server
        .as_deref()
        .map(criu::parse_page_server)
        .transpose()?;
    let cgroups_mode = criu::parse_cgroups_mode(&args.manage_cgroups_mode)?;
    let empty_netns = match args.empty_ns.as_deref() {
        None => false,
        Some("network") => true,
        Some(other) => bail!("namespace {other:?} is not supported"),
    };
    criu::check_usable(&global.criu).context("checkpoint")?;
    let opts = DumpOptions {
        criu: global.criu.clone(),
        image_path: args.image_path,
        work_path: args.work_path,
        parent_path,
        leave_running: args.leave_running,
        pre_dump: args.pre_dump,
        tcp_established: args.tcp_established,
        ext_unix_sk: args.ext_unix_sk,
        shell_job: args.shell_job,
        file_locks: args.file_locks,
        lazy_pages: args.lazy_pages,
        status_fd: args.status_fd,
        page_server,
        empty_netns,
        auto_dedup: args.auto_dedup,
        cgroups_mode,
    };
    crate::container::checkpoint(&container, &lock, &opts)
}

/// Restores a container from a checkpoint; in the foreground runvz waits for it
/// like `run` and returns its exit status.
pub fn restore(store: &Store, global: &GlobalOpts, args: RestoreArgs) -> Result<u8> {
    crate::state::validate_id(&args.id)?;
    if !args.detach && args.no_subreaper {
        bail!(
            "restore: in the foreground runvz waits for the container as its subreaper; --no-subreaper needs --detach"
        );
    }
    if store.exists(&args.id) {
        bail!("container with id {} already exists", args.id);
    }
    if !args.bundle.join("config.json").is_file() {
        bail!(
            "restore: {}: JSON specification file config.json not found",
            args.bundle.join("config.json").display()
        );
    }
    criu::check_usable(&global.criu).context("restore")?;
    let restore = RestoreOptions {
        criu: global.criu.clone(),
        image_path: args.image_path,
        work_path: args.work_path,
        tcp_established: args.tcp_established,
        ext_unix_sk: args.ext_unix_sk,
        shell_job: args.shell_job,
        file_locks: args.file_locks,
        cgroups_mode: criu::parse_cgroups_mode(&args.manage_cgroups_mode)?,
        empty_netns: args.empty_ns.is_some(),
        subreaper: !args.detach,
    };
    let opts = CreateOptions {
        id: &args.id,
        bundle: &args.bundle,
        console_socket: args.console_socket.clone(),
        preserve_fds: 0,
        no_pivot: args.no_pivot,
        systemd: global.systemd_cgroup,
        // CRIU restores the processes' keyrings as they were.
        no_new_keyring: true,
        detach: args.detach,
        restore: Some(&restore),
    };
    let (container, lock) = create_container(store, &opts)?;
    let pid = container
        .init_pid()
        .with_context(|| format!("container {} has no init after restore", args.id))?;
    if let Some(path) = &args.pid_file {
        write_pid_file(path, pid.as_raw())?;
    }
    drop(lock);
    if args.detach {
        return Ok(0);
    }
    crate::container::wait_and_remove(store, &args.id, pid, None, false)
}
