//! Runs the catalogue against one helper: the sandbox, every call and what it
//! produced, the writable/read-only decision, and the cleanup that erases
//! everything the run stored (also after a failed check, a panic or Ctrl-C).

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Applies, Check, CheckResult, Finding, Mode, Report, Status, Timing, consumers};
use crate::protocol::{self, CredentialFields, Credentials, ERR_NOT_FOUND};
use crate::secret::Secret;
use crate::store::helper::{Helper, HelperError, StderrMode, quote_output};

/// Default deadline for one helper call.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
/// An action no helper implements.
pub const UNKNOWN_ACTION: &str = "dci-conformance-unknown-action";

/// What the caller asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Helper name (with or without `docker-credential-`) or path.
    pub helper: String,
    /// Treat the helper as read-only without probing `store`.
    pub read_only: bool,
    /// A real registry for the get checks (read-only helpers).
    pub server_url: Option<String>,
    /// Deadline for each call.
    pub deadline: Duration,
    /// Run only these check ids (all when empty).
    pub only: Vec<String>,
    /// Leave these check ids out.
    pub skip: Vec<String>,
}

impl Options {
    /// Options for `helper` with every default.
    pub fn new(helper: impl Into<String>) -> Options {
        Options {
            helper: helper.into(),
            read_only: false,
            server_url: None,
            deadline: DEFAULT_DEADLINE,
            only: Vec::new(),
            skip: Vec::new(),
        }
    }

    fn selects(&self, id: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|o| o == id))
            && !self.skip.iter().any(|s| s == id)
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The helper could not be found.
    #[error(transparent)]
    Helper(#[from] HelperError),
    /// `--only` or `--skip` named a check that does not exist.
    #[error(
        "unknown check id {0:?}; `docker-credential-incus conformance --list-checks` lists them"
    )]
    UnknownCheck(String),
    /// `--server-url` holds nothing.
    #[error("--server-url is empty")]
    EmptyServerUrl,
}

/// Progress, in the order it happens.
pub enum Event<'a> {
    /// The helper was found and the sandbox chosen.
    Start {
        /// The helper's file name.
        helper: &'a str,
        /// Its path.
        program: &'a str,
        /// The sandbox host suffix.
        sandbox: &'a str,
    },
    /// Writable or read-only was decided.
    Mode(&'a Mode),
    /// A check begins.
    Started(&'static Check),
    /// A check ended.
    Finished(&'a CheckResult),
    /// The run erases what it stored.
    CleaningUp,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: Once = Once::new();

/// Installs the Ctrl-C / SIGTERM handler once per process: the run stops
/// after the call in flight and erases what it stored.
pub fn install_interrupt_handler() {
    HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if !INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "conformance: interrupted; finishing the call in flight, then erasing what this run stored"
                );
            }
        });
    });
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// One helper call and everything it produced.
pub struct Observed {
    /// argv after the program name.
    pub args: Vec<String>,
    /// For `get`/`erase`: the URL asked, trimmed.
    pub query: Option<String>,
    /// Exit code, if the helper exited normally.
    pub code: Option<i32>,
    /// Exit status 0.
    pub success: bool,
    /// Its stdout, which may hold a secret.
    pub stdout: Secret<Vec<u8>>,
    /// Its stderr.
    pub stderr: Vec<u8>,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// The deadline killed it.
    pub timed_out: bool,
    /// Why the call was not made (the action hung before, or the run was interrupted).
    pub not_run: Option<String>,
}

impl Observed {
    fn not_run(args: &[&str], query: Option<String>, why: String) -> Observed {
        Observed {
            args: args.iter().map(|s| s.to_string()).collect(),
            query,
            code: None,
            success: false,
            stdout: Secret::new(Vec::new()),
            stderr: Vec::new(),
            elapsed: Duration::ZERO,
            timed_out: false,
            not_run: Some(why),
        }
    }

    /// The action (first argument), or `(none)`.
    pub fn action(&self) -> &str {
        self.args.first().map_or("(none)", String::as_str)
    }

    /// True when no answer exists: the call hung or was not made.
    pub fn no_answer(&self) -> bool {
        self.timed_out || self.not_run.is_some()
    }

