//! `runvz create`: build a container and leave its init waiting for `start`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::GlobalOpts;
use crate::container::{CreateOptions, create_container, write_pid_file};
use crate::state::Store;

// The flags `create` and `run` share with runc. (A `//` comment: a doc comment
// would become the about of both commands, which their variants name.)
#[derive(Args, Debug)]
pub struct CreateFlags {
    /// path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// the container's ID
    pub id: String,
}

pub fn run(store: &Store, global: &GlobalOpts, args: CreateArgs) -> Result<()> {
    let opts = create_options(
        &args.id,
        &args.flags,
        global,
        true,
        args.flags.console_socket.clone(),
    );
    let (container, _lock) = create_container(store, &opts)?;
    if let (Some(path), Some(pid)) = (&args.flags.pid_file, container.init_pid()) {
        write_pid_file(path, pid.as_raw())?;
    }
    Ok(())
}

pub fn create_options<'a>(
    id: &'a str,
    flags: &'a CreateFlags,
    global: &GlobalOpts,
    detach: bool,
    console_socket: Option<PathBuf>,
) -> CreateOptions<'a> {
    CreateOptions {
        id,
        bundle: &flags.bundle,
        console_socket,
        preserve_fds: flags.preserve_fds,
        no_pivot: flags.no_pivot,
        systemd: global.systemd_cgroup,
        no_new_keyring: flags.no_new_keyring,
        detach,
        restore: None,
    }
}
