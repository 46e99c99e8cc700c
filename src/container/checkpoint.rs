//! `checkpoint`: CRIU dumps the container; unless it is left running (or this
//! is a pre-dump), what is left is a stopped container, deleted as runc does.

use anyhow::{Context, Result};

use super::destroy;
use crate::criu::{self, DumpOptions};
use crate::state::{Container, ContainerLock};

pub fn checkpoint(container: &Container, lock: &ContainerLock, opts: &DumpOptions) -> Result<()> {
    criu::dump(container, opts)?;
    // A pre-dump leaves the processes running (memory only).
    if !opts.leave_running && !opts.pre_dump {
        destroy(container, lock)
            .with_context(|| format!("checkpointed, but cannot delete {}", container.id))?;
    }
    Ok(())
}