    /// Exit ≠ 0 and trimmed stdout equal to the not-found text.
    pub fn is_not_found(&self) -> bool {
        !self.success
            && !self.no_answer()
            && self.stdout.expose().trim_ascii() == ERR_NOT_FOUND.as_bytes()
    }

    /// Trimmed stdout.
    pub fn stdout_trimmed(&self) -> &[u8] {
        self.stdout.expose().trim_ascii()
    }

    /// The credential object in stdout, read leniently: it may follow other
    /// text, and anything after it is ignored. Keys match as Go matches them.
    pub fn credentials(&self) -> Option<CredentialFields> {
        if !self.success {
            return None;
        }
        let out = self.stdout.expose();
        let start = out.iter().position(|&b| b == b'{')?;
        protocol::decode_credential_object(&out[start..]).ok()
    }

    /// What a `get` answered, in the terms the checks use.
    pub fn outcome(&self) -> GetOutcome {
        if let Some(why) = &self.not_run {
            return GetOutcome::NotRun(why.clone());
        }
        if self.timed_out {
            return GetOutcome::Hung;
        }
        if self.success {
            return match self.credentials() {
                Some(f) => {
                    let empty = f.username.as_deref().unwrap_or("").is_empty()
                        && f.secret.as_ref().is_none_or(|s| s.is_empty());
                    if empty {
                        GetOutcome::Empty
                    } else {
                        GetOutcome::Credentials(f)
                    }
                }
                None => GetOutcome::Garbage,
            };
        }
        if self.is_not_found() {
            GetOutcome::NotFound
        } else {
            GetOutcome::Failed
        }
    }

    /// A comparable summary of the answer, for the framing checks.
    pub fn answer_key(&self) -> AnswerKey {
        match self.outcome() {
            GetOutcome::Credentials(f) => AnswerKey::Credentials {
                server_url: f.server_url,
                username: f.username,
                secret: f.secret,
            },
            GetOutcome::Hung | GetOutcome::NotRun(_) => AnswerKey::NoAnswer,
            _ => AnswerKey::Other {
                code: self.code,
                stdout: Secret::new(self.stdout_trimmed().to_vec()),
            },
        }
    }
}

/// A `get` answer, classified.
pub enum GetOutcome {
    /// Exit 0 with a non-empty credential.
    Credentials(CredentialFields),
    /// Exit 0 with empty Username and Secret (pass, env: "not found").
    Empty,
    /// Exit ≠ 0 with the exact not-found text on stdout.
    NotFound,
    /// Exit ≠ 0 with anything else.
    Failed,
    /// Exit 0 without a credential object.
    Garbage,
    /// Killed at the deadline.
    Hung,
    /// Not made.
    NotRun(String),
}

impl GetOutcome {
    /// True unless it returned a non-empty credential.
    pub fn returns_nothing(&self) -> bool {
        matches!(
            self,
            GetOutcome::Empty | GetOutcome::NotFound | GetOutcome::Failed | GetOutcome::Garbage
        )
    }
}

/// What the framing checks compare.
#[derive(PartialEq, Eq)]
pub enum AnswerKey {
    /// A credential.
    Credentials {
        /// ServerURL as answered.
        server_url: Option<String>,
        /// Username.
        username: Option<String>,
        /// Secret.
        secret: Option<Secret<String>>,
    },
    /// Anything else: exit code and trimmed stdout.
    Other {
        /// Exit code.
        code: Option<i32>,
        /// Trimmed stdout.
        stdout: Secret<Vec<u8>>,
    },
    /// Hung or not run.
    NoAnswer,
}

/// Answers the run saw, shared between checks and the consumer verdicts.
#[derive(Default)]
pub struct Facts {
    /// The store that decided the mode.
    pub probe_store: Option<Rc<Observed>>,
    /// The get after it.
    pub probe_get: Option<Rc<Observed>>,
    /// The unknown action.
    pub unknown_action: Option<Rc<Observed>>,
    /// The get of the baseline URL, without a newline.
    pub baseline: Option<Rc<Observed>>,
    /// The get of a server nothing was stored for.
    pub unknown_get: Option<Rc<Observed>>,
    /// The get of the stored `<token>` credential.
    pub token_get: Option<Rc<Observed>>,
    /// The last `list`.
    pub list: Option<Rc<Observed>>,
    /// The sandbox keys of that list that did not resolve with get.
    pub list_unresolved: Option<Vec<String>>,
    /// The large secret, once stored.
    pub large: Option<Secret<String>>,
}

