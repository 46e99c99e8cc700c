//! OpenVZ's I/O knobs on the block-I/O controller: `ioprio` (0…7) as a
//! proportional weight, `iolimit` (bytes/s) and `iopslimit` (operations/s) as
//! throttles on the host's disks. What the host cannot do is said, not faked.

use std::fs;
use std::path::Path;

/// vzctl's ioprio → CFQ weight table (ioprio 4 is the default, 500).
pub const IOPRIO_WEIGHTS: [u16; 8] = [320, 365, 410, 460, 500, 550, 600, 640];

/// The file a weight lands in on this host, or why there is none.
pub fn weight_support() -> Result<&'static str, String> {
    if crate::cgroups::is_v2() {
        return if v2_io_controller() {
            Ok("cgroup io.weight")
        } else {
            Err("the io controller is not available".to_string())
        };
    }
    let blkio = Path::new(crate::cgroups::ROOT).join("blkio");
    if blkio.join("blkio.weight").exists() {
        Ok("cgroup blkio.weight")
    } else if blkio.join("blkio.bfq.weight").exists() {
        Ok("cgroup blkio.bfq.weight")
    } else if blkio.exists() {
        Err(
            "the disks' I/O schedulers take no blkio weight (neither CFQ nor BFQ is in use)"
                .to_string(),
        )
    } else {
        Err("the blkio controller is not mounted".to_string())
    }
}

/// Whether the v2 root offers the io controller.
fn v2_io_controller() -> bool {
    fs::read_to_string(Path::new(crate::cgroups::ROOT).join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "io"))
}

/// The host's disks as (major, minor, name): what throttles apply to. Loop,
/// RAM and zram devices are left out, and so are empty ones.
pub fn disks() -> Vec<(i64, i64, String)> {
    let Ok(entries) = fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let mut disks: Vec<(i64, i64, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if ["loop", "ram", "zram"].iter().any(|p| name.starts_with(p)) {
                return None;
            }
            let size: u64 = fs::read_to_string(e.path().join("size"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            if size == 0 {
                return None;
            }
            let dev = fs::read_to_string(e.path().join("dev")).ok()?;
            let (major, minor) = dev.trim().split_once(':')?;
            Some((major.parse().ok()?, minor.parse().ok()?, name))
        })
        .collect();
    disks.sort();
    disks
}

/// How a throttle is enforced here, or why it is not.
pub fn throttle_support() -> Result<String, String> {
    let controller = if crate::cgroups::is_v2() {
        if !v2_io_controller() {
            return Err("the io controller is not available".to_string());
        }
        "cgroup io.max"
    } else {
        if !Path::new(crate::cgroups::ROOT)
            .join("blkio/blkio.throttle.read_bps_device")
            .exists()
        {
            return Err("the blkio controller has no throttling".to_string());
        }
        "cgroup blkio.throttle"
    };
    let disks = disks();
    if disks.is_empty() {
        return Err("this host has no disks to throttle".to_string());
    }
    let names: Vec<&str> = disks.iter().map(|d| d.2.as_str()).collect();
    Ok(format!("{controller} on {}", names.join(", ")))
}
