//! Container statistics in runc's `events` schema (`types.Stats`), built from
//! libcgroups' reading of the cgroup (v1 or v2). Callers such as containerd decode
//! these field names, so they follow runc exactly.

use libcgroups::stats::{BlkioDeviceStat, MemoryData, Stats};
use serde_json::{Map, Value, json};

pub fn runc_stats(stats: &Stats) -> Value {
    let cpu = &stats.cpu;
    let mem = &stats.memory;
    let hugetlb: Map<String, Value> = stats
        .hugetlb
        .iter()
        .map(|(size, h)| {
            (
                size.clone(),
                json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.fail_count}),
            )
        })
        .collect();
    json!({
        "cpu": {
            "usage": {
                "total": cpu.usage.usage_total,
                "percpu": cpu.usage.per_core_usage_total,
                "percpu_kernel": cpu.usage.per_core_usage_kernel,
                "percpu_user": cpu.usage.per_core_usage_user,
                "kernel": cpu.usage.usage_kernel,
                "user": cpu.usage.usage_user,
            },
            "throttling": {
                "periods": cpu.throttling.periods,
                "throttled_periods": cpu.throttling.throttled_periods,
                "throttled_time": cpu.throttling.throttled_time,
            },
        },
        "memory": {
            "cache": mem.cache,
            "usage": memory_entry(&mem.memory),
            "swap": memory_entry(&mem.memswap),
            "kernel": memory_entry(&mem.kernel),
            "kernelTCP": memory_entry(&mem.kernel_tcp),
            "raw": mem.stats,
        },
        "pids": {"current": stats.pids.current, "limit": stats.pids.limit},
        "blkio": {
            "ioServiceBytesRecursive": blkio_entries(&stats.blkio.service_bytes),
            "ioServicedRecursive": blkio_entries(&stats.blkio.serviced),
            "ioQueueRecursive": blkio_entries(&stats.blkio.queued),
            "ioServiceTimeRecursive": blkio_entries(&stats.blkio.service_time),
            "ioWaitTimeRecursive": blkio_entries(&stats.blkio.wait_time),
            "ioMergedRecursive": blkio_entries(&stats.blkio.merged),
            "ioTimeRecursive": blkio_entries(&stats.blkio.time),
            "sectorsRecursive": blkio_entries(&stats.blkio.sectors),
        },
        "hugetlb": hugetlb,
    })
}

fn memory_entry(m: &MemoryData) -> Value {
    json!({"limit": m.limit, "usage": m.usage, "max": m.max_usage, "failcnt": m.fail_count})
}

fn blkio_entries(entries: &[BlkioDeviceStat]) -> Value {
    entries
        .iter()
        .map(|e| {
            json!({
                "major": e.major,
                "minor": e.minor,
                "op": e.op_type.clone().unwrap_or_default(),
                "value": e.value,
            })
        })
        .collect()
}
