//! The `runvz.*` annotations of a config.json, parsed and checked before anything
//! is created: beancounters (`runvz.ubc.<name>` = `barrier[:limit]`) and the other
//! OpenVZ knobs. Every bad value is one error naming the key and what is wrong.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;

use super::params::{ALL, Disk, Knob, KnobValue, PAGE_SIZE, Param, UNLIMITED, Unit};

/// A beancounter's soft and hard bound, in the parameter's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub barrier: u64,
    pub limit: u64,
}

/// Everything runvz reads from `runvz.*` annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub ubc: BTreeMap<Param, Bound>,
    /// The CPU and I/O knobs set (see `params::Knob` for their meaning).
    pub knobs: BTreeMap<Knob, u64>,
    /// The disk quota asked for (see `params::Disk`).
    pub disk: BTreeMap<Disk, Bound>,
}

/// The annotation prefix runvz owns.
pub const PREFIX: &str = "runvz.";
pub const UBC_PREFIX: &str = "runvz.ubc.";

/// System containers' annotations, read by `system` and checked there; here,
/// what `features` says of each.
pub const SYSTEM_KEYS: [(&str, &str); 4] = [
    (
        "runvz.system",
        "true|false; default: true when the process is an init (/sbin/init, systemd)",
    ),
    (
        "runvz.haltsignal",
        "signal kill's SIGTERM becomes for a system container; default SIGRTMIN+3 (systemd), SIGUSR2 (busybox init)",
    ),
    (
        "runvz.userns",
        "auto (default for a system container without a user namespace): a 65536-ID range of its own, idmapped rootfs and read-only binds | auto:size=N: N IDs (a multiple of 65536, up to 16777216) | host: none",
    ),
    (
        "runvz.sysinfo",
        "container (default): a system container's sysinfo(2) answers with its memory, swap, uptime, load and threads (seccomp user notification) | host: the kernel's",
    ),
];

/// OpenVZ knobs runvz does not enforce yet: refused, never silently ignored
/// (a tenant's disk quota that is not there is worse than an error).
const NOT_YET: [(&str, &str); 1] = [(
    "runvz.cpumask",
    "CPU masks are not implemented yet; use linux.resources.cpu.cpus",
)];

impl Settings {
    /// Parses every `runvz.*` annotation; `where_` names the file for errors.
    pub fn from_annotations(annotations: &HashMap<String, String>, where_: &str) -> Result<Self> {
        let mut settings = Settings::default();
        let mut keys: Vec<&String> = annotations
            .keys()
            .filter(|k| k.starts_with(PREFIX))
            .collect();
        keys.sort();
        for key in keys {
            let value = annotations[key].trim();
            let fail = |why: String| anyhow::anyhow!("{where_}: {key}: {why}");
            if let Some(name) = key.strip_prefix(UBC_PREFIX) {
                let param = Param::from_name(name).ok_or_else(|| {
                    fail(format!(
                        "unknown beancounter {name:?} (known: {})",
                        ALL.map(|p| p.name()).join(", ")
                    ))
                })?;
                let bound = parse_bound(value, param.unit()).map_err(fail)?;
                settings.ubc.insert(param, bound);
            } else if let Some(knob) = key.strip_prefix(PREFIX).and_then(Knob::from_name) {
                let parsed = match knob.describe().value {
                    KnobValue::Range(min, max) => parse_ranged(value, min, max),
                    KnobValue::Amount(unit) => parse_value(value, unit),
                };
                settings.knobs.insert(knob, parsed.map_err(fail)?);
            } else if let Some(disk) = Disk::from_annotation(key) {
                let bound = parse_bound(value, disk.unit()).map_err(fail)?;
                settings.disk.insert(disk, bound);
            } else if !SYSTEM_KEYS.iter().any(|(k, _)| k == key) {
                return Err(match NOT_YET.iter().find(|(name, _)| name == key) {
                    Some((_, why)) => fail(format!("not supported: {why}")),
                    None => fail("unknown runvz annotation".to_string()),
                });
            }
        }
        Ok(settings)
    }

    pub fn knob(&self, knob: Knob) -> Option<u64> {
        self.knobs.get(&knob).copied()
    }

    /// The disk quota asked for, as the kernel takes it (0: no limit); None
    /// when no disk annotation is set (an explicit `unlimited` still gets a
    /// quota, which counts use and which `update` can later bound).
    pub fn disk_limits(&self) -> Option<crate::quota::Limits> {
        if self.disk.is_empty() {
            return None;
        }
        let kernel = |v: u64| if v >= UNLIMITED { 0 } else { v };
        let pair = |disk| {
            self.disk
                .get(&disk)
                .map_or((0, 0), |b: &Bound| (kernel(b.barrier), kernel(b.limit)))
        };
        Some(crate::quota::Limits {
            space: pair(Disk::Space),
            inodes: pair(Disk::Inodes),
        })
    }
}

