//! The command line: runc's global flags and subcommands, one module per command.
//! Each module parses its flags (clap) and calls into `container`, `cgroups`,
//! `console` and `stats`; nothing else lives here.

mod beancounters;
mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;
mod usage;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::state::Store;

/// `--help` in runc's layout; clap fills it for the top level and every command.
const HELP_TEMPLATE: &str = "NAME:\n   {bin} - {about}\n\nUSAGE:\n   {usage}\n\n{all-args}\n";

/// The OCI runtime-spec version runvz implements.
pub const SPEC_VERSION: &str = "1.2.0";

#[derive(Parser, Debug)]
#[command(
    name = "runvz",
    about = "runc-compatible OCI runtime for system containers with beancounters",
    disable_version_flag = true,
    // runc's (urfave/cli) shape: NAME / USAGE / COMMANDS / OPTIONS, for every command.
    help_template = HELP_TEMPLATE,
    subcommand_help_heading = "COMMANDS",
    next_help_heading = "GLOBAL OPTIONS",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,

    /// print the version
    #[arg(short = 'v', long = "version", global = true)]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags runc accepts before the subcommand; callers (conmon, the containerd shim)
/// put them there, people sometimes put them after, so they are global.
#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// root directory for storage of container state
    #[arg(long, global = true, default_value = "/run/runvz")]
    pub root: PathBuf,
    /// set the log file to write runvz logs to (default is stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// set the log format ('text' or 'json')
    // Checked by main, in runc's words ("invalid log-format: …").
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// enable systemd cgroup support
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// ignore cgroup permission errors ('true', 'false', or 'auto')
    // Not global: `spec --rootless` is a plain switch of its own.
    #[arg(long, default_value = "auto", value_parser = ["true", "false", "auto"])]
    pub rootless: String,
    /// path to the criu binary used for checkpoint and restore
    #[arg(long, global = true, default_value = "criu")]
    pub criu: PathBuf,
}

// Each command's arguments are built only when it is the one given (or its
// help is shown): building all of them cost every runvz process ~0.3 MB of heap
// and the code of every command's definition.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// create a container
    Create(create::CreateArgs),
    /// execute the user-defined process in a created container
    Start(start::StartArgs),
    /// create and run a container
    Run(run::RunArgs),
    /// execute new process inside the container
    Exec(exec::ExecArgs),
    /// kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill(kill::KillArgs),
    /// delete any resources held by the container
    Delete(delete::DeleteArgs),
    /// output the state of a container
    State(state::StateArgs),
    /// lists containers started by runvz with the given root
    List(list::ListArgs),
    /// ps displays the processes running inside a container
    Ps(ps::PsArgs),
    /// pause suspends all processes inside the container
    Pause(pause::PauseArgs),
    /// resumes all processes that have been previously paused
    Resume(pause::ResumeArgs),
    /// display container events such as OOM notifications, cpu, memory, and IO usage statistics
    Events(events::EventsArgs),
    /// update container resource constraints
    Update(update::UpdateArgs),
    /// create a new specification file
    Spec(spec::SpecArgs),
    /// show the enabled features
    Features(features::FeaturesArgs),
    /// checkpoint a running container
    Checkpoint(checkpoint::CheckpointArgs),
    /// restore a container from a previous checkpoint
    Restore(checkpoint::RestoreArgs),
    /// show containers' beancounters (OpenVZ's /proc/user_beancounters)
    Beancounters(beancounters::BeancountersArgs),
    /// shows a list of commands or help for one command
    Help(HelpArgs),
    /// serves the system containers' /proc view (started by create)
    #[command(hide = true)]
    InternalProcview(ProcviewArgs),
}

// `runvz help [COMMAND]`, as runc has it (not a doc comment: it would replace
// the about its variant in `Command` gives).
#[derive(Args, Debug)]
pub struct HelpArgs {
    pub topic: Option<String>,
}

// `runvz internal-procview [--stay]`: the /proc view server of the host
// (started by `create`, or by its systemd unit with `--stay`); not a doc comment,
// which would replace the about its variant gives.
#[derive(Args, Debug)]
pub struct ProcviewArgs {
    /// serve even when no container is left (as a systemd unit)
    #[arg(long)]
    pub stay: bool,
    /// the worker the server starts (not for people)
    #[arg(long, hide = true)]
    pub worker: bool,
}

/// An error that must end runvz with a particular status, as runc's does
/// (`exec` failures exit 255 so callers can tell them from the process's status).
#[derive(Debug)]
pub struct ExitStatus {
    pub code: u8,
    pub error: anyhow::Error,
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for ExitStatus {}

/// `--version` in runc's lines (`runc version …`, `commit:`, `spec:`,
/// `libseccomp:`); Podman and containerd show or parse them.
pub fn version_text() -> String {
    let seccomp = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|_| "unknown".into());
    format!(
        "runvz version {}\ncommit: {}\nspec: {}\nlibseccomp: {}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("RUNVZ_COMMIT").unwrap_or("unknown"),
        SPEC_VERSION,
        seccomp
    )
}

