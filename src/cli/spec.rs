//! `runvz spec`: write a starter config.json, as `runc spec` does.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use libcontainer::oci_spec::runtime::{
    LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType, Mount, Spec,
};

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// generate a configuration for a rootless container
    #[arg(long)]
    pub rootless: bool,
}

pub fn run(args: SpecArgs) -> Result<()> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        bail!("{}: file already exists; remove it first", path.display());
    }
    let mut spec = Spec::default();
    spec.set_hostname(Some("runvz".into()));
    if args.rootless {
        make_rootless(&mut spec)?;
    }
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// What runc's `spec --rootless` changes: a user namespace mapping the caller's
/// IDs to root, no network namespace, /sys bound from the host, no cgroup mount or
/// resources, and a devpts without the host tty group.
fn make_rootless(spec: &mut Spec) -> Result<()> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut namespaces: Vec<LinuxNamespace> = linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|ns| {
            !matches!(
                ns.typ(),
                LinuxNamespaceType::Network | LinuxNamespaceType::User
            )
        })
        .collect();
    let mut user_ns = LinuxNamespace::default();
    user_ns.set_typ(LinuxNamespaceType::User);
    namespaces.push(user_ns);
    linux.set_namespaces(Some(namespaces));
    let map = |host: u32| {
        LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(host)
            .size(1u32)
            .build()
    };
    linux.set_uid_mappings(Some(vec![map(uid)?]));
    linux.set_gid_mappings(Some(vec![map(gid)?]));
    linux.set_resources(None);
    spec.set_linux(Some(linux));

    let mounts: Vec<Mount> = spec
        .mounts()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.typ().as_deref() != Some("cgroup"))
        .map(|mut m| {
            if m.destination().as_os_str() == "/sys" {
                m.set_typ(Some("none".into()));
                m.set_source(Some("/sys".into()));
                m.set_options(Some(
                    ["rbind", "nosuid", "noexec", "nodev", "ro"]
                        .map(String::from)
                        .to_vec(),
                ));
            }
            if let Some(opts) = m.options().clone() {
                m.set_options(Some(opts.into_iter().filter(|o| o != "gid=5").collect()));
            }
            m
        })
        .collect();
    spec.set_mounts(Some(mounts));
    Ok(())
}
