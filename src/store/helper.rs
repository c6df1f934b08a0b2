//! Another `docker-credential-*` program as a `Store`.
//!
//! The conformance tester, the client tooling and delegated routes all reach
//! external helpers through this one type. It runs the program the way Docker's
//! Go client does (argv `[action]`, request on stdin, answer on stdout), but
//! with a deadline that kills the helper's whole process group, stdin always
//! closed, stdout and stderr kept apart, and errors that name the helper and
//! the registry without ever quoting a secret.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use super::{Store, StoreError};
use crate::process;
use crate::protocol::{self, Credentials, ERR_NOT_FOUND};
use crate::secret::Secret;

/// The prefix docker adds to `credsStore` and `credHelpers` values.
pub const HELPER_PREFIX: &str = "docker-credential-";
/// Default deadline for one helper call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes read from a helper's stdout or stderr.
const MAX_OUTPUT_BYTES: usize = protocol::MAX_INPUT_BYTES;

/// What happens to the helper's stderr: passed through (as Docker's client
/// does) or captured into [`RawOutput::stderr`] (the conformance tester reads it).
pub use crate::process::StderrMode;

/// An external credential helper.
#[derive(Debug, Clone)]
pub struct Helper {
    program: PathBuf,
    name: String,
    timeout: Duration,
    env: Vec<(OsString, OsString)>,
    stderr: StderrMode,
}

/// Why a helper could not be run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HelperError {
    /// No such program on PATH or at that path.
    #[error("{0} not found in PATH")]
    NotFound(String),
    /// A helper named by path that is missing, or is no executable file.
    #[error("{0} is not an executable file")]
    NotExecutable(String),
    /// An empty helper name names no helper.
    #[error("empty credential helper name")]
    EmptyName,
    /// The program exists but could not be started.
    #[error("cannot run {name}: {reason}")]
    Spawn {
        /// The helper.
        name: String,
        /// The OS error.
        reason: String,
    },
}

/// Everything a helper call produced.
#[derive(Debug)]
pub struct RawOutput {
    /// The exit status, or `None` if the deadline killed it.
    pub status: Option<ExitStatus>,
    /// Its stdout, which may hold a secret.
    pub stdout: Secret<Vec<u8>>,
    /// Its stderr (empty unless captured).
    pub stderr: Vec<u8>,
    /// Wall-clock time of the call.
    pub elapsed: Duration,
    /// True when the deadline passed and the process group was killed.
    pub timed_out: bool,
}

impl RawOutput {
    /// True for exit status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The exit code, if the helper exited normally.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// Trimmed stdout equals the not-found text (how Go clients detect it).
    pub fn is_not_found(&self) -> bool {
        !self.success() && self.stdout.expose().trim_ascii() == ERR_NOT_FOUND.as_bytes()
    }
}

impl Helper {
    /// Finds a helper by name (with or without the `docker-credential-`
    /// prefix) on PATH, or by path when the name contains a `/`.
    pub fn resolve(name: &str) -> Result<Helper, HelperError> {
        if name.is_empty() {
            return Err(HelperError::EmptyName);
        }
        if name.contains('/') {
            let path = PathBuf::from(name);
            if !is_executable(&path) {
                return Err(HelperError::NotExecutable(name.to_string()));
            }
            // Named by path, it is called by that path in messages too.
            let mut helper = Helper::at(path);
            helper.name = name.to_string();
            return Ok(helper);
        }
        let full = if name.starts_with(HELPER_PREFIX) {
            name.to_string()
        } else {
            format!("{HELPER_PREFIX}{name}")
        };
        find_on_path(&full)
            .map(Helper::at)
            .ok_or(HelperError::NotFound(full))
    }

    /// A helper at a known path.
    pub fn at(program: PathBuf) -> Helper {
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.display().to_string());
        Helper {
            program,
            name,
            timeout: DEFAULT_TIMEOUT,
            env: Vec::new(),
            stderr: StderrMode::Inherit,
        }
    }

    /// Sets the deadline for each call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds an environment variable for the helper.
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Chooses what happens to the helper's stderr.
    pub fn with_stderr(mut self, mode: StderrMode) -> Self {
        self.stderr = mode;
        self
    }

    /// The program's file name, e.g. `docker-credential-pass`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The program's path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The per-call deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs the helper with `args`, writes `input` to its stdin and closes it,
    /// and collects its output. At the deadline the whole process group is killed.
    pub fn run(&self, args: &[&str], input: &[u8]) -> Result<RawOutput, HelperError> {
        let out = process::Run {
            program: self.program.clone(),
            args: args.iter().map(OsString::from).collect(),
            env: &self.env,
            stdin: Some(input),
            stderr: self.stderr,
            timeout: self.timeout,
            max_output: MAX_OUTPUT_BYTES,
        }
        .run()
        .map_err(|e| HelperError::Spawn {
            name: self.name.clone(),
            reason: e.to_string(),
        })?;
        Ok(RawOutput {
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
            elapsed: out.elapsed,
            timed_out: out.timed_out,
        })
    }

    /// Runs one protocol action and turns a failure into a [`StoreError`] that
    /// names the helper, the action and the registry.
    fn call(
        &self,
        action: protocol::Action,
        registry: &str,
        input: &[u8],
        secret: Option<&str>,
    ) -> Result<RawOutput, StoreError> {
        let out = self
            .run(&[action.as_str()], input)
            .map_err(|e| StoreError::Other(e.to_string()))?;
        if out.timed_out {
            return Err(StoreError::Other(format!(
                "{} timed out after {}s ({registry})",
                self.name,
                self.timeout.as_secs()
            )));
        }
        if out.success() {
            return Ok(out);
        }
        if out.is_not_found() {
            return Err(StoreError::NotFound);
        }
        let status = match out.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        };
        Err(StoreError::Other(format!(
            "{} {action} failed for {registry}: {status}: {}",
            self.name,
            quote_output(out.stdout.expose(), secret)
        )))
    }
}

