//! `runvz exec`: run a new process inside a running container, from `--process`
//! or from flags laid over the container's own process spec (as runc does).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use libcontainer::oci_spec::runtime::{Capability, Process, Spec};

use crate::container::exec::{self, ExecOptions};
use crate::state::Store;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// current working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// UID (format: <uid>[:<gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// path to the process.json
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// set the asm process label for the process commonly used with selinux
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// set the apparmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// set the no new privileges value for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// add a capability to the bounding set for the process
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// pass N additional file descriptors to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// run the process in an (existing) sub-cgroup
    #[arg(long)]
    pub cgroup: Option<String>,
    /// allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// the container's ID
    pub id: String,
    /// the command to run, with its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(store: &Store, args: ExecArgs) -> Result<u8> {
    let container = store.load(&args.id)?;
    // The state first, as runc: a stopped container is refused whatever the flags.
    exec::check_state(&container, args.ignore_paused)?;
    let sub_cgroup = args
        .cgroup
        .as_deref()
        .map(|sub| exec::existing_sub_cgroup(&container, sub))
        .transpose()?;
    let process = build_process(&container.state_dir.join("config.json"), &args)?;
    exec::exec(
        store,
        &container,
        ExecOptions {
            process,
            process_given: args.process.is_some(),
            console_socket: args.console_socket,
            detach: args.detach,
            preserve_fds: args.preserve_fds,
            sub_cgroup,
            ignore_paused: args.ignore_paused,
            pid_file: args.pid_file,
        },
    )
}

/// The process to exec: `--process` as given, or the container's process with
/// the flags laid over it.
fn build_process(config: &std::path::Path, args: &ExecArgs) -> Result<Process> {
    if let Some(path) = &args.process {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let mut value: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: invalid process spec", path.display()))?;
        // runc reads a missing `user` as root (Go's zero value).
        if let Some(fields) = value.as_object_mut() {
            fields
                .entry("user")
                .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
        }
        return serde_json::from_value(value)
            .with_context(|| format!("{}: invalid process spec", path.display()));
    }
    if args.command.is_empty() {
        bail!("exec: process args cannot be empty (usage: runvz exec [flags] ID COMMAND [ARG...])");
    }
    let spec = Spec::load(config).with_context(|| format!("cannot read {}", config.display()))?;
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args.command.clone()));
    process.set_terminal(Some(args.tty));

    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    let mut index: HashMap<String, usize> = env
        .iter()
        .enumerate()
        .map(|(i, kv)| (kv.split('=').next().unwrap_or("").to_string(), i))
        .collect();
    for kv in &args.env {
        let key = kv.split('=').next().unwrap_or("").to_string();
        match index.get(&key) {
            Some(&i) => env[i] = kv.clone(),
            None => {
                index.insert(key, env.len());
                env.push(kv.clone());
            }
        }
    }
    process.set_env(Some(env));
    if let Some(cwd) = &args.cwd {
        process.set_cwd(cwd.clone());
    }
    if let Some(user) = &args.user {
        let mut u = process.user().clone();
        let (uid, gid) = parse_user(user)?;
        u.set_uid(uid);
        if let Some(gid) = gid {
            u.set_gid(gid);
        }
        process.set_user(u);
    }
    if !args.additional_gids.is_empty() {
        let mut u = process.user().clone();
        u.set_additional_gids(Some(args.additional_gids.clone()));
        process.set_user(u);
    }
    if args.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &args.apparmor {
        process.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &args.process_label {
        process.set_selinux_label(Some(label.clone()));
    }
    if !args.cap.is_empty() {
        let mut caps = process.capabilities().clone().unwrap_or_default();
        for name in &args.cap {
            let cap = parse_capability(name)?;
            let add = |set: &Option<std::collections::HashSet<Capability>>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            caps.set_ambient(add(caps.ambient()));
        }
        process.set_capabilities(Some(caps));
    }
    Ok(process)
}

/// A capability as runc names it (`CAP_KILL`); the `CAP_` prefix and case are
/// optional.
fn parse_capability(name: &str) -> Result<Capability> {
    let upper = name.to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .unwrap_or(&upper)
        .parse()
        .map_err(|_| anyhow::anyhow!("exec: unknown capability {name:?}"))
}

fn parse_user(user: &str) -> Result<(u32, Option<u32>)> {
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid = uid
        .parse()
        .map_err(|_| anyhow::anyhow!("exec: --user {user:?}: the UID must be a number"))?;
    let gid = gid
        .map(|g| {
            g.parse()
                .map_err(|_| anyhow::anyhow!("exec: --user {user:?}: the GID must be a number"))
        })
        .transpose()?;
    Ok((uid, gid))
}
