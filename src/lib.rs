//! runvz: a runc-compatible OCI runtime for system containers with OpenVZ-style
//! beancounters. [`main`] only parses the command line, sets up logging and
//! hands off to `cli`; everything a command does lives in its own module. The
//! binary (`src/main.rs`) is that function; the library exists so that the
//! fuzz targets (`fuzz/`) reach the parsers through [`fuzz`].

mod beancounter;
mod cgroups;
mod cli;
mod console;
mod container;
mod criu;
mod files;
mod fork;
mod idmap;
mod logging;
mod nesting;
mod procview;
mod quota;
mod safepath;
mod signal;
mod state;
mod stats;
mod system;
mod units;
mod userns;

use std::process::ExitCode;

/// The whole of `runvz`: the command line in, an exit status out.
pub fn main() -> ExitCode {
    // Behave like a Unix tool when the reader goes away (`runvz list | head`).
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // runvz shows an error as its chain of messages, never with a backtrace,
    // so none is captured: under RUST_BACKTRACE=1 (common on a developer's
    // shell) every anyhow error would otherwise walk the stack and read the
    // binary's unwind tables. Panics still print one (std reads
    // RUST_BACKTRACE for those).
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
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
            fork::reap_children(std::time::Duration::from_secs(1));
            let msg = format!("{err:#}");
            logging::report_error(args_log.as_deref(), args_json, &msg);
            let code = err.downcast_ref::<cli::ExitStatus>().map_or(1, |e| e.code);
            ExitCode::from(code)
        }
    }
}

/// Entry points for `cargo fuzz` (`fuzz/fuzz_targets/`): each runs what runvz
/// does with one kind of hostile input before it touches the system. Any input
/// may be refused with an error; none may panic.
#[doc(hidden)]
pub mod fuzz {
    use std::collections::HashMap;

    /// A bundle's config.json, as `create` checks it: JSON, ociVersion, the
    /// `runvz.*` annotations and the beancounters they set, process,
    /// namespaces, cgroupsPath (cgroupfs and systemd forms), device rules.
    pub fn config_json(data: &[u8]) {
        for systemd in [false, true] {
            let _ = crate::container::check_config(data, "config.json", systemd);
        }
    }

    /// One beancounter or knob value (`barrier:limit`, suffixes, `unlimited`),
    /// as an annotation of every parameter and knob.
    pub fn beancounter_value(data: &[u8]) {
        let Ok(value) = std::str::from_utf8(data) else {
            return;
        };
        for key in crate::beancounter::params::annotation_keys() {
            let annotations = HashMap::from([(key, value.to_string())]);
            let _ = crate::beancounter::Settings::from_annotations(&annotations, "fuzz");
        }
    }

    /// `update --resources FILE`: runc's LinuxResources JSON.
    pub fn update_resources(data: &[u8]) {
        let _ =
            crate::container::update::resources_json(data, std::path::Path::new("resources.json"));
    }

    /// The init's stdio recorded at checkpoint (descriptors.json in the images).
    pub fn criu_descriptors(data: &[u8]) {
        let _ = crate::criu::parse_descriptors(data);
    }
}

/// The module map stays a hierarchy (docs/ARCHITECTURE.md): no module uses one
/// that uses it back, counting `crate::` paths in code (not comments).
#[cfg(test)]
mod module_graph {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    fn code_of(path: &Path, out: &mut String) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap().flatten() {
                code_of(&entry.path(), out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            for line in std::fs::read_to_string(path).unwrap().lines() {
                let code = line.split("//").next().unwrap_or("");
                out.push_str(code);
                out.push('\n');
            }
        }
    }

    #[test]
    fn no_module_uses_one_that_uses_it_back() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for entry in std::fs::read_dir(&src).unwrap().flatten() {
            let name = entry
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if name == "main" || name == "lib" {
                continue;
            }
            let mut code = String::new();
            code_of(&entry.path(), &mut code);
            let used = code
                .split("crate::")
                .skip(1)
                .map(|rest| {
                    rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                        .next()
                        .unwrap_or("")
                })
                .filter(|m| !m.is_empty() && *m != name)
                .map(str::to_string)
                .collect();
            uses.insert(name, used);
        }
        let mut cycles = Vec::new();
        for (module, used) in &uses {
            for other in used {
                if module < other && uses.get(other).is_some_and(|u| u.contains(module)) {
                    cycles.push(format!("{module} <-> {other}"));
                }
            }
        }
        assert!(cycles.is_empty(), "modules that use each other: {cycles:?}");
    }
}
