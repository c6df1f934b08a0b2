//! The conformance tester: runs any docker credential helper through a
//! catalogue of checks and says what real consumers would make of it.
//!
//! Every call goes through [`crate::store::helper::Helper`], the same code the
//! rest of the project uses to run external helpers. The checks live in
//! [`checks`] (one function each, named after the behaviour), the consumers'
//! parsing rules in [`consumers`], the sequencing, sandbox and cleanup in
//! [`runner`], and the output formats in [`report`].

pub mod checks;
pub mod consumers;
pub mod report;
pub mod runner;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

pub use checks::CATALOGUE;
pub use report::Format;
pub use runner::{Options, run};

/// When to colour the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set or TERM is dumb.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// `docker-credential-incus conformance [OPTIONS] HELPER`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The helper: a program on PATH, named with or without the
    /// `docker-credential-` prefix, or a path.
    #[arg(required_unless_present = "list_checks", value_name = "HELPER")]
    pub helper: Option<String>,
    /// Treat the helper as read-only (gcloud, ecr-login, gcr, acr-env): skip
    /// the write checks and record what store, erase and list do. Without it,
    /// a store that answers "not implemented" or keeps nothing is detected.
    #[arg(long)]
    pub read_only: bool,
    /// A registry the helper really serves, asked by the get checks (for
    /// read-only helpers). Its credentials are never printed.
    #[arg(long, value_name = "URL")]
    pub server_url: Option<String>,
    /// Seconds one helper call may take; then its whole process group is killed.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// Output format: a table for people, or json, tap, junit for CI.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Run only these checks (ids, comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub only: Vec<String>,
    /// Leave these checks out (ids, comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub skip: Vec<String>,
    /// Colour in the table.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print the catalogue of checks (id, severity, rule, source) and exit.
    #[arg(long)]
    pub list_checks: bool,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{text:?} must be above 0 and at most a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs the `conformance` subcommand. Exit 0 when no check fails, 1 when
/// one does, 2 on usage or internal errors (and when the run was
/// interrupted or could not erase what it stored).
pub fn main(args: Args, stdout: &mut dyn Write, stderr: &mut dyn Write) -> ExitCode {
    if args.list_checks {
        return match report::catalogue(stdout, args.format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(2),
        };
    }
    let Some(helper) = args.helper else {
        let _ = writeln!(stderr, "conformance: name a helper to check");
        return ExitCode::from(2);
    };
    runner::install_interrupt_handler();
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    };
    let progress = std::io::stderr().is_terminal();
    let options = Options {
        helper,
        read_only: args.read_only,
        server_url: args.server_url,
        deadline: args.timeout,
        only: args.only,
        skip: args.skip,
    };
    let mut sink = std::io::sink();
    let table_out: &mut dyn Write = if args.format == Format::Table {
        &mut *stdout
    } else {
        &mut sink
    };
    let mut real_stderr = std::io::stderr();
    let mut table = report::Table::new(
        table_out,
        progress.then_some(&mut real_stderr as &mut dyn Write),
        report::Style::new(color),
    );
    let outcome = run(options, &mut |event| {
        let _ = table.event(&event);
    });
    let report = match outcome {
        Ok(report) => report,
        Err(e) => {
            let _ = writeln!(stderr, "conformance: {e}");
            return ExitCode::from(2);
        }
    };
    let written = match args.format {
        Format::Table => table.finish(&report),
        other => match other {
            Format::Json => report::json(stdout, &report),
            Format::Tap => report::tap(stdout, &report),
            _ => report::junit(stdout, &report),
        },
    };
    if written.is_err() {
        return ExitCode::from(2);
    }
    if args.format != Format::Table {
        for p in &report.cleanup {
            let _ = writeln!(stderr, "conformance: cleanup: {p}");
        }
    }
    ExitCode::from(report.exit_code())
}

/// How bad it is when a check's rule is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A real consumer breaks: the run fails.
    Fail,
    /// Legal but fragile, or it breaks only unusual callers.
    Warn,
    /// Recorded, because helpers legitimately differ.
    Info,
}

impl Severity {
    /// The lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fail => "fail",
            Severity::Warn => "warn",
            Severity::Info => "info",
        }
    }
}

/// Which helpers a check applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Every helper.
    Always,
    /// Helpers that store credentials.
    Writable,
    /// Helpers that cannot store (gcloud, ecr-login, gcr, acr-env…).
    ReadOnly,
}

/// One entry of the catalogue.
pub struct Check {
    /// Stable id, used by `--only`, `--skip` and every output format.
    pub id: &'static str,
    /// Section of the report.
    pub group: &'static str,
    /// What a broken rule counts as.
    pub severity: Severity,
    /// One line saying what is checked.
    pub description: &'static str,
    /// The rule enforced.
    pub rule: &'static str,
    /// Where the rule comes from.
    pub source: &'static str,
    /// Checks whose failure makes this one meaningless (it is then skipped).
    pub needs: &'static [&'static str],
    /// Which helpers it applies to.
    pub applies: Applies,
    /// The check itself.
    pub run: fn(&mut runner::Ctx) -> Finding,
}

