//! `runvz exec`: run a new process inside a running container, from `--process`
//! or from flags laid over the container's own process spec (as runc does).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::{Capability, Process, Spec};
use libcontainer::syscall::syscall::SyscallType;

use crate::console::{ConsoleSocket, wait_foreground};
use crate::container::{Status, Store, write_atomic, write_pid_file};

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
    let mut allowed = vec![Status::Created, Status::Running];
    if args.ignore_paused {
        allowed.push(Status::Paused);
    }
    match container.status {
        Status::Paused if !args.ignore_paused => bail!(
            "cannot exec in container {}: cannot exec in a paused container (use --ignore-paused to override)",
            args.id
        ),
        Status::Stopped => bail!(
            "cannot exec in container {}: cannot exec in a stopped container",
            args.id
        ),
        _ => container.require("exec in", &allowed)?,
    }

    let sub_cgroup = args
        .cgroup
        .as_deref()
        .map(|sub| existing_sub_cgroup(&container, sub))
        .transpose()?;
    let mut process = build_process(&container.runvz_dir.join("config.json"), &args)?;
    if args.process.is_none() {
        // A live `update` of numfile & co. holds for processes started later.
        let current = crate::beancounter::live::current_rlimits(
            &crate::beancounter::report::settings(&container)?,
        )?;
        let mut rlimits = process.rlimits().clone().unwrap_or_default();
        for limit in current {
            rlimits.retain(|r| r.typ() != limit.typ());
            rlimits.push(limit);
        }
        process.set_rlimits(Some(rlimits));
    }
    let terminal = process.terminal().unwrap_or(false);
    let process_file = container
        .runvz_dir
        .join(format!("exec-{}.json", std::process::id()));
    write_atomic(&process_file, &serde_json::to_vec(&process)?)?;

    let own_console = if terminal && !args.detach && args.console_socket.is_none() {
        Some(ConsoleSocket::new(&store.root().join(".tmp"))?)
    } else {
        None
    };
    let console_path = own_console
        .as_ref()
        .map(|c| c.path())
        .or(args.console_socket.clone());

    let built = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_root_path(store.root())
        .and_then(|b| {
            b.with_console_socket(console_path.as_ref())
                .with_preserved_fds(args.preserve_fds)
                .as_tenant()
                .with_detach(args.detach || own_console.is_some())
                .with_process(Some(&process_file))
                .with_ignore_paused(args.ignore_paused)
                .with_sub_cgroup(sub_cgroup.or_else(|| crate::system::exec_sub_cgroup(&container)))
                .build()
        });
    let _ = std::fs::remove_file(&process_file);
    let pid = built
        .map_err(|err| crate::container::runc_wording(anyhow::Error::from(err)))
        .with_context(|| format!("exec failed in container {}", args.id))?;

    if let Some(path) = &args.pid_file {
        write_pid_file(path, pid.as_raw())?;
    }
    if args.detach {
        return Ok(0);
    }
    let master = own_console
        .as_ref()
        .map(|c| c.receive_master())
        .transpose()?;
    wait_foreground(pid, master)
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

/// `exec --cgroup PATH`: a sub-cgroup of the container's that exists in every
/// hierarchy, as runc requires (libcontainer would create it). Plain names
/// only, so it cannot leave the container's cgroup.
fn existing_sub_cgroup(container: &crate::container::Container, sub: &str) -> Result<String> {
    if sub.contains(':') {
        bail!(
            "exec --cgroup {sub:?}: a CONTROLLER:PATH sub-cgroup is not supported by runvz; give PATH (every controller)"
        );
    }
    let relative = crate::safepath::plain_relative(std::path::Path::new(sub), "exec --cgroup")?;
    let own = container
        .cgroup_path()
        .context("container has no cgroup recorded")?;
    for dir in crate::cgroups::dirs_in_every_hierarchy(&own) {
        let wanted = dir.join(&relative);
        if !wanted.is_dir() {
            bail!(
                "exec failed: sub-cgroup {sub:?} of container {}: {}: no such file or directory",
                container.id,
                wanted.display()
            );
        }
    }
    Ok(relative.display().to_string())
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
