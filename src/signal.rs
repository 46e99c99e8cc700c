//! Signal names and numbers as runc accepts them: `9`, `KILL`, `SIGKILL`, `kill`,
//! and real-time signals as `RTMIN+3` / `SIGRTMIN+3` / `37`.

use std::str::FromStr;

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

pub fn parse(raw: &str) -> Result<i32> {
    let raw = raw.trim();
    // runc takes an empty signal for the default one.
    if raw.is_empty() {
        return Ok(libc::SIGTERM);
    }
    if let Ok(n) = raw.parse::<i32>() {
        // 0 checks that the process exists, as kill(2) does.
        // runc hands any number to kill(2); the kernel refuses these.
        if n < 0 || n > libc::SIGRTMAX() {
            bail!("unable to signal init: invalid argument (signal {raw:?})");
        }
        return Ok(n);
    }
    let upper = raw.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let offset =
            parse_offset(rest, '+').ok_or_else(|| anyhow::anyhow!("unknown signal {raw:?}"))?;
        let n = libc::SIGRTMIN() + offset;
        if n > libc::SIGRTMAX() {
            bail!("invalid signal {raw:?}: beyond SIGRTMAX");
        }
        return Ok(n);
    }
    if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        let offset =
            parse_offset(rest, '-').ok_or_else(|| anyhow::anyhow!("unknown signal {raw:?}"))?;
        let n = libc::SIGRTMAX() - offset;
        if n < libc::SIGRTMIN() {
            bail!("invalid signal {raw:?}: below SIGRTMIN");
        }
        return Ok(n);
    }
    match Signal::from_str(&name) {
        Ok(sig) => Ok(sig as i32),
        Err(_) => bail!("unknown signal {raw:?}"),
    }
}

fn parse_offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix(sign)?.parse().ok()
}

/// Sends a raw signal number (including real-time ones nix has no name for).
pub fn send(pid: i32, signal: i32) -> nix::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(nix::errno::Errno::last())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("term").unwrap(), 15);
        assert_eq!(parse("SIGRTMIN+3").unwrap(), libc::SIGRTMIN() + 3);
        assert_eq!(parse("RTMIN").unwrap(), libc::SIGRTMIN());
        assert!(parse("NOPE").is_err());
        assert_eq!(parse("0").unwrap(), 0);
        assert!(parse("-9").is_err());
        assert!(parse("99").is_err());
    }
}