/// The unique names of one run. Hosts end in `.invalid` (RFC 2606), so no
/// real registry, and no entry the user made, can share them.
pub struct Sandbox {
    /// `dci-conformance-<pid>-<random>`.
    pub tag: String,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            tag: format!(
                "dci-conformance-{}-{}",
                std::process::id(),
                random_token(10)
            ),
        }
    }

    /// The run's main host, `<tag>.invalid`.
    pub fn main(&self) -> String {
        format!("{}.invalid", self.tag)
    }

    /// Another host of the run, `<label>.<tag>.invalid`.
    pub fn host(&self, label: &str) -> String {
        format!("{label}.{}.invalid", self.tag)
    }

    /// True when `key` names one of this run's hosts.
    pub fn owns(&self, key: &str) -> bool {
        key.contains(&self.tag)
    }
}

/// Lowercase letters and digits from the OS random source.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: time and pid still make the run unique.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            ^ u128::from(std::process::id());
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i * 7) % 120)) as u8;
        }
    }
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The state of one run, handed to every check.
pub struct Ctx {
    helper: Helper,
    /// The options of the run.
    pub opts: Options,
    /// The run's unique names.
    pub sandbox: Sandbox,
    /// Writable or read-only.
    pub mode: Mode,
    /// Shared answers.
    pub facts: Facts,
    calls: Vec<Rc<Observed>>,
    hung: BTreeSet<String>,
    /// URLs sent to `store`, with the token of the secret last stored there.
    stored: Vec<(String, String)>,
    /// The random core of every secret this run stored.
    tokens: Vec<String>,
    /// Secrets seen in answers (real ones too, with --server-url), masked in quotes.
    seen: Vec<Secret<String>>,
    results: BTreeMap<&'static str, Status>,
    cleaned: bool,
    cleanup_problems: Vec<String>,
}

impl Ctx {
    fn new(helper: Helper, opts: Options) -> Ctx {
        Ctx {
            helper,
            opts,
            sandbox: Sandbox::new(),
            mode: Mode::Writable {
                reason: "not decided yet".into(),
            },
            facts: Facts::default(),
            calls: Vec::new(),
            hung: BTreeSet::new(),
            stored: Vec::new(),
            tokens: Vec::new(),
            seen: Vec::new(),
            results: BTreeMap::new(),
            cleaned: false,
            cleanup_problems: Vec::new(),
        }
    }

    /// The helper under test.
    pub fn helper(&self) -> &Helper {
        &self.helper
    }

    /// Every call made so far.
    pub fn calls(&self) -> &[Rc<Observed>] {
        &self.calls
    }

    /// The random cores of every secret stored so far.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The status of a check that already ran.
    pub fn result_of(&self, id: &str) -> Option<Status> {
        self.results.get(id).copied()
    }

    /// Runs the helper with `args` and `input` on stdin (then closed).
    pub fn call(&mut self, args: &[&str], input: &[u8]) -> Rc<Observed> {
        self.call_with_query(args, input, None)
    }

    fn call_with_query(
        &mut self,
        args: &[&str],
        input: &[u8],
        query: Option<String>,
    ) -> Rc<Observed> {
        let action = args.first().copied().unwrap_or("(none)").to_string();
        let observed = if interrupted() && !self.cleaned_or_cleaning() {
            Observed::not_run(args, query, "not called: the run was interrupted".into())
        } else if self.hung.contains(&action) {
            Observed::not_run(
                args,
                query,
                "not called: this action hit the deadline earlier".to_string(),
            )
        } else {
            let raw = self.helper.run(args, input);
            observed_from(args, query, raw)
        };
        if observed.timed_out {
            self.hung.insert(action);
        }
        self.record(observed)
    }

    fn record(&mut self, observed: Observed) -> Rc<Observed> {
        let observed = Rc::new(observed);
        if let Some(f) = observed.credentials()
            && let Some(secret) = f.secret
            && secret.expose().len() >= 4
        {
            self.seen.push(secret);
        }
        self.calls.push(observed.clone());
        observed
    }

    fn cleaned_or_cleaning(&self) -> bool {
        self.cleaned
    }