/// `barrier:limit`, or one value for both; barrier must not exceed limit.
fn parse_bound(text: &str, unit: Unit) -> std::result::Result<Bound, String> {
    let (b, l) = match text.split_once(':') {
        Some((b, l)) => (b, l),
        None => (text, text),
    };
    let barrier = parse_value(b, unit)?;
    let limit = parse_value(l, unit)?;
    if barrier > limit {
        return Err(format!(
            "barrier {barrier} is above limit {limit} in {text:?}"
        ));
    }
    Ok(Bound { barrier, limit })
}

/// One value in the parameter's unit: a number, `unlimited`, or for bytes and
/// pages a number with a K/M/G/T suffix (bytes; converted to pages for pages).
fn parse_value(text: &str, unit: Unit) -> std::result::Result<u64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") || t == "-1" {
        return Ok(UNLIMITED);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!("{t:?} is not a number"));
    }
    let number: u64 = digits.parse().map_err(|_| format!("{t:?} is too large"))?;
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" => None,
        "K" => Some(10),
        "M" => Some(20),
        "G" => Some(30),
        "T" => Some(40),
        _ => return Err(format!("{t:?} is not a number (suffixes: K, M, G, T)")),
    };
    let Some(shift) = shift else {
        return check_range(number, t);
    };
    if unit == Unit::Count {
        return Err(format!("{t:?}: a count takes no size suffix"));
    }
    let bytes = number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{t:?} is too large"))?;
    let value = match unit {
        Unit::Pages => bytes.div_ceil(PAGE_SIZE),
        Unit::Kblocks => bytes.div_ceil(1024),
        Unit::Count | Unit::Bytes => bytes,
    };
    check_range(value, t)
}

fn check_range(value: u64, text: &str) -> std::result::Result<u64, String> {
    if value > UNLIMITED {
        return Err(format!("{text:?} is above the maximum {UNLIMITED}"));
    }
    Ok(value)
}

fn parse_ranged(text: &str, min: u64, max: u64) -> std::result::Result<u64, String> {
    let value: u64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !(min..=max).contains(&value) {
        return Err(format!("{value} is outside {min}…{max}"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_annotations(&map, "config.json")
    }

    #[test]
    fn bounds_units_and_suffixes() {
        let s = parse(&[
            ("runvz.ubc.numproc", "240:260"),
            ("runvz.ubc.physpages", "0:512M"),
            ("runvz.ubc.kmemsize", "16M"),
            ("runvz.ubc.numfile", "unlimited"),
            ("runvz.cpuunits", "1000"),
            ("other.key", "ignored"),
        ])
        .unwrap();
        assert_eq!(
            s.ubc[&Param::Numproc],
            Bound {
                barrier: 240,
                limit: 260
            }
        );
        assert_eq!(
            s.ubc[&Param::Physpages],
            Bound {
                barrier: 0,
                limit: 131072
            }
        );
        assert_eq!(
            s.ubc[&Param::Kmemsize],
            Bound {
                barrier: 16 << 20,
                limit: 16 << 20
            }
        );
        assert_eq!(s.ubc[&Param::Numfile].limit, UNLIMITED);
        assert_eq!(s.knob(Knob::Cpuunits), Some(1000));
    }

    #[test]
    fn disk_quota_in_kilobyte_blocks_and_inodes() {
        let s = parse(&[
            ("runvz.diskspace", "1G:1100M"),
            ("runvz.diskinodes", "200000:220000"),
        ])
        .unwrap();
        assert_eq!(
            s.disk[&Disk::Space],
            Bound {
                barrier: 1 << 20,
                limit: 1100 << 10
            }
        );
        let limits = s.disk_limits().unwrap();
        assert_eq!(limits.space, (1 << 20, 1100 << 10));
        assert_eq!(limits.inodes, (200_000, 220_000));
        // One of the two asked for: the other is unbounded (0 for the kernel).
        let only_space = parse(&[("runvz.diskspace", "10M")]).unwrap();
        assert_eq!(only_space.disk_limits().unwrap().inodes, (0, 0));
        assert_eq!(parse(&[]).unwrap().disk_limits(), None);
        let err = parse(&[("runvz.diskinodes", "5K")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("takes no size suffix"), "{err}");
    }

    #[test]
    fn errors_name_the_key_and_the_problem() {
        let err = |pairs: &[(&str, &str)]| parse(pairs).unwrap_err().to_string();
        assert_eq!(
            err(&[("runvz.ubc.numproc", "abc")]),
            "config.json: runvz.ubc.numproc: \"abc\" is not a number"
        );
        assert!(
            err(&[("runvz.ubc.numproc", "300:200")]).contains("barrier 300 is above limit 200")
        );
        assert!(err(&[("runvz.ubc.nosuch", "1")]).contains("unknown beancounter \"nosuch\""));
        assert!(err(&[("runvz.ubc.numproc", "10M")]).contains("takes no size suffix"));
        assert!(err(&[("runvz.cpuunits", "5")]).contains("outside 8…500000"));
        assert!(err(&[("runvz.frobnicate", "1")]).contains("unknown runvz annotation"));
        assert!(err(&[("runvz.cpumask", "0-1")]).contains("not supported: CPU masks"));
    }
}
