//! Command-line surface: the five protocol verbs, matched by hand so that
//! argument errors follow docker-credential-helpers (usage on stdout, exit 1),
//! and the tooling subcommands, parsed by clap (usage errors exit 2).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::protocol::{self, Action};
use crate::tooling::{self, Streams};

/// How argv is to be handled.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// One of the five protocol verbs, alone on the command line.
    Protocol(Action),
    /// A protocol-level argument error: print this line on stdout, exit 1.
    ProtocolError(String),
    /// `--version` or `-v`.
    Version,
    /// `--help` or a tooling subcommand: clap takes over.
    Tooling,
}

/// Sorts argv into protocol use and tooling use.
pub fn classify(args: &[OsString]) -> Invocation {
    let Some(first) = args.first() else {
        return Invocation::ProtocolError(protocol::usage_line().to_string());
    };
    let first = first.to_string_lossy();
    if let Some(action) = Action::parse(&first) {
        return if args.len() == 1 {
            if action == Action::Version {
                Invocation::Version
            } else {
                Invocation::Protocol(action)
            }
        } else {
            Invocation::ProtocolError(protocol::usage_line().to_string())
        };
    }
    match first.as_ref() {
        "--version" | "-v" => Invocation::Version,
        _ if first.starts_with('-') || first == "help" => Invocation::Tooling,
        _ if Cli::command().find_subcommand(first.as_ref()).is_some() => Invocation::Tooling,
        _ => Invocation::ProtocolError(format!("docker-credential-incus: unknown action: {first}")),
    }
}

/// docker-credential-incus: a Docker credential helper backed by the OS keyring.
///
/// Docker, skopeo, podman and Incus run it as `docker-credential-incus
/// get|store|erase|list|version` and exchange JSON on stdin and stdout.
#[derive(Debug, Parser)]
#[command(name = "docker-credential-incus", version = env!("CARGO_PKG_VERSION"), disable_version_flag = true)]
#[command(
    after_help = "Environment:\n  DOCKER_CREDENTIAL_INCUS_STORE    force a store: secret-service, keyutils (Linux), keychain, windows\n  DOCKER_CREDENTIAL_INCUS_TIMEOUT  seconds one keyring call may take (default 10)\n  DOCKER_CREDENTIAL_INCUS_CONFIG   route config file (default ~/.config/docker-credential-incus/config.json; see docker-credential-incus(5))"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Every subcommand. The protocol verbs are listed for `--help` and the man
/// page; [`classify`] dispatches them before clap sees them.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print the credentials for the server URL read from stdin.
    Get,
    /// Save the {"ServerURL","Username","Secret"} object read from stdin.
    Store,
    /// Delete the credentials for the server URL read from stdin.
    Erase,
    /// Print {"<ServerURL>":"<Username>",...} for every stored credential.
    List,
    /// Print the version line.
    Version,
    /// Run any credential helper and print its answer for a pipeline.
    Client(tooling::client::ClientArgs),
    /// Say which credential source docker, containers tools and Incus use for a reference.
    Resolve(tooling::resolve::ResolveArgs),
    /// Write a containers auth.json for skopeo or podman --authfile.
    Authfile(tooling::authfile::AuthfileArgs),
    /// Add percent-encoded userinfo to a registry URL, or take it out (--decode).
    Url(tooling::url::UrlArgs),
    /// Run a command with a temporary auth file (REGISTRY_AUTH_FILE, {authfile}).
    Exec(tooling::exec::ExecArgs),
    /// Point docker, containers tools or an Incus remote at this helper.
    Configure(tooling::configure::ConfigureArgs),
    /// Move docker's plaintext auths, or another helper's entries, into this helper's store.
    Import(tooling::import::ImportArgs),
    /// Check any credential helper against the protocol and say what docker,
    /// skopeo/podman, Incus, the Rust docker_credential crate and oras would
    /// make of its answers.
    Conformance(crate::conformance::Args),
}

/// Parses and runs a tooling subcommand. Exit codes: 0 success, 1 a check
/// failed or nothing was found, 2 usage or internal error.
pub fn run_tooling(
    args: Vec<OsString>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> ExitCode {
    let argv = std::iter::once(OsString::from("docker-credential-incus")).chain(args);
    let matches = match Cli::command().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let code = e.exit_code();
            // Plain text: stdout or stderr may be a pipe or a log.
            let text = e.render().to_string();
            let _ = if code == 0 {
                write!(stdout, "{text}")
            } else {
                write!(stderr, "{text}")
            };
            return ExitCode::from(code as u8);
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = write!(stderr, "{e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        // Reached only through odd spellings classify() did not take.
        Command::Get | Command::Store | Command::Erase | Command::List | Command::Version => {
            let _ = writeln!(
                stderr,
                "docker-credential-incus: protocol actions take no options"
            );
            ExitCode::from(2)
        }
        Command::Conformance(args) => crate::conformance::main(args, stdout, stderr),
        command => {
            let mut io = Streams {
                stdin,
                stdout,
                stderr,
            };
            run_tool(command, &mut io)
        }
    }
}

fn run_tool(command: Command, io: &mut Streams) -> ExitCode {
    let (name, result) = match command {
        Command::Client(args) => ("client", tooling::client::run(args, io)),
        Command::Resolve(args) => ("resolve", tooling::resolve::run(args, io)),
        Command::Authfile(args) => ("authfile", tooling::authfile::run(args, io)),
        Command::Url(args) => ("url", tooling::url::run(args, io)),
        Command::Exec(args) => return tooling::exec::run(args, io),
        Command::Configure(args) => ("configure", tooling::configure::run(args, io)),
        Command::Import(args) => ("import", tooling::import::run(args, io)),
        Command::Get
        | Command::Store
        | Command::Erase
        | Command::List
        | Command::Version
        | Command::Conformance(_) => {
            return ExitCode::from(2);
        }
    };
    tooling::finish(name, result, io.stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn verbs_alone_are_protocol_calls() {
        assert_eq!(classify(&args(&["get"])), Invocation::Protocol(Action::Get));
        assert_eq!(classify(&args(&["version"])), Invocation::Version);
        assert_eq!(classify(&args(&["-v"])), Invocation::Version);
    }

    #[test]
    fn wrong_argument_count_is_the_usage_line() {
        let usage = Invocation::ProtocolError(protocol::usage_line().to_string());
        assert_eq!(classify(&args(&[])), usage);
        assert_eq!(classify(&args(&["get", "extra"])), usage);
    }

    #[test]
    fn unknown_action_is_named() {
        assert_eq!(
            classify(&args(&["frobnicate"])),
            Invocation::ProtocolError(
                "docker-credential-incus: unknown action: frobnicate".to_string()
            )
        );
    }

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }
}
