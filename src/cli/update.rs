//! `runvz update`: change a running container's resources, from runc's flags or
//! from a LinuxResources JSON (`--resources FILE`, `-` for stdin).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use libcgroups::common::{CgroupManager, ControllerOpt};
use libcontainer::oci_spec::runtime::{LinuxMemory, LinuxPids, LinuxResources};

use crate::cgroups;
use crate::container::{Status, Store};
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
    /// the container's ID
    pub id: String,
}

pub fn run(store: &Store, args: UpdateArgs) -> Result<()> {
    let mut resources = resources_from(&args)?;
    let (container, _lock) = store.load_locked(&args.id)?;
    container.require(
        "update",
        &[Status::Created, Status::Running, Status::Paused],
    )?;
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
    manager
        .apply(&ControllerOpt {
            resources: &resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        .with_context(|| format!("cannot update the resources of container {}", args.id))
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
    for (flag, setter) in [
        (
            &args.memory,
            LinuxMemory::set_limit as fn(&mut LinuxMemory, Option<i64>) -> &mut LinuxMemory,
        ),
        (&args.memory_reservation, LinuxMemory::set_reservation),
        (&args.memory_swap, LinuxMemory::set_swap),
        (&args.kernel_memory_tcp, LinuxMemory::set_kernel_tcp),
    ] {
        if let Some(text) = flag {
            setter(&mut memory, Some(parse_bytes(text)?));
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