    /// `get` with `input` exactly as given on stdin.
    pub fn get_raw(&mut self, input: &str) -> Rc<Observed> {
        let query = input.trim().to_string();
        self.call_with_query(&["get"], input.as_bytes(), Some(query))
    }

    /// `get` of `url`, sent as docker and skopeo send it (no newline).
    pub fn get(&mut self, url: &str) -> Rc<Observed> {
        self.get_raw(url)
    }

    /// `erase` of `url`.
    pub fn erase(&mut self, url: &str) -> Rc<Observed> {
        self.call_with_query(&["erase"], url.as_bytes(), Some(url.to_string()))
    }

    /// `list`, with stdin empty.
    pub fn list(&mut self) -> Rc<Observed> {
        let out = self.call(&["list"], b"");
        self.facts.list = Some(out.clone());
        out
    }

    /// `store` of `creds`, encoded as docker's Go client does. The URL is
    /// remembered for cleanup before the call is made.
    pub fn store(&mut self, creds: &Credentials) -> Rc<Observed> {
        let token = self
            .tokens
            .iter()
            .find(|t| creds.secret.expose().contains(t.as_str()))
            .cloned()
            .unwrap_or_default();
        match self.stored.iter_mut().find(|(u, _)| *u == creds.server_url) {
            Some(entry) => entry.1 = token,
            None => self.stored.push((creds.server_url.clone(), token)),
        }
        let request = protocol::encode_store_request(creds);
        self.call(&["store"], request.expose())
    }

    /// Several `store` calls at once, one thread each. Every URL is
    /// remembered for cleanup before any call is made.
    pub fn store_parallel(&mut self, jobs: &[Credentials]) -> Vec<Rc<Observed>> {
        for creds in jobs {
            if !self.stored.iter().any(|(u, _)| *u == creds.server_url) {
                self.stored.push((creds.server_url.clone(), String::new()));
            }
        }
        if interrupted() || self.hung.contains("store") {
            return jobs.iter().map(|_| self.call(&["store"], b"")).collect();
        }
        let threads: Vec<_> = jobs
            .iter()
            .map(|creds| {
                let helper = self.helper.clone();
                let request = protocol::encode_store_request(creds);
                std::thread::spawn(move || helper.run(&["store"], request.expose()))
            })
            .collect();
        let outs: Vec<Observed> = threads
            .into_iter()
            .map(|t| {
                let raw = t.join().unwrap_or_else(|_| {
                    Err(HelperError::Spawn {
                        name: "store".into(),
                        reason: "the calling thread panicked".into(),
                    })
                });
                observed_from(&["store"], None, raw)
            })
            .collect();
        outs.into_iter()
            .map(|o| {
                if o.timed_out {
                    self.hung.insert("store".into());
                }
                self.record(o)
            })
            .collect()
    }

    /// A fresh secret: a random token (the part searched for leaks) plus `extra`.
    pub fn secret(&mut self, extra: &str) -> String {
        let token = format!("dciS{}", random_token(16));
        self.tokens.push(token.clone());
        format!("{token}{extra}")
    }

    /// True when `secret` is the one stored by this run for `token`.
    pub fn is_ours(&self, fields: &CredentialFields) -> bool {
        fields
            .secret
            .as_ref()
            .is_some_and(|s| self.tokens.iter().any(|t| s.expose().contains(t.as_str())))
    }

    /// A helper's stdout quoted for a report line: one line, and never a
    /// secret this run stored or saw.
    pub fn quote(&self, out: &Observed) -> String {
        let mut text = quote_output(out.stdout.expose(), None);
        for token in &self.tokens {
            text = text.replace(token.as_str(), "***");
        }
        for secret in &self.seen {
            text = text.replace(secret.expose().as_str(), "***");
        }
        text
    }

    /// How a call ended, for a report line: `exit 1: \`…\``, `timed out…`.
    pub fn describe(&self, out: &Observed) -> String {
        if let Some(why) = &out.not_run {
            return format!("not run: {why}");
        }
        if out.timed_out {
            return format!(
                "no answer within the {} deadline; its process group was killed",
                seconds(self.opts.deadline)
            );
        }
        let status = match out.code {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".to_string(),
        };
        if out.success && out.args.first().is_some_and(|a| a == "get") {
            // A successful get prints credentials: never quote it.
            return status;
        }
        if out.stdout_trimmed().is_empty() {
            format!("{status}, nothing on stdout")
        } else {
            format!("{status}: {}", self.quote(out))
        }
    }