impl Store for Helper {
    fn get(&self, server_url: &str) -> Result<Credentials, StoreError> {
        let out = self.call(
            protocol::Action::Get,
            server_url,
            server_url.as_bytes(),
            None,
        )?;
        let fields = protocol::decode_credential_object(out.stdout.expose()).map_err(|reason| {
            StoreError::Other(format!(
                "{} get for {server_url} printed no credential JSON: {reason}",
                self.name
            ))
        })?;
        let (Some(username), Some(secret)) = (fields.username, fields.secret) else {
            return Err(StoreError::Other(format!(
                "{} get for {server_url} answered without Username or Secret",
                self.name
            )));
        };
        // pass and env-style helpers answer an unknown server with empty
        // credentials and exit 0; docker and skopeo treat that as anonymous.
        if username.is_empty() && secret.is_empty() {
            return Err(StoreError::NotFound);
        }
        // Some helpers (gcloud) leave out ServerURL: the query is the answer's server.
        let server_url = fields
            .server_url
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| server_url.to_string());
        Ok(Credentials {
            server_url,
            username,
            secret,
        })
    }

    fn store(&self, creds: &Credentials) -> Result<(), StoreError> {
        let request = protocol::encode_store_request(creds);
        self.call(
            protocol::Action::Store,
            &creds.server_url,
            request.expose(),
            Some(creds.secret.expose()),
        )
        .map(|_| ())
    }

    fn erase(&self, server_url: &str) -> Result<(), StoreError> {
        self.call(
            protocol::Action::Erase,
            server_url,
            server_url.as_bytes(),
            None,
        )
        .map(|_| ())
    }

    fn list(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let out = self.call(protocol::Action::List, "list", b"", None)?;
        protocol::decode_list(out.stdout.expose()).map_err(|reason| {
            StoreError::Other(format!(
                "{} list printed no JSON object of strings: {reason}",
                self.name
            ))
        })
    }
}

/// Quotes a helper's stdout for an error line: one line, at most 200
/// characters, and never a secret. Output that parses as credential JSON is
/// withheld whole; a known secret is masked wherever it appears.
pub fn quote_output(stdout: &[u8], known_secret: Option<&str>) -> String {
    if protocol::decode_credential_object(stdout).is_ok_and(|f| f.secret.is_some()) {
        return "(stdout held credential JSON, withheld)".to_string();
    }
    let mut text = String::from_utf8_lossy(stdout.trim_ascii()).into_owned();
    if let Some(secret) = known_secret.filter(|s| !s.is_empty()) {
        text = text.replace(secret, "***");
    }
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut quoted: String = one_line.chars().take(200).collect();
    if one_line.chars().count() > 200 {
        quoted.push('…');
    }
    if quoted.is_empty() {
        "(no output on stdout)".to_string()
    } else {
        format!("`{quoted}`")
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    find_program(std::env::var_os("PATH")?.as_os_str(), program)
}

/// The first executable file named `program` in the directories of `path`
/// (a PATH value); empty entries are skipped rather than meaning `.`.
pub fn find_program(path: &std::ffi::OsStr, program: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_output_withholds_credential_json() {
        let out = br#"{"Username":"u","Secret":"hunter2"}"#;
        assert_eq!(
            quote_output(out, None),
            "(stdout held credential JSON, withheld)"
        );
    }

    #[test]
    fn quoted_output_masks_a_known_secret_and_stays_one_line() {
        assert_eq!(
            quote_output(b"bad hunter2\nmore\n", Some("hunter2")),
            "`bad *** more`"
        );
        assert_eq!(quote_output(b"\n", None), "(no output on stdout)");
    }

    #[test]
    fn resolve_by_path_needs_an_executable_file_and_keeps_the_path_as_its_name() {
        assert_eq!(
            Helper::resolve("/etc").unwrap_err().to_string(),
            "/etc is not an executable file"
        );
        assert_eq!(
            Helper::resolve("/etc/passwd").unwrap_err().to_string(),
            "/etc/passwd is not an executable file"
        );
        assert_eq!(Helper::resolve("/bin/sh").unwrap().name(), "/bin/sh");
    }

    #[test]
    fn resolve_refuses_an_empty_name() {
        assert!(matches!(Helper::resolve(""), Err(HelperError::EmptyName)));
        assert!(
            matches!(Helper::resolve("surely-absent-helper-xyz"), Err(HelperError::NotFound(n)) if n == "docker-credential-surely-absent-helper-xyz")
        );
    }
}
