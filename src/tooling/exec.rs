//! `exec`: run a command (`skopeo inspect`, `skopeo copy`, `podman pull`…)
//! with a temporary containers auth file, so that no secret ever reaches argv
//! (B32).
//!
//! The file is 0600 in a private 0700 folder (under `$XDG_RUNTIME_DIR` when
//! there is one), exposed as `REGISTRY_AUTH_FILE` and as the `{authfile}`
//! placeholder in argv, and removed when the command ends, fails, or is
//! interrupted. The command's exit status is passed through.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::Args;

use super::{Source, Streams, ToolError};
use crate::secret::Secret;

/// Exit code when credentials or the auth file could not be prepared (as `env`).
pub const EXIT_SETUP_FAILED: u8 = 125;
/// Exit code when the command exists but cannot be run.
pub const EXIT_CANNOT_RUN: u8 = 126;
/// Exit code when the command does not exist.
pub const EXIT_NOT_FOUND: u8 = 127;
/// The argv placeholder for the auth file's path.
pub const PLACEHOLDER: &str = "{authfile}";

/// Arguments of `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The helper (name or path) for registries without their own.
    #[arg(long, value_name = "HELPER", conflicts_with = "route")]
    pub helper: Option<String>,
    /// Take credentials from the store the protocol verbs use.
    #[arg(long)]
    pub route: bool,
    /// A registry to put in the auth file, as REGISTRY or REGISTRY=HELPER. Repeat for several.
    #[arg(long = "registry", value_name = "REGISTRY[=HELPER]", required = true)]
    pub registries: Vec<String>,
    /// Seconds each helper call may take.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
    /// The command and its arguments, after `--`. `{authfile}` in an argument
    /// is replaced by the auth file's path.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Runs `exec`: the command's exit code, or 125/126/127 when it could not run.
pub fn run(args: ExecArgs, io: &mut Streams) -> ExitCode {
    match run_inner(args, io) {
        Ok(code) => code,
        Err((code, message)) => {
            let _ = writeln!(io.stderr, "docker-credential-incus exec: {message}");
            ExitCode::from(code)
        }
    }
}

fn run_inner(args: ExecArgs, _io: &mut Streams) -> Result<ExitCode, (u8, String)> {
    let setup = |e: ToolError| (EXIT_SETUP_FAILED, e.to_string());
    let default = Source::from_flags(args.helper.as_deref(), args.route).map_err(setup)?;
    let specs = super::parse_registry_specs(&args.registries, default.as_ref()).map_err(setup)?;
    let fetched =
        super::fetch_all(&specs, Duration::from_secs(args.timeout.max(1))).map_err(setup)?;
    let entries = super::authfile::entries_for(&fetched).map_err(setup)?;
    drop(fetched);
    let contents = Secret::new(super::authfile::render_new(&entries));
    drop(entries);

    // Signals are caught before the file exists, so no window is left in
    // which an interrupt would kill us and leave the file behind.
    let guard = signals::Guard::install().map_err(|e| {
        (
            EXIT_SETUP_FAILED,
            format!("cannot install signal handlers: {e}"),
        )
    })?;
    let dir = private_dir().map_err(setup)?;
    let authfile = dir.path().join("auth.json");
    super::write_atomic(&authfile, contents.expose(), 0o600).map_err(setup)?;
    drop(contents);
    if let Some(signal) = guard.received() {
        return Ok(signal_exit(signal));
    }

    let (program, rest) = args
        .command
        .split_first()
        .ok_or((2, "no command given after --".to_string()))?;
    let mut command = Command::new(substitute(program, &authfile));
    command
        .args(rest.iter().map(|a| substitute(a, &authfile)))
        .env("REGISTRY_AUTH_FILE", &authfile);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_RUN
            };
            return Err((
                code,
                format!("cannot run {}: {e}", program.to_string_lossy()),
            ));
        }
    };
    guard.forward_to(child.id());
    let status = child.wait();
    drop(guard);
    // The folder and the file go before we report anything.
    let removed = dir.close();
    let status = status.map_err(|e| (EXIT_SETUP_FAILED, format!("lost the command: {e}")))?;
    if let Err(e) = removed {
        return Err((
            EXIT_SETUP_FAILED,
            format!("the command ran, but its auth file could not be removed: {e}"),
        ));
    }
    Ok(exit_of(status))
}

/// A 0700 folder for the auth file: under `$XDG_RUNTIME_DIR` (a per-user
/// tmpfs) when there is one, else the system temporary folder.
fn private_dir() -> Result<tempfile::TempDir, ToolError> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("docker-credential-incus-exec.")
        .tempdir_in(&base)
        .map_err(|e| {
            ToolError::Failed(format!(
                "cannot create a private folder in {}: {e}",
                base.display()
            ))
        })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).map_err(
            |e| ToolError::Failed(format!("cannot make {} private: {e}", dir.path().display())),
        )?;
    }
    Ok(dir)
}

