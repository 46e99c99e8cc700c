//! OpenVZ's I/O knobs on the block-I/O controller: `ioprio` (0…7) as a
//! proportional weight, `iolimit` (bytes/s) and `iopslimit` (operations/s) as
//! throttles on the host's disks. What the host cannot do is said, not faked.

use std::fs;

/// vzctl's ioprio → CFQ weight table (ioprio 4 is the default, 500).
pub const IOPRIO_WEIGHTS: [u16; 8] = [320, 365, 410, 460, 500, 550, 600, 640];

/// The file a weight lands in on this host, or why there is none.
pub fn weight_support() -> Result<&'static str, String> {
    crate::cgroups::host().io_weight_support()
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
    let controller = crate::cgroups::host().io_throttle_support()?;
    let disks = disks();
    if disks.is_empty() {
        return Err("this host has no disks to throttle".to_string());
    }
    let names: Vec<&str> = disks.iter().map(|d| d.2.as_str()).collect();
    Ok(format!("{controller} on {}", names.join(", ")))
}
