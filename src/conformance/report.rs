//! Output formats: a human table printed while the run goes (with colour on
//! a terminal), and JSON, TAP and JUnit XML for CI. None of them ever prints
//! a secret: details are built from redacted quotes only.

use std::io::{self, Write};

use serde::Serialize;

use super::consumers::Verdict;
use super::runner::{Event, seconds};
use super::{CATALOGUE, CheckResult, Report, Status};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people, printed as checks finish.
    Table,
    /// One JSON document.
    Json,
    /// Test Anything Protocol, version 14.
    Tap,
    /// JUnit XML.
    Junit,
}

/// ANSI colours, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    /// Colours on or off.
    pub fn new(enabled: bool) -> Style {
        Style { enabled }
    }

    fn paint(&self, color: anstyle::AnsiColor, bold: bool, text: &str) -> String {
        if !self.enabled {
            return text.to_string();
        }
        let mut style = anstyle::Style::new().fg_color(Some(color.into()));
        if bold {
            style = style.bold();
        }
        format!("{style}{text}{style:#}")
    }

    fn status(&self, status: Status) -> String {
        use anstyle::AnsiColor::*;
        match status {
            Status::Pass => self.paint(Green, false, status.label()),
            Status::Fail => self.paint(Red, true, status.label()),
            Status::Warn => self.paint(Yellow, true, status.label()),
            Status::Info => self.paint(Cyan, false, status.label()),
            Status::Skip => self.paint(BrightBlack, false, status.label()),
        }
    }

    fn dim(&self, text: &str) -> String {
        self.paint(anstyle::AnsiColor::BrightBlack, false, text)
    }

    fn bold(&self, text: &str) -> String {
        if !self.enabled {
            return text.to_string();
        }
        let style = anstyle::Style::new().bold();
        format!("{style}{text}{style:#}")
    }
}

/// Prints the table as events arrive, and a transient progress line on the
/// terminal (`progress`) while each check runs.
pub struct Table<'a> {
    out: &'a mut dyn Write,
    progress: Option<&'a mut dyn Write>,
    style: Style,
    group: &'static str,
    width: usize,
}

impl<'a> Table<'a> {
    /// A table writer; `progress` is the terminal to show progress on, if any.
    pub fn new(out: &'a mut dyn Write, progress: Option<&'a mut dyn Write>, style: Style) -> Self {
        let width = CATALOGUE.iter().map(|c| c.id.len()).max().unwrap_or(30);
        Table {
            out,
            progress,
            style,
            group: "",
            width,
        }
    }

    fn clear_progress(&mut self) {
        if let Some(p) = self.progress.as_mut() {
            let _ = write!(p, "\r\x1b[K");
            let _ = p.flush();
        }
    }

    fn show_progress(&mut self, text: &str) {
        if let Some(p) = self.progress.as_mut() {
            let _ = write!(p, "\r\x1b[K{text}");
            let _ = p.flush();
        }
    }

