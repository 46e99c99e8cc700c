//! `runvz list`: runc's table, `--format json`, or `-q` for IDs only.

use anyhow::Result;
use clap::Args;

use super::state::StateView;
use crate::state::Store;

#[derive(Args, Debug)]
pub struct ListArgs {
    /// select one of: table or json
    // Checked when run, in runc's words ("invalid format option").
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// display only container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub fn run(store: &Store, args: ListArgs) -> Result<()> {
    if !matches!(args.format.as_str(), "table" | "json") {
        anyhow::bail!("invalid format option");
    }
    let mut views = Vec::new();
    for id in store.ids()? {
        match store.load(&id) {
            Ok(container) => views.push(StateView::of(&container)),
            // One deleted while we list is simply not shown.
            Err(_) if !store.exists(&id) => {}
            Err(err) => tracing::warn!("{err:#}"),
        }
    }
    if args.quiet {
        for v in &views {
            println!("{}", v.id);
        }
        return Ok(());
    }
    if args.format == "json" {
        // runc prints `null` (a nil Go slice) when there are no containers.
        if views.is_empty() {
            println!("null");
        } else {
            println!("{}", serde_json::to_string(&views)?);
        }
        return Ok(());
    }
    let mut rows = vec![
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
            .map(String::from)
            .to_vec(),
    ];
    for v in &views {
        rows.push(vec![
            v.id.clone(),
            v.pid.to_string(),
            v.status.to_string(),
            v.bundle.clone(),
            v.created.clone(),
            v.owner.clone(),
        ]);
    }
    print!("{}", tabulate(&rows));
    Ok(())
}

/// Aligns columns as Go's tabwriter does for runc (minwidth 12, padding 3); the
/// last column is not padded.
pub fn tabulate(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| (cell.chars().count() + 3).max(12))
                .max()
                .unwrap_or(12)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}", width = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}
