//! `runvz run`: create and start a container; in the foreground, relay its stdio
//! (or terminal), forward signals, return its exit status and delete it.

use anyhow::Result;
use clap::Args;

use super::GlobalOpts;
use super::create::{CreateFlags, create_options};
use crate::console::ConsoleSocket;
use crate::container::{create_container, destroy, write_pid_file};
use crate::state::Store;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
    /// disable the use of the subreaper used to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// the container's ID
    pub id: String,
}

pub fn run(store: &Store, global: &GlobalOpts, args: RunArgs) -> Result<u8> {
    // A terminal in the foreground: runvz takes the pty master itself and relays it.
    let (own_console, console_path) = ConsoleSocket::for_foreground(
        !args.detach && args.flags.console_socket.is_none() && wants_terminal(&args.flags.bundle),
        args.flags.console_socket.clone(),
        &store.root().join(".tmp"),
    )?;
    let detach = args.detach || console_path.is_some();
    let opts = create_options(&args.id, &args.flags, global, detach, console_path);

    let (mut container, lock) = create_container(store, &opts)?;
    let started = (|| -> Result<_> {
        let master = own_console
            .as_ref()
            .map(|c| c.receive_master())
            .transpose()?;
        crate::container::start(&mut container)?;
        Ok(master)
    })();
    let master = match started {
        Ok(master) => master,
        Err(err) => {
            let _ = destroy(&container, &lock);
            return Err(err);
        }
    };
    // The init is runvz's child: even if it already exited (a zombie), it is ours to reap.
    let pid = container.init_pid();
    if let (Some(path), Some(pid)) = (&args.flags.pid_file, pid) {
        write_pid_file(path, pid.as_raw())?;
    }
    drop(lock);
    if args.detach {
        return Ok(0);
    }
    let pid = pid.ok_or_else(|| anyhow::anyhow!("container {} has no init process", args.id))?;
    crate::container::wait_and_remove(store, &args.id, pid, master, args.keep)
}

/// Whether the bundle's process asks for a terminal (create reports a bad config).
fn wants_terminal(bundle: &std::path::Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.pointer("/process/terminal").and_then(|t| t.as_bool()))
        .unwrap_or(false)
}