    /// Handles one progress event.
    pub fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Start {
                helper,
                program,
                sandbox,
            } => {
                writeln!(
                    self.out,
                    "{} {helper} ({program})",
                    self.style.bold("conformance of")
                )?;
                writeln!(self.out, "sandbox:  {sandbox}")?;
                self.show_progress("deciding whether the helper stores credentials…");
            }
            Event::Mode(mode) => {
                self.clear_progress();
                writeln!(self.out, "mode:     {}", mode.describe())?;
            }
            Event::Started(check) => {
                self.show_progress(&format!("running {} …", check.id));
            }
            Event::Finished(result) => {
                self.clear_progress();
                if result.group != self.group {
                    self.group = result.group;
                    writeln!(self.out, "\n{}", self.style.bold(result.group))?;
                }
                self.row(result)?;
            }
            Event::CleaningUp => self.show_progress("erasing what this run stored…"),
        }
        self.out.flush()
    }

    fn row(&mut self, r: &CheckResult) -> io::Result<()> {
        let detail = if r.status == Status::Pass || r.status == Status::Skip {
            self.style.dim(&r.detail)
        } else {
            r.detail.clone()
        };
        writeln!(
            self.out,
            "  {}  {:<w$}  {detail}",
            self.style.status(r.status),
            r.id,
            w = self.width
        )
    }

    fn verdict(&self, v: Verdict) -> String {
        use anstyle::AnsiColor::*;
        match v {
            Verdict::Works => self.style.paint(Green, false, v.as_str()),
            Verdict::Fails => self.style.paint(Red, true, v.as_str()),
            Verdict::Limited => self.style.paint(Yellow, false, v.as_str()),
            Verdict::Unclear => self.style.dim(v.as_str()),
        }
    }

    /// Prints what follows the rows: consumers, cleanup, summary.
    pub fn finish(&mut self, report: &Report) -> io::Result<()> {
        self.clear_progress();
        writeln!(
            self.out,
            "\n{}",
            self.style
                .bold("consumers (what each would make of these answers)")
        )?;
        let width = report
            .consumers
            .iter()
            .map(|c| c.consumer.len())
            .max()
            .unwrap_or(20);
        for c in &report.consumers {
            writeln!(
                self.out,
                "  {:<width$}  {}",
                c.consumer,
                self.verdict(c.verdict)
            )?;
            for s in &c.scenarios {
                writeln!(
                    self.out,
                    "      {:<7}  {:<14}  {}",
                    s.verdict.as_str(),
                    s.scenario,
                    s.detail
                )?;
            }
        }
        if !report.cleanup.is_empty() {
            writeln!(self.out, "\n{}", self.style.bold("cleanup problems"))?;
            for p in &report.cleanup {
                writeln!(self.out, "  {p}")?;
            }
        }
        let verdict = match report.exit_code() {
            0 => self.style.status(Status::Pass),
            1 => self.style.status(Status::Fail),
            _ => self.style.status(Status::Fail).replace("FAIL", "ERROR"),
        };
        writeln!(
            self.out,
            "\n{} passed, {} failed, {} warnings, {} info, {} skipped (deadline {}){}  {verdict}",
            report.count(Status::Pass),
            report.count(Status::Fail),
            report.count(Status::Warn),
            report.count(Status::Info),
            report.count(Status::Skip),
            seconds(report.deadline),
            if report.interrupted {
                "; interrupted"
            } else {
                ""
            },
        )?;
        self.out.flush()
    }
}

#[derive(Serialize)]
struct Summary {
    passed: usize,
    failed: usize,
    warnings: usize,
    info: usize,
    skipped: usize,
    exit_code: u8,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    report: &'a Report,
    summary: Summary,
}

/// Writes the report as one JSON document.
pub fn json(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let doc = JsonReport {
        report,
        summary: Summary {
            passed: report.count(Status::Pass),
            failed: report.count(Status::Fail),
            warnings: report.count(Status::Warn),
            info: report.count(Status::Info),
            skipped: report.count(Status::Skip),
            exit_code: report.exit_code(),
        },
    };
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
    writeln!(out)
}

