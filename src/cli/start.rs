//! `runvz start`: let a created container's init run the user process.

use anyhow::Result;
use clap::Args;

use crate::state::Store;

#[derive(Args, Debug)]
pub struct StartArgs {
    /// the container's ID
    pub id: String,
}

pub fn run(store: &Store, args: StartArgs) -> Result<()> {
    let (mut container, _lock) = store.load_locked(&args.id)?;
    crate::container::start(&mut container)
}
