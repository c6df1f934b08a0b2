//! `client HELPER get|store|erase|list`: run any credential helper the way a
//! careful client would, and print its answer for a pipeline.
//!
//! Like `git credential fill` for git helpers: the helper's quirks (gcloud's
//! pretty-printed answer without ServerURL, pass's empty answer for an unknown
//! server) are smoothed into one compact JSON line, and the exit code tells
//! "not found" (1) from a failure (2).

use std::io::Write;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{Source, Streams, ToolError};
use crate::protocol::{self, Credentials};
use crate::store::StoreError;

/// Arguments of `client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The helper: a name with or without the docker-credential- prefix, or a path.
    #[arg(value_name = "HELPER")]
    pub helper: String,
    /// The action to run.
    #[arg(value_enum, value_name = "ACTION")]
    pub action: ClientAction,
    /// The server URL for get and erase (and for store with --username);
    /// read from stdin when left out.
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
    /// Output of get: json (one compact line), env (shell assignments), username or secret.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// For store: the username; stdin then holds the secret alone.
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// Seconds the helper may take before its process group is killed.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

/// The protocol action `client` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientAction {
    /// Print the credentials for SERVER.
    Get,
    /// Save a credential.
    Store,
    /// Delete the credential for SERVER.
    Erase,
    /// Print every server URL with its username.
    List,
}

/// How a credential is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `{"ServerURL":…,"Username":…,"Secret":…}` on one line.
    Json,
    /// `REGISTRY_SERVER_URL='…'`, `REGISTRY_USERNAME='…'`, `REGISTRY_SECRET='…'`.
    Env,
    /// The username and a newline.
    Username,
    /// The secret and a newline.
    Secret,
}

/// Runs `client`.
pub fn run(args: ClientArgs, io: &mut Streams) -> Result<(), ToolError> {
    if args.action != ClientAction::Get && args.format != Format::Json {
        return Err(ToolError::Usage("--format applies to get only".to_string()));
    }
    if args.username.is_some() && args.action != ClientAction::Store {
        return Err(ToolError::Usage(
            "--username applies to store only".to_string(),
        ));
    }
    let store =
        Source::Helper(args.helper.clone()).open(Duration::from_secs(args.timeout.max(1)))?;
    match args.action {
        ClientAction::Get => {
            let server = server_from(args.server, io)?;
            match store.get(&server) {
                Ok(creds) => {
                    // Docker's client pre-fills ServerURL with the query (B14).
                    let creds = Credentials {
                        server_url: server,
                        ..creds
                    };
                    print_credentials(&creds, args.format, io.stdout)
                }
                Err(StoreError::NotFound) => Err(ToolError::NotFound(format!(
                    "{} has no credentials for {server}",
                    Source::Helper(args.helper).describe()
                ))),
                Err(e) => Err(ToolError::Failed(e.to_string())),
            }
        }
        ClientAction::Store => {
            let creds = match args.username {
                Some(username) => {
                    let server = args.server.ok_or_else(|| {
                        ToolError::Usage(
                            "store --username USER needs SERVER on the command line (stdin holds the secret)"
                                .to_string(),
                        )
                    })?;
                    if username.is_empty() {
                        return Err(ToolError::Usage(protocol::ERR_MISSING_USERNAME.to_string()));
                    }
                    Credentials {
                        server_url: server,
                        username,
                        secret: super::read_secret(io.stdin)?,
                    }
                }
                None => {
                    if args.server.is_some() {
                        return Err(ToolError::Usage(
                            "store reads {\"ServerURL\",\"Username\",\"Secret\"} from stdin; give SERVER only with --username"
                                .to_string(),
                        ));
                    }
                    let request = protocol::read_request(io.stdin)
                        .map_err(|e| ToolError::Usage(e.to_string()))?;
                    protocol::parse_store_request(&request)
                        .map_err(|e| ToolError::Usage(e.to_string()))?
                }
            };
            store
                .store(&creds)
                .map_err(|e| ToolError::Failed(e.to_string()))
        }
        ClientAction::Erase => {
            let server = server_from(args.server, io)?;
            match store.erase(&server) {
                // Some helpers (osxkeychain) report erasing nothing as not-found;
                // the end state is what was asked for (B18).
                Ok(()) | Err(StoreError::NotFound) => Ok(()),
                Err(e) => Err(ToolError::Failed(e.to_string())),
            }
        }
        ClientAction::List => {
            let entries = store.list().map_err(|e| ToolError::Failed(e.to_string()))?;
            protocol::write_list(io.stdout, &entries)
                .map_err(|e| ToolError::Failed(format!("cannot write to stdout: {e}")))
        }
    }
}

fn server_from(server: Option<String>, io: &mut Streams) -> Result<String, ToolError> {
    match server {
        Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(_) => Err(ToolError::Usage(
            protocol::ERR_MISSING_SERVER_URL.to_string(),
        )),
        None => protocol::read_request(io.stdin)
            .and_then(|req| protocol::parse_server_url(&req))
            .map_err(|e| ToolError::Usage(e.to_string())),
    }
}

/// Prints one credential in `format`.
pub fn print_credentials(
    creds: &Credentials,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), ToolError> {
    let result = match format {
        Format::Json => protocol::write_credentials(out, creds),
        Format::Env => {
            let mut text = format!(
                "REGISTRY_SERVER_URL={}\nREGISTRY_USERNAME={}\nREGISTRY_SECRET=",
                shell_quote(&creds.server_url),
                shell_quote(&creds.username)
            );
            text.push_str(&shell_quote(creds.secret.expose()));
            text.push('\n');
            let r = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            zeroize::Zeroize::zeroize(&mut text);
            r
        }
        Format::Username => writeln!(out, "{}", creds.username).and_then(|()| out.flush()),
        Format::Secret => out
            .write_all(creds.secret.expose().as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush()),
    };
    result.map_err(|e| ToolError::Failed(format!("cannot write to stdout: {e}")))
}

/// POSIX shell single quoting: `'` becomes `'\''`; everything else is literal.
pub fn shell_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(format: Format) -> String {
        let creds = Credentials::new("h", "<token>", "a'b $x");
        let mut out = Vec::new();
        print_credentials(&creds, format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_print_exact_lines() {
        assert_eq!(
            printed(Format::Json),
            "{\"ServerURL\":\"h\",\"Username\":\"\\u003ctoken\\u003e\",\"Secret\":\"a'b $x\"}\n"
        );
        assert_eq!(
            printed(Format::Env),
            "REGISTRY_SERVER_URL='h'\nREGISTRY_USERNAME='<token>'\nREGISTRY_SECRET='a'\\''b $x'\n"
        );
        assert_eq!(printed(Format::Username), "<token>\n");
        assert_eq!(printed(Format::Secret), "a'b $x\n");
    }
}
