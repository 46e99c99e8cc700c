//! Logs in runc's shapes: `--log-format json` writes `{"level","msg","time"}` one
//! object a line (containerd's shim and conmon read the last `error` line from it);
//! `text` writes logrus-style `time="…" level=… msg="…"`. libcontainer's own
//! tracing events land in the same file.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::cli::GlobalOpts;

pub fn init(opts: &GlobalOpts) -> Result<()> {
    // Without --log, errors reach the user through main's one stderr line and
    // runvz's own warnings go to stderr (as runc's do); only --debug adds
    // libcontainer's chatter there.
    let mut only_warnings = false;
    let (sink, max_level) = match &opts.log {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            (
                Sink::File(file),
                if opts.debug {
                    Level::DEBUG
                } else {
                    Level::INFO
                },
            )
        }
        None if opts.debug => (Sink::Stderr, Level::DEBUG),
        None => {
            only_warnings = true;
            (Sink::Stderr, Level::WARN)
        }
    };
    let log = RuncLog {
        sink: Mutex::new(sink),
        json: opts.log_format == "json",
        max_level,
        only_warnings,
    };
    tracing::subscriber::set_global_default(log).context("cannot install the log subscriber")
}

enum Sink {
    File(File),
    Stderr,
}

/// The log subscriber: events only. runc's log lines carry no span context,
/// so spans (libcontainer's `#[instrument]`) are neither stored nor written,
/// which keeps a start from allocating a span registry it would never read.
struct RuncLog {
    sink: Mutex<Sink>,
    json: bool,
    max_level: Level,
    /// Only runvz's own warnings (errors are main's one line).
    only_warnings: bool,
}

impl Subscriber for RuncLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        if self.only_warnings {
            return *metadata.level() == Level::WARN && metadata.target().starts_with("runvz");
        }
        *metadata.level() <= self.max_level
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(self.max_level))
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    // Only events `enabled` let through reach here: tracing asks it once per
    // callsite and keeps the answer.
    fn event(&self, event: &Event<'_>) {
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let line = format_line(level, &visitor.text(), self.json);
        if let Ok(mut sink) = self.sink.lock() {
            let _ = match &mut *sink {
                Sink::File(file) => file.write_all(line.as_bytes()),
                Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
            };
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// One log line in runc's shapes (logrus text, or JSON with level/msg/time).
fn format_line(level: &str, msg: &str, json: bool) -> String {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    if json {
        let mut line = serde_json::json!({"level": level, "msg": msg, "time": time}).to_string();
        line.push('\n');
        line
    } else {
        format!("time={time:?} level={level} msg={msg:?}\n")
    }
}

/// An OS error as runc (Go) words it: "no such file or directory", without
/// Rust's capital and "(os error 2)"; tools match runc's lower-case words.
pub fn os_words(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => err.to_string(),
    }
}

/// Reports the error that ends runvz as runc does: one line on stderr (a JSON
/// log line under `--log-format json` without `--log`, which is what conmon
/// and the shim parse), and the same error in the `--log` file.
pub fn report_error(log: Option<&Path>, json: bool, msg: &str) {
    if let Some(path) = log {
        if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
            let _ = file.write_all(format_line("error", msg, json).as_bytes());
        }
    } else if json {
        let _ = std::io::stderr().write_all(format_line("error", msg, true).as_bytes());
        return;
    }
    eprintln!("runvz: error: {msg}");
}

/// Collects an event's message and its other fields (`key=value`) into one line.
#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl MessageVisitor {
    fn text(&self) -> String {
        if self.fields.is_empty() {
            self.message.clone()
        } else {
            format!("{}{}", self.message, self.fields)
        }
    }
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}
