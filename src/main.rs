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
    let raw: Vec<String> = std::env::args().collect();
    let args = match cli::try_parse() {
        Ok(args) => args,
        Err(err) => {
            // Help and --version go to stdout with status 0.
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            let usage = cli::usage_error(&err, &raw);
            print!("{}", usage.stdout);
            logging::report_error(usage.log.as_deref(), usage.json, &usage.message);
            return ExitCode::from(usage.code);
        }
    };
    if args.version {
        print!("{}", cli::version_text());
        return ExitCode::SUCCESS;
    }
    if !matches!(args.global.log_format.as_str(), "text" | "json") {
        eprintln!(
            "runvz: error: invalid log-format: {}",
            args.global.log_format
        );
        return ExitCode::from(1);
    }
    if let Err(err) = logging::init(&args.global) {
        eprintln!("runvz: cannot set up logging: {err:#}");
        return ExitCode::from(1);
    }
    let args_log = args.global.log.clone();
    let args_json = args.global.log_format == "json";
    match cli::dispatch(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let msg = format!("{err:#}");
            logging::report_error(args_log.as_deref(), args_json, &msg);
            let code = err.downcast_ref::<cli::ExitStatus>().map_or(1, |e| e.code);
            ExitCode::from(code)
        }
    }
}
