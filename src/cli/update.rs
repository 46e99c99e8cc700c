//! `runvz update`: change a running container's resources, from runc's flags or
//! from a LinuxResources JSON (`--resources FILE`, `-` for stdin), and its
//! beancounters with one flag per parameter (`--numproc 500:500`).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use libcontainer::oci_spec::runtime::{LinuxMemory, LinuxPids, LinuxResources};

use crate::beancounter::params::{ALL, DISK, KNOBS};
use crate::container::update;
use crate::state::Store;
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
    let (mut container, _lock) = store.load_locked(&args.id)?;
    let resources = resources_from(&args)?;
    if !args.beancounters.values.is_empty() {
        update::update_beancounters(&mut container, &args.beancounters.values)?;
    }
    if runc_flags_given(&args) {
        update::update_resources(&container, resources)?;
    }
    Ok(())
}

/// OpenVZ's knobs as `update` flags, one per parameter as `vzctl set` named them
/// (`--numproc 500:500`, `--physpages 0:1G`, `--cpuunits 2000`); each becomes
/// the `runvz.*` annotation of the same name.
#[derive(Debug, Default)]
pub struct BeancounterFlags {
    /// (annotation key, value)
    pub values: Vec<(String, String)>,
}

impl clap::FromArgMatches for BeancounterFlags {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut values = Vec::new();
        for param in ALL {
            if let Some(v) = matches.get_one::<String>(param.name()) {
                values.push((param.annotation(), v.clone()));
            }
        }
        for knob in KNOBS {
            if let Some(v) = matches.get_one::<String>(knob.name()) {
                values.push((knob.annotation(), v.clone()));
            }
        }
        for disk in DISK {
            if let Some(v) = matches.get_one::<String>(disk.name()) {
                values.push((disk.annotation(), v.clone()));
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
                    .help({
                        let d = param.describe();
                        format!("beancounter {} ({}; {})", d.name, d.unit.name(), d.bounds)
                    }),
            );
        }
        for knob in KNOBS {
            let d = knob.describe();
            cmd = cmd.arg(
                clap::Arg::new(d.name)
                    .long(d.name)
                    .value_name("N")
                    .help(format!("OpenVZ's {}: {}", d.name, d.about)),
            );
        }
        for disk in DISK {
            cmd = cmd.arg(
                clap::Arg::new(disk.name())
                    .long(disk.name())
                    .value_name("BARRIER[:LIMIT]")
                    .help(format!("disk quota {}: {}", disk.name(), disk.about())),
            );
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
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
            update::resources_json(&bytes, path)?
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
