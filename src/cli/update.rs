//! `runvz update`: change a running container's resources, from runc's flags or
//! from a LinuxResources JSON (`--resources FILE`, `-` for stdin), and its
//! beancounters with one flag per parameter (`--numproc 500:500`).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use libcontainer::oci_spec::runtime::{LinuxMemory, LinuxPids, LinuxResources};

use std::collections::HashMap;

use crate::beancounter::params::ALL;
use crate::beancounter::{Settings, live, report};
use crate::cgroups;
use crate::container::{Container, Status, Store};
use crate::units::parse_bytes;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// path to the file containing the resources to update or '-' to read from the standard input
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// specifies per cgroup weight, range is from 10 to 1000
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight vs. other containers)
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period to be used for hardcapping (in usecs)
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime hardcap limit (in usecs)
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU(s) to use
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// memory node(s) to use
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// kernel memory limit (ignored, as by runc on current kernels)
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// kernel memory limit for tcp buffer
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// memory limit (in bytes, or with a k/m/g suffix)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// memory reservation or soft limit
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// total memory usage (memory + swap); set '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// maximum number of pids allowed in the container
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// the string of Intel RDT/CAT L3 cache schema
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// the string of Intel RDT/MBA memory bandwidth schema
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    #[command(flatten)]
    pub beancounters: BeancounterFlags,
    /// the container's ID
    pub id: String,
}

pub fn run(store: &Store, args: UpdateArgs) -> Result<()> {
    // The container first, as runc: a missing one is "does not exist" whatever
    // the flags say.
    let (container, _lock) = store.load_locked(&args.id)?;
    let mut resources = resources_from(&args)?;
    container.require(
        "update",
        &[Status::Created, Status::Running, Status::Paused],
    )?;
    if !args.beancounters.values.is_empty() {
        update_beancounters(&container, &args.beancounters.values)?;
    }
    if !runc_flags_given(&args) {
        return Ok(());
    }
    let path = container
        .cgroup_path()
        .context("container has no cgroup recorded")?;
    // A swap limit is memory + swap; alone, it applies to the memory limit in force.
    if let Some(mut memory) = *resources.memory()
        && memory.swap().is_some()
        && memory.limit().is_none()
    {
        memory.set_limit(Some(cgroups::memory_limit(&path)));
        resources.set_memory(Some(memory));
    }
    let manager = cgroups::manager(&path, container.systemd(), &container.id)?;
    cgroups::apply_resources(&manager, &path, container.systemd(), &resources)
        .with_context(|| format!("cannot update the resources of container {}", args.id))
}

/// OpenVZ's knobs as `update` flags, one per parameter as `vzctl set` named them
/// (`--numproc 500:500`, `--physpages 0:1G`, `--cpuunits 2000`); each becomes
/// the `runvz.*` annotation of the same name.
#[derive(Debug, Default)]
pub struct BeancounterFlags {
    /// (annotation key, value)
    pub values: Vec<(String, String)>,
}

const KNOBS: [&str; 6] = [
    "cpuunits",
    "cpulimit",
    "cpus",
    "ioprio",
    "iolimit",
    "iopslimit",
];

