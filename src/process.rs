//! Running a child program under a deadline: the one place that spawns,
//! feeds, collects and kills, shared by external helpers and route scripts.
//!
//! The child gets its own process group, so a deadline kills what it started
//! too; its stdout is read with a size cap on a thread, so a child that never
//! reads its stdin or floods its stdout cannot block us.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;

/// This process's user id, read from the owner of `/proc/self` because the
/// crate forbids unsafe code (and so a direct `getuid` call). `None` off Linux.
pub fn current_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        None
    }
}
use std::time::{Duration, Instant};

use crate::secret::Secret;

/// What happens to the child's stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrMode {
    /// Pass it through to ours.
    Inherit,
    /// Keep it in [`Output::stderr`].
    Capture,
}

/// One run of a program.
#[derive(Debug)]
pub struct Run<'a> {
    /// The program to start (a path, or a name looked up on PATH by the OS).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Variables added to the inherited environment.
    pub env: &'a [(OsString, OsString)],
    /// Bytes written to its stdin, which is then closed; `None` gives it a
    /// closed stdin from the start (`/dev/null`).
    pub stdin: Option<&'a [u8]>,
    /// Where its stderr goes.
    pub stderr: StderrMode,
    /// When the whole process group is killed.
    pub timeout: Duration,
    /// Most bytes kept from stdout (and from captured stderr).
    pub max_output: usize,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct Output {
    /// The exit status, or `None` if the deadline killed it.
    pub status: Option<ExitStatus>,
    /// Its stdout, at most `max_output` bytes; it may hold a secret.
    pub stdout: Secret<Vec<u8>>,
    /// True when stdout had more than `max_output` bytes. The pipe is closed
    /// at the cap, so a child that keeps writing dies of SIGPIPE.
    pub stdout_truncated: bool,
    /// Its stderr when captured, else empty.
    pub stderr: Vec<u8>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// True when the deadline passed and the process group was killed.
    pub timed_out: bool,
}

impl Run<'_> {
    /// Starts the program, feeds its stdin, and waits for it under the deadline.
    /// The error is the OS error from spawning.
    pub fn run(&self) -> std::io::Result<Output> {
        let started = Instant::now();
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(match self.stderr {
                StderrMode::Inherit => Stdio::inherit(),
                StderrMode::Capture => Stdio::piped(),
            });
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group, so a deadline can kill what it started too.
            command.process_group(0);
        }
        let mut child = command.spawn()?;

        let stdout = collect(child.stdout.take(), self.max_output);
        let stderr = collect(child.stderr.take(), self.max_output);
        if let (Some(mut pipe), Some(input)) = (child.stdin.take(), self.stdin) {
            let input = Secret::new(input.to_vec());
            // A child that never reads its stdin must not block us: write from
            // a thread, and ignore EPIPE from a child that exited first.
            std::thread::spawn(move || {
                let _ = pipe.write_all(input.expose());
            });
        }
        let (status, timed_out) = wait_with_deadline(&mut child, self.timeout);
        // A killed child's grandchildren may hold the pipes open; do not wait for them.
        let grace = if timed_out {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        let (stdout, stdout_truncated) = stdout.recv_timeout(grace).unwrap_or_default();
        let (stderr, _) = stderr.recv_timeout(grace).unwrap_or_default();
        Ok(Output {
            status,
            stdout: Secret::new(stdout),
            stdout_truncated,
            stderr,
            elapsed: started.elapsed(),
            timed_out,
        })
    }
}

/// Reads at most `max` bytes, then drops the pipe. The flag says whether
/// there was more.
fn collect(
    pipe: Option<impl Read + Send + 'static>,
    max: usize,
) -> mpsc::Receiver<(Vec<u8>, bool)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(pipe) = pipe {
            let _ = pipe.take(max as u64 + 1).read_to_end(&mut buf);
        }
        let truncated = buf.len() > max;
        if truncated {
            zeroize::Zeroize::zeroize(&mut buf[max..]);
            buf.truncate(max);
        }
        let _ = tx.send((buf, truncated));
    });
    rx
}

fn wait_with_deadline(child: &mut Child, timeout: Duration) -> (Option<ExitStatus>, bool) {
    use wait_timeout::ChildExt;
    match child.wait_timeout(timeout) {
        Ok(Some(status)) => (Some(status), false),
        Ok(None) | Err(_) => {
            kill_group(child);
            let _ = child.wait();
            (None, true)
        }
    }
}

fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    }
    let _ = child.kill();
}

/// Formats a duration for messages: `30s`, `0.25s`.
pub fn seconds(d: Duration) -> String {
    let text = format!("{:.3}", d.as_secs_f64());
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}s")
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration, max_output: usize) -> Output {
        Run {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: &[],
            stdin: None,
            stderr: StderrMode::Capture,
            timeout,
            max_output,
        }
        .run()
        .unwrap()
    }

    #[test]
    fn stdin_is_closed_when_no_input_is_given() {
        let out = sh("cat; echo rc=$?", Duration::from_secs(10), 100);
        assert_eq!(out.stdout.expose(), b"rc=0\n");
    }

    #[test]
    fn output_over_the_cap_is_cut_and_flagged() {
        let out = sh("yes", Duration::from_secs(10), 1000);
        assert!(!out.timed_out, "the closed pipe must end the writer");
        assert!(out.stdout_truncated);
        assert_eq!(out.stdout.expose().len(), 1000);
    }

    #[test]
    fn seconds_are_written_briefly() {
        assert_eq!(seconds(Duration::from_secs(30)), "30s");
        assert_eq!(seconds(Duration::from_millis(250)), "0.25s");
    }
}
