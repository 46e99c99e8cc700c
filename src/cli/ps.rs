//! `runvz ps ID [ps-args]`: the container's processes, as runc prints them (the
//! host `ps` output filtered to the container's PIDs) or as a JSON array of PIDs.

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cgroups;
use crate::state::Store;

#[derive(Args, Debug)]
pub struct PsArgs {
    /// select one of: table or json
    // Checked when run, in runc's words ("invalid format option").
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// the container's ID
    pub id: String,
    /// arguments for ps (default: -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(store: &Store, args: PsArgs) -> Result<()> {
    let container = store.load(&args.id)?;
    if !matches!(args.format.as_str(), "table" | "json") {
        anyhow::bail!("invalid format option");
    }
    let path = container
        .cgroup_path()
        .context("container has no cgroup recorded")?;
    let manager = cgroups::manager(&path, container.systemd(), &container.id)?;
    let pids: Vec<i32> = cgroups::pids(&manager).iter().map(|p| p.as_raw()).collect();

    if args.format == "json" {
        // `null` for no processes, as runc prints a nil slice.
        if pids.is_empty() {
            println!("null");
        } else {
            println!("{}", serde_json::to_string(&pids)?);
        }
        return Ok(());
    }
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args
    };
    let output = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .context("cannot run ps")?;
    if !output.status.success() {
        bail!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}