/// `arg` with every `{authfile}` replaced by `path`.
fn substitute(arg: &OsString, path: &Path) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let bytes = arg.as_bytes();
        let needle = PLACEHOLDER.as_bytes();
        if !bytes.windows(needle.len()).any(|w| w == needle) {
            return arg.clone();
        }
        let mut out = Vec::with_capacity(bytes.len() + 64);
        let mut rest = bytes;
        while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(path.as_os_str().as_bytes());
            rest = &rest[at + needle.len()..];
        }
        out.extend_from_slice(rest);
        OsString::from_vec(out)
    }
    #[cfg(not(unix))]
    {
        match arg.to_str() {
            Some(s) => OsString::from(s.replace(PLACEHOLDER, &path.to_string_lossy())),
            None => arg.clone(),
        }
    }
}

/// The exit code for a command's status: its code, or 128 + the signal that killed it.
fn exit_of(status: std::process::ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return signal_exit(signal);
        }
    }
    ExitCode::from(EXIT_SETUP_FAILED)
}

fn signal_exit(signal: i32) -> ExitCode {
    ExitCode::from((128 + signal).clamp(0, 255) as u8)
}

#[cfg(unix)]
mod signals {
    //! Catching INT, TERM, HUP and QUIT while the command runs, so that we
    //! live to remove the auth file. A signal a process sent to us alone is
    //! forwarded to the command; one the kernel sent (a terminal's Ctrl-C,
    //! which already reached the whole foreground process group) is not, so
    //! the command never sees it twice. This is sudo's rule.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicI32, Ordering};

    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    use signal_hook::iterator::exfiltrator::WithOrigin;
    use signal_hook::iterator::{Handle, SignalsInfo};
    use signal_hook::low_level::siginfo::Cause;

    pub struct Guard {
        handle: Handle,
        child: Arc<AtomicI32>,
        received: Arc<AtomicI32>,
        pending: Arc<AtomicI32>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Guard {
        pub fn install() -> std::io::Result<Guard> {
            let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])?;
            let handle = signals.handle();
            let child = Arc::new(AtomicI32::new(0));
            let received = Arc::new(AtomicI32::new(0));
            let pending = Arc::new(AtomicI32::new(0));
            let (c, r, p) = (child.clone(), received.clone(), pending.clone());
            let thread = std::thread::spawn(move || {
                for origin in signals.forever() {
                    r.store(origin.signal, Ordering::SeqCst);
                    if !matches!(origin.cause, Cause::Sent(_)) {
                        continue;
                    }
                    match c.load(Ordering::SeqCst) {
                        0 => p.store(origin.signal, Ordering::SeqCst),
                        pid => send(pid, origin.signal),
                    }
                }
            });
            Ok(Guard {
                handle,
                child,
                received,
                pending,
                thread: Some(thread),
            })
        }

        /// The last signal caught so far, if any.
        pub fn received(&self) -> Option<i32> {
            Some(self.received.load(Ordering::SeqCst)).filter(|s| *s != 0)
        }

        /// From now on, forward signals to `pid`; one caught just before is sent now.
        pub fn forward_to(&self, pid: u32) {
            let pid = pid as i32;
            self.child.store(pid, Ordering::SeqCst);
            let pending = self.pending.swap(0, Ordering::SeqCst);
            if pending != 0 {
                send(pid, pending);
            }
        }
    }

    fn send(pid: i32, signal: i32) {
        if let Ok(signal) = Signal::try_from(signal) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            self.handle.close();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(not(unix))]
mod signals {
    //! Without Unix signals the console's Ctrl-C reaches the command directly.

    pub struct Guard;

    impl Guard {
        pub fn install() -> std::io::Result<Guard> {
            Ok(Guard)
        }
        pub fn received(&self) -> Option<i32> {
            None
        }
        pub fn forward_to(&self, _pid: u32) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_is_replaced_inside_arguments() {
        let path = Path::new("/run/user/1/x/auth.json");
        assert_eq!(
            substitute(&OsString::from("--authfile={authfile}"), path),
            OsString::from("--authfile=/run/user/1/x/auth.json")
        );
        assert_eq!(
            substitute(&OsString::from("{authfile}:{authfile}"), path),
            OsString::from("/run/user/1/x/auth.json:/run/user/1/x/auth.json")
        );
        assert_eq!(
            substitute(&OsString::from("{auth}"), path),
            OsString::from("{auth}")
        );
    }
}