    /// Erases everything this run stored and checks it is gone. Entries that
    /// now hold something this run did not store are left alone.
    pub fn cleanup(&mut self) -> Vec<String> {
        if self.cleaned {
            return self.cleanup_problems.clone();
        }
        self.cleaned = true;
        // Cleanup runs even after an interrupt, and tries erase even if it
        // hung before; get stays skipped if it hung (no verification then).
        self.hung.remove("erase");
        let stored = std::mem::take(&mut self.stored);
        let mut problems = Vec::new();
        for (url, _) in &stored {
            // Sandbox hosts are this run's alone. Any other URL (Docker Hub)
            // is erased only while it still holds what this run stored.
            if !self.sandbox.owns(url) {
                let before = self.get(url);
                if before.no_answer() {
                    problems.push(format!(
                        "could not check {url}: {}; erase it by hand if this run's credential is there",
                        self.describe(&before)
                    ));
                    continue;
                }
                if !before.credentials().is_some_and(|f| self.is_ours(&f)) {
                    continue;
                }
            }
            let erased = self.erase(url);
            let after = self.get(url);
            if after.no_answer() {
                if !erased.success {
                    problems.push(format!(
                        "could not verify that {url} is gone: erase gave {} and get no answer",
                        self.describe(&erased)
                    ));
                }
            } else if after.credentials().is_some_and(|f| self.is_ours(&f)) {
                problems.push(format!(
                    "{url} is still stored after erase ({}); erase it by hand",
                    self.describe(&erased)
                ));
            }
        }
        self.cleanup_problems = problems.clone();
        problems
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // A panic in a check still erases what the run stored.
        if !self.cleaned {
            let _ = self.cleanup();
        }
    }
}

fn observed_from(
    args: &[&str],
    query: Option<String>,
    raw: Result<crate::store::helper::RawOutput, HelperError>,
) -> Observed {
    match raw {
        Ok(raw) => Observed {
            args: args.iter().map(|s| s.to_string()).collect(),
            query,
            code: raw.code(),
            success: raw.success(),
            stdout: raw.stdout,
            stderr: raw.stderr,
            elapsed: raw.elapsed,
            timed_out: raw.timed_out,
            not_run: None,
        },
        Err(e) => Observed::not_run(args, query, e.to_string()),
    }
}

/// `10s`, `1.5s`.
pub fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

const UNSUPPORTED_WORDS: [&str; 9] = [
    "not implemented",
    "unimplemented",
    "not supported",
    "unsupported",
    "read-only",
    "read only",
    "readonly",
    "unknown command",
    "unknown action",
];

/// Decides writable or read-only. A store that fails with words like "not
/// implemented" marks a read-only helper; one that fails otherwise is a
/// writable helper with a broken store, so the round-trip checks report it.
fn detect_mode(ctx: &mut Ctx) -> Mode {
    if ctx.opts.read_only {
        return Mode::ReadOnly {
            reason: "--read-only".into(),
        };
    }
    let url = ctx.sandbox.main();
    let secret = ctx.secret("");
    let creds = Credentials::new(url.clone(), "dci-user", secret);
    let stored = ctx.store(&creds);
    ctx.facts.probe_store = Some(stored.clone());
    if stored.no_answer() {
        return Mode::Writable {
            reason: format!("store gave no answer: {}", ctx.describe(&stored)),
        };
    }
    if !stored.success {
        let text = String::from_utf8_lossy(stored.stdout.expose()).to_lowercase();
        if UNSUPPORTED_WORDS.iter().any(|w| text.contains(w)) {
            return Mode::ReadOnly {
                reason: format!("store answered {}", ctx.describe(&stored)),
            };
        }
        return Mode::Writable {
            reason: format!(
                "store failed ({}), which is not a read-only refusal; pass --read-only if it is one",
                ctx.describe(&stored)
            ),
        };
    }
    let got = ctx.get(&url);
    ctx.facts.probe_get = Some(got.clone());
    if let Some(f) = got.credentials()
        && ctx.is_ours(&f)
    {
        return Mode::Writable {
            reason: "store then get returned the credential".into(),
        };
    }
    if got.no_answer() {
        return Mode::Writable {
            reason: format!("get after store gave no answer: {}", ctx.describe(&got)),
        };
    }
    let unknown = ctx.call(&[UNKNOWN_ACTION], b"");
    ctx.facts.unknown_action = Some(unknown.clone());
    if unknown.success {
        Mode::ReadOnly {
            reason: "store exits 0 but keeps nothing, and so does an unknown action: it ignores every verb but get".into(),
        }
    } else {
        Mode::Writable {
            reason: "store exits 0 but get did not return the credential".into(),
        }
    }
}

