//! runvz: a runc-compatible OCI runtime for system containers with OpenVZ-style
//! beancounters. `main` only parses the command line, sets up logging and hands
//! off to `cli`; everything a command does lives in its own module.

mod beancounter;
mod cgroups;
mod cli;
mod console;
mod container;
mod criu;
mod idmap;
mod logging;
mod procview;
mod safepath;
mod signal;
mod stats;
mod system;
mod units;
mod userns;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Behave like a Unix tool when the reader goes away (`runvz list | head`).
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // runvz's own processes enter containers (create's init and exec's process
    // are forks of runvz until they exec): not dumpable, so a container process
    // cannot open their /proc/<pid>/exe, which is runvz's binary on the host
    // (CVE-2019-5736). exec of the container's program resets it.
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let args = match cli::try_parse() {
        Ok(args) => args,
        Err(err) => {
            // Help and --version go to stdout with status 0; usage errors are one line.
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            // runc's words where callers or people know them; always "error".
            use clap::error::{ContextKind, ContextValue};
            let context = |kind| match err.get(kind) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            let text = err.to_string();
            let first = text.lines().next().unwrap_or("invalid command line");
            let msg = match err.kind() {
                ErrorKind::InvalidSubcommand => {
                    format!(
                        "No help topic for '{}'",
                        context(ContextKind::InvalidSubcommand)
                    )
                }
                ErrorKind::UnknownArgument => format!(
                    "flag provided but not defined: {}",
                    context(ContextKind::InvalidArg)
                ),
                _ => first.trim_start_matches("error: ").to_string(),
            };
            eprintln!("runvz: error: {msg}");
            // runc (urfave/cli) exits 3 for an unknown command, 1 for other usage errors.
            let code = if err.kind() == ErrorKind::InvalidSubcommand {
                3
            } else {
                1
            };
            return ExitCode::from(code);
        }
    };
    if args.version {
        print!("{}", cli::version_text());
        return ExitCode::SUCCESS;
    }
    if let Err(err) = logging::init(&args.global) {
        eprintln!("runvz: cannot set up logging: {err:#}");
        return ExitCode::from(1);
    }
    match cli::dispatch(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let msg = format!("{err:#}");
            tracing::error!("{msg}");
            // runc's errors carry the word, and tools grep for it.
            eprintln!("runvz: error: {msg}");
            let code = err.downcast_ref::<cli::ExitStatus>().map_or(1, |e| e.code);
            ExitCode::from(code)
        }
    }
}
