//! `runvz delete [--force] ID`: remove a stopped (or created) container; `--force`
//! kills a running one first and is quiet about a container that is already gone.

use anyhow::Result;
use clap::Args;

use crate::container::destroy;
use crate::state::{Status, Store, validate_id};

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// forcibly delete the container if it is still running (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// the container's ID
    pub id: String,
}

pub fn run(store: &Store, args: DeleteArgs) -> Result<()> {
    validate_id(&args.id)?;
    let lock = store.lock(&args.id)?;
    if !store.exists(&args.id) {
        lock.remove();
        if args.force {
            return Ok(());
        }
        anyhow::bail!("container {} does not exist", args.id);
    }
    let container = if args.force {
        crate::container::load_for_cleanup(store, &args.id)?
    } else {
        store.load(&args.id)?
    };
    match container.status {
        Status::Stopped | Status::Created => {}
        _ if args.force => {}
        other => anyhow::bail!(
            "cannot delete container {} that is not stopped: {other} (use --force)",
            args.id
        ),
    }
    destroy(&container, &lock)
}