/// The command line with runc's help layout on every command.
fn command() -> clap::Command {
    use clap::CommandFactory;
    // A flag given twice: the last one wins, as with runc.
    Cli::command()
        .args_override_self(true)
        .mut_subcommands(|c| {
            let template = format!(
                "NAME:\n   runvz {} - {{about}}\n\nUSAGE:\n   {{usage}}\n\n{{all-args}}\n",
                c.get_name()
            );
            c.help_template(template).args_override_self(true)
        })
}

/// A usage error in runc's words, with the command's help for stdout.
pub fn usage_error(err: &clap::Error, args: &[String]) -> usage::Usage {
    usage::explain(err, args, |name| {
        let mut cli = command();
        cli.build();
        match name.and_then(|n| cli.find_subcommand_mut(n)) {
            Some(cmd) => cmd.render_help().to_string(),
            None => cli.render_help().to_string(),
        }
    })
}

/// Parses runvz's arguments (clap's errors are worded by `main`).
pub fn try_parse() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    Cli::from_arg_matches(&command().try_get_matches()?)
}

/// `runvz help [COMMAND]`: the command's help, or runc's words for an unknown one.
fn help(topic: Option<String>) -> Result<u8> {
    let mut cli = command();
    cli.build();
    match topic {
        None => cli.print_help()?,
        Some(name) => match cli.find_subcommand_mut(&name) {
            Some(cmd) if !cmd.is_hide_set() => cmd.print_help()?,
            _ => {
                return Err(ExitStatus {
                    code: 3,
                    error: anyhow::anyhow!("No help topic for '{name}'"),
                }
                .into());
            }
        },
    }
    Ok(0)
}

/// Runs the chosen command and returns the process exit status.
pub fn dispatch(cli: Cli) -> Result<u8> {
    let global = cli.global;
    let Some(command) = cli.command else {
        anyhow::bail!("no command given; see 'runvz --help'");
    };
    let store = || Store::new(&global.root);
    match command {
        Command::Create(args) => create::run(&store()?, &global, args).map(|_| 0),
        Command::Start(args) => start::run(&store()?, args).map(|_| 0),
        Command::Run(args) => run::run(&store()?, &global, args),
        Command::Exec(args) => store()
            .and_then(|store| exec::run(&store, args))
            .map_err(|error| ExitStatus { code: 255, error }.into()),
        Command::Kill(args) => kill::run(&store()?, args).map(|_| 0),
        Command::Delete(args) => delete::run(&store()?, args).map(|_| 0),
        Command::State(args) => state::run(&store()?, args).map(|_| 0),
        Command::List(args) => list::run(&store()?, args).map(|_| 0),
        Command::Ps(args) => ps::run(&store()?, args).map(|_| 0),
        Command::Pause(args) => pause::pause(&store()?, args).map(|_| 0),
        Command::Resume(args) => pause::resume(&store()?, args).map(|_| 0),
        Command::Events(args) => events::run(&store()?, args).map(|_| 0),
        Command::Update(args) => update::run(&store()?, args).map(|_| 0),
        Command::Spec(args) => spec::run(args).map(|_| 0),
        Command::Features(args) => features::run(args).map(|_| 0),
        Command::Checkpoint(args) => checkpoint::checkpoint(&store()?, &global, args).map(|_| 0),
        Command::Restore(args) => checkpoint::restore(&store()?, &global, args),
        Command::Beancounters(args) => beancounters::run(&store()?, args).map(|_| 0),
        Command::Help(args) => help(args.topic),
        Command::InternalProcview(args) if args.worker => crate::procview::work().map(|_| 0),
        Command::InternalProcview(args) => crate::procview::serve(args.stay).map(|_| 0),
    }
}

#[cfg(test)]
mod tests {
    use super::command;

    /// Each command's arguments are built only when it is used (`defer`): its
    /// `--help` must still open with the words `runvz --help` lists it with.
    #[test]
    fn every_commands_help_is_named_as_in_the_command_list() {
        let listed: Vec<(String, String)> = command()
            .get_subcommands()
            .map(|c| {
                let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
                (c.get_name().to_string(), about)
            })
            .collect();
        assert!(listed.len() > 15, "{listed:?}");
        for (name, about) in listed {
            let err = command()
                .try_get_matches_from(["runvz", name.as_str(), "--help"])
                .expect_err("--help ends the parse");
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
            let help = err.render().to_string();
            let want = format!("   runvz {name} - {about}");
            assert_eq!(help.lines().nth(1), Some(want.as_str()), "{name}: {help}");
        }
    }
}
