//! `runvz spec`: write a starter config.json, byte for byte what `runc spec`
//! (runc 1.1.5) writes, so scripts written for runc (`spec`, then `run` or
//! `create --console-socket`, since `terminal` is true) work unchanged.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// generate a configuration for a rootless container
    #[arg(long)]
    pub rootless: bool,
}

/// `runc spec`'s output.
const DEFAULT: &str = include_str!("spec/runc-default.json");
/// `runc spec --rootless`'s output, with the caller's IDs at `@UID@`/`@GID@`.
const ROOTLESS: &str = include_str!("spec/runc-rootless.json.in");

/// The mount namespace's entry in both files, which runc follows with the
/// cgroup namespace's on v2.
const MOUNT_NS: &str = "{\n\t\t\t\t\"type\": \"mount\"\n\t\t\t}";

pub fn run(args: SpecArgs) -> Result<()> {
    let text = if args.rootless {
        ROOTLESS
            .replace("@UID@", &nix::unistd::geteuid().to_string())
            .replace("@GID@", &nix::unistd::getegid().to_string())
    } else {
        DEFAULT.to_string()
    };
    // runc gives a container its own cgroup namespace on a cgroup v2 host.
    let text = if crate::cgroups::version() == crate::cgroups::Version::V2 {
        text.replacen(
            MOUNT_NS,
            &format!("{MOUNT_NS},\n\t\t\t{{\n\t\t\t\t\"type\": \"cgroup\"\n\t\t\t}}"),
            1,
        )
    } else {
        text
    };
    if !args.bundle.is_dir() {
        bail!("chdir {}: no such file or directory", args.bundle.display());
    }
    let path = args.bundle.join("config.json");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::AlreadyExists => {
                anyhow::anyhow!("File config.json exists. Remove it first")
            }
            _ => anyhow::Error::from(err).context(format!("cannot write {}", path.display())),
        })?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