impl clap::FromArgMatches for BeancounterFlags {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut values = Vec::new();
        for param in ALL {
            if let Some(v) = matches.get_one::<String>(param.name()) {
                values.push((format!("runvz.ubc.{}", param.name()), v.clone()));
            }
        }
        for knob in KNOBS {
            if let Some(v) = matches.get_one::<String>(knob) {
                values.push((format!("runvz.{knob}"), v.clone()));
            }
        }
        Ok(Self { values })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for BeancounterFlags {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        for param in ALL {
            cmd = cmd.arg(
                clap::Arg::new(param.name())
                    .long(param.name())
                    .value_name("BARRIER[:LIMIT]")
                    .help(format!(
                        "beancounter {} ({})",
                        param.name(),
                        param.unit().name()
                    )),
            );
        }
        for knob in KNOBS {
            cmd = cmd.arg(
                clap::Arg::new(knob)
                    .long(knob)
                    .value_name("N")
                    .help(format!("OpenVZ's {knob}")),
            );
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// Applies changed beancounters to the running container and records them, so
/// `beancounters` shows the new bounds.
fn update_beancounters(container: &Container, values: &[(String, String)]) -> Result<()> {
    let changed: HashMap<String, String> = values.iter().cloned().collect();
    let mut annotations = report::annotations(container)?;
    annotations.extend(changed.clone());
    let settings = Settings::from_annotations(&annotations, "update")?;
    let changes = live::plan(&settings, &changed, "update")?;
    let path = container
        .cgroup_path()
        .context("container has no cgroup recorded")?;
    let manager = cgroups::manager(&path, container.systemd(), &container.id)?;
    // rlimits first: the step most likely refused (raising a hard limit needs
    // CAP_SYS_RESOURCE), and then nothing else has changed yet.
    live::set_rlimits(&cgroups::pids(&manager), &changes.rlimits)?;
    if let Some(init) = container.live_pid() {
        live::remount_in_container(init, &changes.remounts)?;
    }
    let resources = only_touched(&changes.resources, &changed);
    cgroups::apply_resources(&manager, &path, container.systemd(), &resources).with_context(
        || {
            format!(
                "cannot update the beancounters of container {}",
                container.id
            )
        },
    )?;
    report::save_overrides(&container.runvz_dir, &changed)
}

/// The parts of the worked-out resources the changed knobs own, so an update of
/// numproc does not also reset a memory limit set with `update --memory`.
fn only_touched(all: &LinuxResources, changed: &HashMap<String, String>) -> LinuxResources {
    let touched = |names: &[&str]| {
        names.iter().any(|n| {
            changed.contains_key(&format!("runvz.ubc.{n}"))
                || changed.contains_key(&format!("runvz.{n}"))
        })
    };
    let memory = touched(&["physpages", "swappages", "vmguarpages", "oomguarpages"]);
    let cpu = touched(&["cpuunits", "cpulimit", "cpus"]);
    let mut out = LinuxResources::default();
    let io = touched(&["ioprio", "iolimit", "iopslimit"]);
    if io {
        out.set_block_io(all.block_io().clone());
    }
    if touched(&["numproc"]) {
        out.set_pids(*all.pids());
    }
    if memory {
        out.set_memory(*all.memory());
    }
    if cpu {
        out.set_cpu(all.cpu().clone());
    }
    if let Some(unified) = all.unified() {
        let kept: HashMap<String, String> = unified
            .iter()
            .filter(|(k, _)| {
                (memory && k.starts_with("memory."))
                    || (cpu && k.starts_with("cpu."))
                    || (io && k.starts_with("io."))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !kept.is_empty() {
            out.set_unified(Some(kept));
        }
    }
    out
}

/// Whether any of runc's own update flags (or --resources) was given.
fn runc_flags_given(args: &UpdateArgs) -> bool {
    args.beancounters.values.is_empty()
        || args.resources.is_some()
        || args.blkio_weight.is_some()
        || args.cpu_period.is_some()
        || args.cpu_quota.is_some()
        || args.cpu_share.is_some()
        || args.cpu_rt_period.is_some()
        || args.cpu_rt_runtime.is_some()
        || args.cpuset_cpus.is_some()
        || args.cpuset_mems.is_some()
        || args.kernel_memory.is_some()
        || args.kernel_memory_tcp.is_some()
        || args.memory.is_some()
        || args.memory_reservation.is_some()
        || args.memory_swap.is_some()
        || args.pids_limit.is_some()
        || args.l3_cache_schema.is_some()
        || args.mem_bw_schema.is_some()
}

fn resources_from(args: &UpdateArgs) -> Result<LinuxResources> {
    let mut r: LinuxResources = match &args.resources {
        Some(path) => {
            let mut bytes = Vec::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .context("cannot read resources from stdin")?;
            } else {
                bytes = std::fs::read(path)
                    .with_context(|| format!("{}: cannot read", path.display()))?;
            }
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{}: invalid LinuxResources JSON", path.display()))?
        }
        None => LinuxResources::default(),
    };
    // Device rules are fixed at create (runc does not update them either).
    r.set_devices(None);

    let mut cpu = r.cpu().clone().unwrap_or_default();
    let mut cpu_set = false;
    macro_rules! cpu_flag {
        ($field:ident, $setter:ident) => {
            if let Some(v) = args.$field.clone() {
                cpu.$setter(Some(v));
                cpu_set = true;
            }
        };
    }
    cpu_flag!(cpu_period, set_period);
    cpu_flag!(cpu_quota, set_quota);
    cpu_flag!(cpu_share, set_shares);
    cpu_flag!(cpu_rt_period, set_realtime_period);
    cpu_flag!(cpu_rt_runtime, set_realtime_runtime);
    cpu_flag!(cpuset_cpus, set_cpus);
    cpu_flag!(cpuset_mems, set_mems);
    if cpu_set || r.cpu().is_some() {
        r.set_cpu(Some(cpu));
    }

    let mut memory = r.memory().unwrap_or_default();
    let mut memory_set = false;
    for (name, flag, setter) in [
        (
            "memory",
            &args.memory,
            LinuxMemory::set_limit as fn(&mut LinuxMemory, Option<i64>) -> &mut LinuxMemory,
        ),
        (
            "memory-reservation",
            &args.memory_reservation,
            LinuxMemory::set_reservation,
        ),
        ("memory-swap", &args.memory_swap, LinuxMemory::set_swap),
        (
            "kernel-memory-tcp",
            &args.kernel_memory_tcp,
            LinuxMemory::set_kernel_tcp,
        ),
    ] {
        if let Some(text) = flag {
            // runc's words: "invalid value for memory: invalid size: 'bogus'".
            let bytes = parse_bytes(text)
                .map_err(|err| anyhow::anyhow!("invalid value for {name}: {err:#}"))?;
            setter(&mut memory, Some(bytes));
            memory_set = true;
        }
    }
    if memory_set || r.memory().is_some() {
        r.set_memory(Some(memory));
    }

    if let Some(limit) = args.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        r.set_pids(Some(pids));
    }
    if let Some(weight) = args.blkio_weight {
        let mut blkio = r.block_io().clone().unwrap_or_default();
        blkio.set_weight(Some(weight));
        r.set_block_io(Some(blkio));
    }
    if args.kernel_memory.is_some() {
        // Kernel memory limits are gone from current kernels; runc ignores them too.
        tracing::warn!("--kernel-memory is ignored: kernel memory limits are not supported");
    }
    if args.l3_cache_schema.is_some() || args.mem_bw_schema.is_some() {
        anyhow::bail!(
            "--l3-cache-schema/--mem-bw-schema: Intel RDT updates are not supported by runvz"
        );
    }
    Ok(r)
}
