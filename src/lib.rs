//! docker-credential-incus: a Docker credential helper backed by the OS keyring,
//! a conformance tester for any credential helper, and client tooling for
//! pipelines, skopeo and Incus.
//!
//! The binary is a thin shell over [`run`]; everything else is here so tests
//! can drive it in-process.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod conformance;
pub mod process;
pub mod protocol;
pub mod registry;
pub mod secret;
pub mod serve;
pub mod store;
pub mod tooling;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::ExitCode;

/// Runs the program for `args` (argv without the program name) with the given
/// streams, and returns the exit code.
pub fn run(
    args: Vec<OsString>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> ExitCode {
    match cli::classify(&args) {
        cli::Invocation::Protocol(action) => match store::protocol_store() {
            Ok(store) => exit(serve::serve(store.as_ref(), action, stdin, stdout)),
            Err(e) => {
                let _ = protocol::write_error(stdout, &e.to_string());
                ExitCode::from(1)
            }
        },
        cli::Invocation::ProtocolError(message) => {
            let _ = protocol::write_error(stdout, &message);
            ExitCode::from(1)
        }
        cli::Invocation::Version => {
            let _ = protocol::write_version(stdout);
            ExitCode::SUCCESS
        }
        cli::Invocation::Tooling => cli::run_tooling(args, stdin, stdout, stderr),
    }
}

fn exit(outcome: serve::Outcome) -> ExitCode {
    match outcome {
        serve::Outcome::Success => ExitCode::SUCCESS,
        serve::Outcome::Failure => ExitCode::from(1),
    }
}