/// Writes the report as TAP version 14; only failures are `not ok`.
pub fn tap(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    writeln!(out, "TAP version 14")?;
    writeln!(
        out,
        "# conformance of {} ({})",
        report.helper, report.program
    )?;
    writeln!(out, "# mode: {}", report.mode.describe())?;
    writeln!(out, "1..{}", report.results.len())?;
    for (i, r) in report.results.iter().enumerate() {
        let n = i + 1;
        let ok = if r.status == Status::Fail {
            "not ok"
        } else {
            "ok"
        };
        let directive = if r.status == Status::Skip {
            format!(" # SKIP {}", one_line(&r.detail))
        } else {
            String::new()
        };
        writeln!(out, "{ok} {n} - {}{directive}", r.id)?;
        if r.status != Status::Skip {
            writeln!(out, "  ---")?;
            writeln!(out, "  status: {}", r.status.label().to_lowercase())?;
            writeln!(out, "  severity: {}", r.severity.as_str())?;
            writeln!(out, "  description: {}", yaml_str(r.description))?;
            writeln!(out, "  detail: {}", yaml_str(&r.detail))?;
            if r.status == Status::Fail || r.status == Status::Warn {
                writeln!(out, "  rule: {}", yaml_str(r.rule))?;
                writeln!(out, "  source: {}", yaml_str(r.source))?;
            }
            writeln!(out, "  ...")?;
        }
    }
    for c in &report.consumers {
        writeln!(out, "# consumer {}: {}", c.consumer, c.verdict.as_str())?;
        for s in &c.scenarios {
            writeln!(
                out,
                "#   {}: {}: {}",
                s.scenario,
                s.verdict.as_str(),
                one_line(&s.detail)
            )?;
        }
    }
    for p in &report.cleanup {
        writeln!(out, "# cleanup problem: {}", one_line(p))?;
    }
    if report.interrupted {
        writeln!(out, "Bail out! interrupted")?;
    }
    out.flush()
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ").replace('#', "\\#")
}

/// A YAML flow scalar: JSON string syntax is valid YAML.
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Writes the report as JUnit XML: failures are `<failure>`, skips
/// `<skipped>`, warnings and observations pass with the detail in `<system-out>`.
pub fn junit(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("conformance {}", report.helper));
    suite.add_property(("helper", report.program.as_str()));
    suite.add_property(("mode", report.mode.describe().as_str()));
    for r in &report.results {
        let status = match r.status {
            Status::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(r.detail.as_str());
                s.set_type(r.severity.as_str());
                s.set_description(format!("rule: {}\nsource: {}", r.rule, r.source));
                s
            }
            Status::Skip => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(r.detail.as_str());
                s
            }
            _ => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(r.id, status);
        case.set_classname(format!("conformance.{}", r.group));
        case.set_time(r.elapsed);
        if matches!(r.status, Status::Pass | Status::Warn | Status::Info) {
            case.set_system_out(format!("{}: {}", r.status.label(), r.detail));
        }
        suite.add_test_case(case);
    }
    let mut consumers = TestSuite::new(format!("consumers {}", report.helper));
    for c in &report.consumers {
        let mut case = TestCase::new(c.consumer, TestCaseStatus::success());
        case.add_property(("verdict", c.verdict.as_str()));
        case.set_classname("conformance.consumers");
        let lines: Vec<String> = c
            .scenarios
            .iter()
            .map(|s| format!("{}: {}: {}", s.scenario, s.verdict.as_str(), s.detail))
            .collect();
        case.set_system_out(lines.join("\n"));
        consumers.add_test_case(case);
    }
    let mut doc = JReport::new("docker-credential-incus conformance");
    doc.add_test_suite(suite);
    doc.add_test_suite(consumers);
    doc.serialize(&mut *out).map_err(io::Error::other)?;
    writeln!(out)
}

/// Prints the catalogue: id, severity, applies-to, description, rule, source.
pub fn catalogue(out: &mut dyn Write, format: Format) -> io::Result<()> {
    if format == Format::Json {
        #[derive(Serialize)]
        struct Entry {
            id: &'static str,
            group: &'static str,
            severity: &'static str,
            description: &'static str,
            rule: &'static str,
            source: &'static str,
        }
        let entries: Vec<Entry> = CATALOGUE
            .iter()
            .map(|c| Entry {
                id: c.id,
                group: c.group,
                severity: c.severity.as_str(),
                description: c.description,
                rule: c.rule,
                source: c.source,
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &entries).map_err(io::Error::other)?;
        return writeln!(out);
    }
    for c in CATALOGUE {
        writeln!(out, "{} [{}] {}", c.id, c.severity.as_str(), c.description)?;
        writeln!(out, "    rule:   {}", c.rule)?;
        writeln!(out, "    source: {}", c.source)?;
    }
    Ok(())
}