/// Runs the selected checks against `opts.helper`, reporting progress to `events`.
pub fn run(opts: Options, events: &mut dyn FnMut(Event)) -> Result<Report, RunError> {
    for id in opts.only.iter().chain(&opts.skip) {
        if super::find_check(id).is_none() {
            return Err(RunError::UnknownCheck(id.clone()));
        }
    }
    if opts
        .server_url
        .as_deref()
        .is_some_and(|u| u.trim().is_empty())
    {
        return Err(RunError::EmptyServerUrl);
    }
    let helper = Helper::resolve(&opts.helper)?
        .with_timeout(opts.deadline)
        .with_stderr(StderrMode::Capture);
    let mut ctx = Ctx::new(helper, opts);
    let program = ctx.helper.program().display().to_string();
    let name = ctx.helper.name().to_string();
    events(Event::Start {
        helper: &name,
        program: &program,
        sandbox: &ctx.sandbox.main(),
    });
    ctx.mode = detect_mode(&mut ctx);
    events(Event::Mode(&ctx.mode));

    let mut results = Vec::new();
    for check in super::CATALOGUE {
        if interrupted() {
            break;
        }
        if !ctx.opts.selects(check.id) {
            continue;
        }
        events(Event::Started(check));
        let started = Instant::now();
        let finding = match (check.applies, ctx.mode.is_read_only()) {
            (Applies::Writable, true) => Finding::Skip("the helper is read-only".into()),
            (Applies::ReadOnly, false) => Finding::Skip("the helper is writable".into()),
            _ => match check
                .needs
                .iter()
                .find(|n| ctx.result_of(n).is_some_and(|s| s != Status::Pass))
            {
                Some(need) => Finding::Skip(format!("needs {need}, which did not pass")),
                None => (check.run)(&mut ctx),
            },
        };
        if interrupted() {
            break;
        }
        let result = CheckResult::new(check, finding, started.elapsed());
        ctx.results.insert(check.id, result.status);
        events(Event::Finished(&result));
        results.push(result);
    }

    let consumers = consumers::evaluate(&ctx);
    let timings = timings(&ctx);
    events(Event::CleaningUp);
    let cleanup = ctx.cleanup();
    Ok(Report {
        helper: name,
        program,
        mode: ctx.mode.clone(),
        deadline: ctx.opts.deadline,
        sandbox: ctx.sandbox.main(),
        results,
        consumers,
        timings,
        cleanup,
        interrupted: interrupted(),
    })
}

/// Median and worst time per action, over the calls that finished.
pub fn timings(ctx: &Ctx) -> Vec<Timing> {
    let mut by_action: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let protocol = ["get", "store", "erase", "list", "version"];
    for call in ctx.calls() {
        if call.not_run.is_none() && !call.timed_out && protocol.contains(&call.action()) {
            by_action
                .entry(call.action().to_string())
                .or_default()
                .push(call.elapsed);
        }
    }
    let order = ["get", "store", "erase", "list", "version"];
    let mut out: Vec<Timing> = by_action
        .into_iter()
        .map(|(action, mut times)| {
            times.sort();
            Timing {
                calls: times.len(),
                median: times[times.len() / 2],
                worst: *times.last().unwrap_or(&Duration::ZERO),
                action,
            }
        })
        .collect();
    out.sort_by_key(|t| {
        order
            .iter()
            .position(|a| *a == t.action)
            .unwrap_or(order.len())
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_hosts_are_unique_and_invalid() {
        let a = Sandbox::new();
        let b = Sandbox::new();
        assert_ne!(a.tag, b.tag);
        assert!(a.main().ends_with(".invalid"));
        assert!(a.owns(&format!("https://{}/", a.host("rt"))));
        assert!(!a.owns(&b.main()));
        assert!(a.main().len() < 64);
    }
}
