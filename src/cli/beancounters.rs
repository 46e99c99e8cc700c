//! `runvz beancounters [ID...]`: the containers' beancounters as OpenVZ's
//! `/proc/user_beancounters` (`Version: 2.5`), or `--format json` with units,
//! whether each bound is enforced, and where maxheld comes from.

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::beancounter::params::KNOBS;
use crate::beancounter::report;
use crate::state::Store;

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
            let mut knobs = serde_json::Map::new();
            for knob in KNOBS {
                let support = knob.support();
                knobs.insert(
                    knob.name().to_string(),
                    json!({
                        "value": settings.knob(knob),
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
