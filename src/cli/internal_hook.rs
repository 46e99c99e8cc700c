//! `runvz internal-hook …`: steps runvz adds to a container as OCI hooks where
//! libcontainer's own behaviour differs from runc's. Not for people: runvz puts
//! these into the generated config.json itself.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct InternalHookArgs {
    #[command(subcommand)]
    pub hook: InternalHook,
}

#[derive(Subcommand, Debug)]
pub enum InternalHook {
    /// createContainer hook: /dev as runc lays it out (`/dev/core`, not libcontainer's `/dev/kcore`)
    DevFixups {
        /// the container's rootfs (the hook runs in its mount namespace, before pivot_root)
        rootfs: PathBuf,
    },
}

pub fn run(args: InternalHookArgs) -> Result<()> {
    match args.hook {
        InternalHook::DevFixups { rootfs } => dev_fixups(&rootfs),
    }
}

fn dev_fixups(rootfs: &std::path::Path) -> Result<()> {
    let dev = rootfs.join("dev");
    let kcore = dev.join("kcore");
    if kcore
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        std::fs::remove_file(&kcore)
            .with_context(|| format!("cannot remove {}", kcore.display()))?;
    }
    let core = dev.join("core");
    if core.symlink_metadata().is_err() {
        std::os::unix::fs::symlink("/proc/kcore", &core)
            .with_context(|| format!("cannot create {}", core.display()))?;
    }
    Ok(())
}
