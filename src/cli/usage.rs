//! Usage errors in runc's words (urfave/cli's): `"state" requires exactly 1
//! argument(s)`, `flag provided but not defined: -bogus`, `invalid value "x" for
//! flag -interval: parse error`, `No help topic for 'foo'`; the command's help
//! after `Incorrect Usage.` on stdout; status 3 for an unknown command, else 1.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// How many arguments each command takes, as runc says it: (command, when
/// too few are given, when too many are).
const ARITY: &[(&str, &str, &str)] = &[
    ("create", "exactly 1", "exactly 1"),
    ("start", "exactly 1", "exactly 1"),
    ("run", "exactly 1", "exactly 1"),
    ("delete", "exactly 1", "exactly 1"),
    ("state", "exactly 1", "exactly 1"),
    ("pause", "exactly 1", "exactly 1"),
    ("resume", "exactly 1", "exactly 1"),
    ("events", "exactly 1", "exactly 1"),
    ("update", "exactly 1", "exactly 1"),
    ("checkpoint", "exactly 1", "exactly 1"),
    ("restore", "exactly 1", "exactly 1"),
    ("beancounters", "a maximum of 1", "a maximum of 1"),
    ("list", "exactly 0", "exactly 0"),
    ("features", "exactly 0", "exactly 0"),
    ("spec", "exactly 0", "exactly 0"),
    ("kill", "a minimum of 1", "a maximum of 2"),
    ("exec", "a minimum of 1", "a minimum of 1"),
    ("ps", "a minimum of 1", "a minimum of 1"),
];

/// Global flags that take a value (skipped when looking for the command).
const GLOBAL_VALUES: &[&str] = &["--root", "--log", "--log-format", "--criu", "--rootless"];

pub struct Usage {
    /// The error line's message (main adds `runvz: error: `).
    pub message: String,
    /// What goes to stdout: `Incorrect Usage…` and the command's help.
    pub stdout: String,
    pub code: u8,
    /// `--log` and whether `--log-format json`, read from the raw arguments:
    /// the error reaches the log even though the flags did not parse.
    pub log: Option<std::path::PathBuf>,
    pub json: bool,
}

/// What a usage error needs from arguments clap could not parse.
struct Raw<'a> {
    command: Option<&'a str>,
    log: Option<&'a str>,
    log_format: Option<&'a str>,
}

/// One walk over the raw arguments: the global flags' values (`--log F` or
/// `--log=F`) and the first word that is not a flag or a flag's value.
fn scan(args: &[String]) -> Raw<'_> {
    let mut raw = Raw {
        command: None,
        log: None,
        log_format: None,
    };
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg.as_str(), None),
        };
        if GLOBAL_VALUES.contains(&name) {
            let value = inline.or_else(|| rest.next().map(String::as_str));
            match name {
                "--log" => raw.log = value,
                "--log-format" => raw.log_format = value,
                _ => {}
            }
        } else if !arg.starts_with('-') && raw.command.is_none() {
            raw.command = Some(arg);
        }
    }
    raw
}

fn context(err: &clap::Error, kind: ContextKind) -> String {
    match err.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(s)) => s.join(" "),
        _ => String::new(),
    }
}

/// `--interval <INTERVAL>` → `-interval` (Go's flag package names flags so).
fn go_flag(arg: &str) -> String {
    let name = arg.split([' ', '=']).next().unwrap_or(arg);
    format!("-{}", name.trim_start_matches('-'))
}

pub fn explain(err: &clap::Error, args: &[String], help: impl Fn(Option<&str>) -> String) -> Usage {
    let raw = scan(args);
    let log = raw.log.map(std::path::PathBuf::from);
    let json = raw.log_format == Some("json");
    let command = raw.command.filter(|c| ARITY.iter().any(|(n, ..)| n == c));
    let arity = |too_many: bool| {
        let cmd = command?;
        let (_, few, many) = ARITY.iter().find(|(n, ..)| *n == cmd)?;
        let count = if too_many { many } else { few };
        Some(format!("\"{cmd}\" requires {count} argument(s)"))
    };
    let (message, headline, code) = match err.kind() {
        ErrorKind::InvalidSubcommand => {
            let name = context(err, ContextKind::InvalidSubcommand);
            return Usage {
                message: format!("No help topic for '{name}'"),
                stdout: String::new(),
                code: 3,
                log,
                json,
            };
        }
        ErrorKind::MissingRequiredArgument | ErrorKind::TooFewValues => {
            let msg = arity(false).unwrap_or_else(|| first_line(err));
            (msg, "Incorrect Usage.".to_string(), 1)
        }
        ErrorKind::UnknownArgument | ErrorKind::TooManyValues => {
            let arg = context(err, ContextKind::InvalidArg);
            if arg.starts_with('-') && arg.len() > 1 {
                let msg = format!("flag provided but not defined: {}", go_flag(&arg));
                (msg.clone(), format!("Incorrect Usage: {msg}"), 1)
            } else {
                // A surplus positional argument.
                let msg = arity(true).unwrap_or_else(|| first_line(err));
                (msg, "Incorrect Usage.".to_string(), 1)
            }
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let msg = format!(
                "invalid value {:?} for flag {}: parse error",
                context(err, ContextKind::InvalidValue),
                go_flag(&context(err, ContextKind::InvalidArg))
            );
            (msg.clone(), format!("Incorrect Usage: {msg}"), 1)
        }
        _ => (first_line(err), "Incorrect Usage.".to_string(), 1),
    };
    Usage {
        message,
        stdout: format!("{headline}\n\n{}", help(command)),
        code,
        log,
        json,
    }
}

fn first_line(err: &clap::Error) -> String {
    let text = err.to_string();
    text.lines()
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn finds_the_command_past_global_flags() {
        let command = |line: &str| scan(&args(line)).command.map(String::from);
        assert_eq!(
            command("runvz --root /r --debug kill x").as_deref(),
            Some("kill")
        );
        assert_eq!(
            command("runvz --log-format json state").as_deref(),
            Some("state")
        );
        assert_eq!(command("runvz --debug"), None);
        let raw = args("runvz --log=/l --log-format json state");
        let found = scan(&raw);
        assert_eq!((found.log, found.log_format), (Some("/l"), Some("json")));
        assert_eq!(found.command, Some("state"));
    }

    #[test]
    fn flags_are_named_the_go_way() {
        assert_eq!(go_flag("--interval <INTERVAL>"), "-interval");
        assert_eq!(go_flag("--bogus"), "-bogus");
        assert_eq!(go_flag("--cpu-shares=2"), "-cpu-shares");
    }
}
