//! `runvz beancounters [ID...]`: the containers' beancounters as OpenVZ's
//! `/proc/user_beancounters` (`Version: 2.5`), or `--format json` with units,
//! whether each bound is enforced, and where maxheld comes from.

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::beancounter::{io, report};
use crate::container::Store;

#[derive(Args, Debug)]
pub struct BeancountersArgs {
    /// output format: table (OpenVZ's) or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// the containers to show (default: all)
    pub ids: Vec<String>,
}

pub fn run(store: &Store, args: BeancountersArgs) -> Result<()> {
    let ids = if args.ids.is_empty() {
        store.ids()?
    } else {
        args.ids
    };
    let mut reports = Vec::new();
    for id in ids {
        let container = store.load(&id)?;
        let rows = report::collect(&container)?;
        reports.push((container, rows));
    }
    if args.format == "json" {
        let mut all = Vec::new();
        for (container, rows) in &reports {
            let settings = report::settings(container)?;
            let values = [
                ("runvz.cpuunits", settings.cpuunits),
                ("runvz.cpulimit", settings.cpulimit),
                ("runvz.cpus", settings.cpus),
                ("runvz.ioprio", settings.ioprio.map(u64::from)),
                ("runvz.iolimit", settings.iolimit),
                ("runvz.iopslimit", settings.iopslimit),
            ];
            let mut knobs = serde_json::Map::new();
            for (key, support) in io::knob_support() {
                let value = values.iter().find(|v| v.0 == key).and_then(|v| v.1);
                knobs.insert(
                    key.trim_start_matches("runvz.").to_string(),
                    json!({
                        "value": value,
                        "enforced": support.is_ok(),
                        "mechanism": support.unwrap_or_else(|why| format!("not enforced: {why}")),
                    }),
                );
            }
            all.push(json!({
                "id": container.id,
                "status": container.status.as_str(),
                "beancounters": rows,
                "knobs": knobs,
            }));
        }
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        let table: Vec<_> = reports
            .into_iter()
            .map(|(container, rows)| (container.id, rows))
            .collect();
        print!("{}", report::format_table(&table));
    }
    Ok(())
}