/// What a check function found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The rule holds; the text says what was seen.
    Pass(String),
    /// The rule is broken; counted at the check's severity.
    Broken(String),
    /// An observation (info checks record what a helper does).
    Observed(String),
    /// The check could not be made; the text says why.
    Skip(String),
}

/// The status a result is shown with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The rule holds.
    Pass,
    /// A fail-severity rule is broken.
    Fail,
    /// A warn-severity rule is broken.
    Warn,
    /// An info check's observation, or an info rule that does not hold.
    Info,
    /// Not checked.
    Skip,
}

impl Status {
    /// The label in the table and TAP output.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Info => "INFO",
            Status::Skip => "SKIP",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The check's id.
    pub id: &'static str,
    /// Its group.
    pub group: &'static str,
    /// Its severity.
    pub severity: Severity,
    /// Its one-line description.
    pub description: &'static str,
    /// The shown status.
    pub status: Status,
    /// What was seen. Never holds a secret.
    pub detail: String,
    /// The rule and its source, for reports that explain failures.
    pub rule: &'static str,
    /// Where the rule comes from.
    pub source: &'static str,
    /// Time spent on the check.
    #[serde(serialize_with = "serialize_millis", rename = "millis")]
    pub elapsed: Duration,
}

impl CheckResult {
    /// Builds a result from a finding, at the check's severity.
    pub fn new(check: &Check, finding: Finding, elapsed: Duration) -> CheckResult {
        let (status, detail) = match finding {
            Finding::Pass(d) => (Status::Pass, d),
            Finding::Skip(d) => (Status::Skip, d),
            Finding::Observed(d) => (Status::Info, d),
            Finding::Broken(d) => (
                match check.severity {
                    Severity::Fail => Status::Fail,
                    Severity::Warn => Status::Warn,
                    Severity::Info => Status::Info,
                },
                d,
            ),
        };
        CheckResult {
            id: check.id,
            group: check.group,
            severity: check.severity,
            description: check.description,
            status,
            detail,
            rule: check.rule,
            source: check.source,
            elapsed,
        }
    }
}

fn serialize_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Whether the helper stores credentials, and how that was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mode {
    /// It stores credentials: the round-trip checks run.
    Writable {
        /// How it was decided.
        reason: String,
    },
    /// It cannot store: the write checks are skipped.
    ReadOnly {
        /// How it was decided (`--read-only`, or what store did).
        reason: String,
    },
}

impl Mode {
    /// True for [`Mode::ReadOnly`].
    pub fn is_read_only(&self) -> bool {
        matches!(self, Mode::ReadOnly { .. })
    }

    /// The one-line description in reports.
    pub fn describe(&self) -> String {
        match self {
            Mode::Writable { reason } => format!("writable ({reason})"),
            Mode::ReadOnly { reason } => format!("read-only ({reason})"),
        }
    }
}

/// Median and worst time of one action.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// The action (`get`, `store`…).
    pub action: String,
    /// How many calls finished.
    pub calls: usize,
    /// Median wall-clock time.
    #[serde(serialize_with = "serialize_millis", rename = "median_millis")]
    pub median: Duration,
    /// Slowest call.
    #[serde(serialize_with = "serialize_millis", rename = "worst_millis")]
    pub worst: Duration,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The helper's name, e.g. `docker-credential-pass`.
    pub helper: String,
    /// Its path.
    pub program: String,
    /// Writable or read-only, and why.
    pub mode: Mode,
    /// The per-call deadline.
    #[serde(serialize_with = "serialize_millis", rename = "deadline_millis")]
    pub deadline: Duration,
    /// The sandbox host suffix of this run.
    pub sandbox: String,
    /// One result per check run, in catalogue order.
    pub results: Vec<CheckResult>,
    /// What each consumer would make of the helper's answers.
    pub consumers: Vec<consumers::ConsumerReport>,
    /// Time per action.
    pub timings: Vec<Timing>,
    /// Problems while erasing what the run stored (empty when all is clean).
    pub cleanup: Vec<String>,
    /// True when Ctrl-C or SIGTERM stopped the run early.
    pub interrupted: bool,
}

impl Report {
    /// How many results have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    /// 0 when no check failed, 1 when one did, 2 when the run was cut short
    /// or could not clean up.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted || !self.cleanup.is_empty() {
            2
        } else if self.count(Status::Fail) > 0 {
            1
        } else {
            0
        }
    }
}

/// Looks a check up by id.
pub fn find_check(id: &str) -> Option<&'static Check> {
    CATALOGUE.iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn check_ids_are_unique_snake_case_and_documented() {
        let mut seen = BTreeSet::new();
        for c in CATALOGUE {
            assert!(seen.insert(c.id), "duplicate id {}", c.id);
            assert!(
                c.id.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{}",
                c.id
            );
            assert!(!c.description.is_empty() && !c.description.contains('\n'));
            assert!(!c.rule.is_empty() && !c.source.is_empty(), "{}", c.id);
            for need in c.needs {
                assert!(find_check(need).is_some(), "{} needs unknown {need}", c.id);
            }
        }
    }

    #[test]
    fn a_broken_rule_counts_at_the_check_severity() {
        let warn = find_check("version_prints_a_line").unwrap();
        let r = CheckResult::new(warn, Finding::Broken("x".into()), Duration::ZERO);
        assert_eq!(r.status, Status::Warn);
    }
}
