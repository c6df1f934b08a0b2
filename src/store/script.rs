//! Script-backed credentials as a `Store`: a command (an argv list, never a
//! shell string) prints the secret, or a `{"Username","Secret"}` object, for
//! the registry named in its environment.
//!
//! Rules: stdin closed, stderr passed through, a deadline that kills the
//! script's whole process group, exactly one trailing newline stripped and
//! every other byte kept. A non-zero exit is an error naming the route, except
//! [`NONE_EXIT_CODE`], which means "no credentials for this registry".
//!
//! Answers can be cached in the keyring (under its own service name, so
//! `list` never shows them) until a TTL runs out or until a JWT's `exp` minus
//! a margin. An expired entry is never served; if the refresh then fails,
//! that failure is the answer.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::config::{OutputMode, ScriptSpec};
use crate::process::{self, StderrMode};
use crate::protocol::{self, Credentials};
use crate::registry::ServerUrl;
use crate::secret::Secret;

/// The exit code by which a script says "no credentials for this registry";
/// the helper then answers with the not-found text.
pub const NONE_EXIT_CODE: i32 = 3;
/// Most bytes a script may print.
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// The server URL as the client sent it.
pub const ENV_SERVER_URL: &str = "DOCKER_CREDENTIAL_SERVER_URL";
/// The registry, `host[:port]`, as skopeo and Incus send it.
pub const ENV_REGISTRY: &str = "DOCKER_CREDENTIAL_REGISTRY";
/// The canonical key: `host[:port][/path]`, Docker Hub as `docker.io`.
pub const ENV_KEY: &str = "DOCKER_CREDENTIAL_KEY";
/// The route's pattern as written in the config.
pub const ENV_ROUTE: &str = "DOCKER_CREDENTIAL_ROUTE";

/// Seconds since the Unix epoch; replaced by a fake clock in tests.
pub type Clock = Box<dyn Fn() -> u64>;

/// A `script` route.
pub struct ScriptStore {
    route: String,
    spec: ScriptSpec,
    cache: Option<Box<dyn Store>>,
    now: Clock,
    notice: Box<dyn Fn(&str)>,
}

/// What the cache keeps, as the secret of a keyring entry under the
/// canonical key. `key` and `command` guard against answers for a parent
/// path (the keyring's prefix lookup) or from an older version of the route.
#[derive(Serialize, Deserialize)]
struct Cached {
    key: String,
    command: Vec<String>,
    username: String,
    secret: String,
    /// Unix seconds; the entry is served only strictly before this.
    expires: u64,
}

impl Drop for Cached {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

impl ScriptStore {
    /// The route named `route` (its pattern as written), running `spec`.
    /// `cache` is where answers are kept when `spec.cache` asks for it.
    pub fn new(route: impl Into<String>, spec: ScriptSpec, cache: Option<Box<dyn Store>>) -> Self {
        ScriptStore {
            route: route.into(),
            spec,
            cache,
            now: Box::new(unix_now),
            notice: Box::new(|msg| eprintln!("docker-credential-incus: {msg}")),
        }
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, now: impl Fn() -> u64 + 'static) -> Self {
        self.now = Box::new(now);
        self
    }

    /// Replaces where notices go.
    pub fn with_notice(mut self, notice: impl Fn(&str) + 'static) -> Self {
        self.notice = Box::new(notice);
        self
    }

    fn error(&self, what: impl std::fmt::Display) -> StoreError {
        StoreError::Other(format!("script route \"{}\": {what}", self.route))
    }

    fn program(&self) -> &str {
        &self.spec.command[0]
    }

    /// Drops the cached answer for `server_url`, if any.
    pub fn forget(&self, server_url: &str) -> Result<(), StoreError> {
        let key = ServerUrl::parse(server_url)?.key();
        match &self.cache {
            Some(cache) if self.spec.cache.is_some() => cache.erase(&key),
            _ => Ok(()),
        }
    }

    fn cached(&self, key: &str, now: u64) -> Option<(String, Secret<String>)> {
        let cache = self.cache.as_ref().filter(|_| self.spec.cache.is_some())?;
        // A cache that cannot be read is a miss: the script is the source.
        let entry = cache.get(key).ok()?;
        let cached: Cached = serde_json::from_str(entry.secret.expose()).ok()?;
        (cached.key == key && cached.command == self.spec.command && now < cached.expires)
            .then(|| (cached.username.clone(), Secret::new(cached.secret.clone())))
    }

    fn keep(&self, key: &str, username: &str, secret: &Secret<String>, expires: u64) {
        let Some(cache) = &self.cache else { return };
        let record = Cached {
            key: key.to_string(),
            command: self.spec.command.clone(),
            username: username.to_string(),
            secret: secret.expose().clone(),
            expires,
        };
        let Ok(json) = serde_json::to_string(&record) else {
            return;
        };
        if let Err(e) = cache.store(&Credentials::new(key, username, json)) {
            (self.notice)(&format!(
                "script route \"{}\": answer not cached: {e}",
                self.route
            ));
        }
    }

    /// Runs the script for `url` and reads its answer.
    fn fetch(
        &self,
        server_url: &str,
        url: &ServerUrl,
    ) -> Result<(String, Secret<String>), StoreError> {
        let mut env: Vec<(OsString, OsString)> = self
            .spec
            .env
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        env.extend([
            (ENV_SERVER_URL.into(), server_url.into()),
            (ENV_REGISTRY.into(), url.registry().into()),
            (ENV_KEY.into(), url.key().into()),
            (ENV_ROUTE.into(), self.route.clone().into()),
        ]);
        let out = process::Run {
            program: self.program().into(),
            args: self.spec.command[1..].iter().map(OsString::from).collect(),
            env: &env,
            stdin: None,
            stderr: StderrMode::Inherit,
            timeout: self.spec.timeout,
            max_output: MAX_OUTPUT_BYTES,
        }
        .run()
        .map_err(|e| self.error(format!("cannot run {}: {e}", self.program())))?;
        let registry = url.registry();
        if out.timed_out {
            return Err(self.error(format!(
                "{} did not finish within {} for {registry} and was killed; raise \"timeout\" if it needs longer",
                self.program(),
                process::seconds(self.spec.timeout)
            )));
        }
        // The cap closes the pipe, so the script may then die of SIGPIPE;
        // the size is the story, not that exit.
        if out.stdout_truncated {
            return Err(self.error(format!(
                "{} printed more than {} KiB for {registry}",
                self.program(),
                MAX_OUTPUT_BYTES / 1024
            )));
        }
        match out.status.and_then(|s| s.code()) {
            Some(0) => {}
            Some(NONE_EXIT_CODE) => return Err(StoreError::NotFound),
            Some(code) => {
                return Err(self.error(format!(
                    "{} failed for {registry} with exit status {code}",
                    self.program()
                )));
            }
            None => {
                return Err(self.error(format!(
                    "{} was killed by a signal while fetching the secret for {registry}",
                    self.program()
                )));
            }
        }
        let bytes = out.stdout.expose();
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        self.decode(bytes, &registry)
    }

    fn decode(&self, bytes: &[u8], registry: &str) -> Result<(String, Secret<String>), StoreError> {
        let json = match self.spec.output {
            OutputMode::Json => true,
            OutputMode::Secret => false,
            OutputMode::Auto => bytes.first() == Some(&b'{'),
        };
        let (username, secret) = if json {
            let fields = protocol::decode_credential_object(bytes).map_err(|reason| {
                self.error(format!(
                    "{} printed no {{\"Username\",\"Secret\"}} object for {registry}: {reason}",
                    self.program()
                ))
            })?;
            let Some(secret) = fields.secret else {
                return Err(self.error(format!(
                    "{} printed an object without \"Secret\" for {registry}",
                    self.program()
                )));
            };
            (fields.username.filter(|u| !u.is_empty()), secret)
        } else {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                self.error(format!(
                    "{} printed bytes that are not UTF-8 for {registry}; a secret must be text",
                    self.program()
                ))
            })?;
            (None, Secret::new(text.to_string()))
        };
        if secret.is_empty() {
            return Err(self.error(format!(
                "{} printed no secret for {registry}; exit with status {NONE_EXIT_CODE} to say there is none",
                self.program()
            )));
        }
        let Some(username) = username.or_else(|| self.spec.username.clone()) else {
            return Err(self.error(
                "the script printed a bare secret and the route sets no \"username\"".to_string(),
            ));
        };
        Ok((username, secret))
    }
}

impl Store for ScriptStore {
    fn get(&self, server_url: &str) -> Result<Credentials, StoreError> {
        let url = ServerUrl::parse(server_url)?;
        let key = url.key();
        let now = (self.now)();
        if let Some((username, secret)) = self.cached(&key, now) {
            return Ok(Credentials {
                server_url: server_url.to_string(),
                username,
                secret,
            });
        }
        let (username, secret) = self.fetch(server_url, &url)?;
        let exp = jwt_expiry(secret.expose());
        if let Some(exp) = exp
            && exp <= now
        {
            return Err(self.error(format!(
                "{} returned a token for {} that expired {}s ago",
                self.program(),
                url.registry(),
                now - exp
            )));
        }
        if let Some(policy) = self.spec.cache {
            let by_ttl = policy.ttl.map(|t| now.saturating_add(t.as_secs()));
            let by_exp = exp.map(|e| e.saturating_sub(policy.margin.as_secs()));
            let expires = match (by_ttl, by_exp) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(expires) = expires.filter(|e| *e > now) {
                self.keep(&key, &username, &secret, expires);
            }
        }
        Ok(Credentials {
            server_url: server_url.to_string(),
            username,
            secret,
        })
    }

    fn store(&self, _creds: &Credentials) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly {
            action: "store",
            what: format!("script route \"{}\"", self.route),
        })
    }

    fn erase(&self, server_url: &str) -> Result<(), StoreError> {
        if let Err(e) = self.forget(server_url) {
            (self.notice)(&format!(
                "script route \"{}\": cached answer not dropped: {e}",
                self.route
            ));
        }
        Err(StoreError::ReadOnly {
            action: "erase",
            what: format!("script route \"{}\"", self.route),
        })
    }

    /// A script answers per registry and names none, so there is nothing to list.
    fn list(&self) -> Result<BTreeMap<String, String>, StoreError> {
        Ok(BTreeMap::new())
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `exp` of a JWT-shaped secret: three base64url parts, the middle one a
/// JSON object with a numeric `exp` (Unix seconds).
pub fn jwt_expiry(secret: &str) -> Option<u64> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = secret.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let decoded = Secret::new(URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?);
    let claims: serde_json::Value = serde_json::from_slice(decoded.expose()).ok()?;
    let exp = claims.get("exp")?;
    exp.as_u64()
        .or_else(|| exp.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::config::CacheSpec;
    use crate::store::memory::MemoryStore;
    use std::cell::Cell;
    use std::path::Path;
    use std::rc::Rc;
    use std::time::Duration;

    /// A script file in `dir` that runs `body` with /bin/sh.
    fn script(dir: &Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("script");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn spec(program: String) -> ScriptSpec {
        ScriptSpec {
            command: vec![program],
            username: Some("oauth2accesstoken".into()),
            timeout: Duration::from_secs(10),
            env: Vec::new(),
            output: OutputMode::Auto,
            cache: None,
        }
    }

    fn store(spec: ScriptSpec) -> ScriptStore {
        ScriptStore::new("*.example.test", spec, None)
    }

    fn secret_of(s: &ScriptStore, url: &str) -> String {
        s.get(url).unwrap().secret.expose().clone()
    }

    fn jwt(exp: u64) -> String {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "eyJhbGciOiJub25lIn0.{}.sig",
            URL_SAFE_NO_PAD.encode(format!("{{\"exp\":{exp},\"sub\":\"x\"}}"))
        )
    }

    #[test]
    fn registry_reaches_the_script_in_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(spec(script(
            dir.path(),
            r#"printf '%s|%s|%s|%s' "$DOCKER_CREDENTIAL_SERVER_URL" "$DOCKER_CREDENTIAL_REGISTRY" "$DOCKER_CREDENTIAL_KEY" "$DOCKER_CREDENTIAL_ROUTE""#,
        )));
        assert_eq!(
            secret_of(&s, "https://r.example.test:5000/team/"),
            "https://r.example.test:5000/team/|r.example.test:5000|r.example.test:5000/team|*.example.test"
        );
    }

    #[test]
    fn registry_text_is_never_interpolated_into_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let mut sp = spec("/bin/echo".into());
        sp.command.push("$DOCKER_CREDENTIAL_REGISTRY;`id`".into());
        let _ = dir;
        assert_eq!(
            secret_of(&store(sp), "r.example.test"),
            "$DOCKER_CREDENTIAL_REGISTRY;`id`"
        );
    }

    #[test]
    fn exactly_one_trailing_newline_is_stripped() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(spec(script(dir.path(), r"printf ' tok\r\n\n\n'")));
        assert_eq!(secret_of(&s, "r.example.test"), " tok\r\n\n");
    }

    #[test]
    fn stdin_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(spec(script(dir.path(), "cat; echo tok")));
        assert_eq!(secret_of(&s, "r.example.test"), "tok");
    }

    #[test]
    fn json_object_output_gives_username_and_secret() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(spec(script(
            dir.path(),
            r#"printf '{"Username":"AWS","Secret":"a\\"b\\u00fc"}\n'"#,
        )));
        let c = s.get("r.example.test").unwrap();
        assert_eq!(
            (c.username.as_str(), c.secret.expose().as_str()),
            ("AWS", "a\"bü")
        );
    }

    #[test]
    fn hanging_script_is_killed_with_its_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let mut sp = spec(script(
            dir.path(),
            &format!("sleep 30 & echo $! > {}; wait", pidfile.display()),
        ));
        sp.timeout = Duration::from_millis(300);
        let e = store(sp).get("r.example.test").unwrap_err().to_string();
        assert!(
            e.starts_with("script route \"*.example.test\": ")
                && e.ends_with(
                    " did not finish within 0.3s for r.example.test and was killed; raise \"timeout\" if it needs longer"
                ),
            "{e}"
        );
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        // SIGKILL lands asynchronously: wait (boundedly) until the grandchild
        // is gone or a zombie waiting for init to reap it.
        let mut last = String::new();
        for _ in 0..500 {
            last = std::fs::read_to_string(&stat).unwrap_or_default();
            if last.is_empty() || last.contains(") Z ") {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("grandchild still alive: {last}");
    }

    #[test]
    fn non_zero_exit_is_an_error_naming_the_route_not_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(dir.path(), "echo hunter2; exit 1");
        let e = store(spec(program.clone()))
            .get("r.example.test")
            .unwrap_err();
        assert!(!e.is_not_found());
        assert_eq!(
            e.to_string(),
            format!(
                "script route \"*.example.test\": {program} failed for r.example.test with exit status 1"
            )
        );
    }

    #[test]
    fn none_exit_code_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(spec(script(dir.path(), "exit 3")));
        assert!(s.get("r.example.test").unwrap_err().is_not_found());
    }

    #[test]
    fn huge_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(spec(script(dir.path(), "yes aaaaaaaaaaaaaaa")));
        let e = s.get("r.example.test").unwrap_err().to_string();
        assert!(
            e.ends_with(" printed more than 1024 KiB for r.example.test"),
            "{e}"
        );
    }

    #[test]
    fn non_utf8_output_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(spec(script(dir.path(), r"printf 'sec\377ret'")));
        let e = s.get("r.example.test").unwrap_err().to_string();
        assert!(
            e.ends_with(
                "printed bytes that are not UTF-8 for r.example.test; a secret must be text"
            ),
            "{e}"
        );
        assert!(!e.contains("sec\u{fffd}"), "{e}");
    }

    #[test]
    fn empty_output_is_an_error_that_points_at_the_none_code() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(spec(script(dir.path(), "echo")));
        let e = s.get("r.example.test").unwrap_err().to_string();
        assert!(
            e.ends_with("exit with status 3 to say there is none"),
            "{e}"
        );
    }

    #[test]
    fn missing_program_is_a_clear_error() {
        let s = store(spec("/nonexistent/secret-script".into()));
        assert_eq!(
            s.get("r.example.test").unwrap_err().to_string(),
            "script route \"*.example.test\": cannot run /nonexistent/secret-script: No such file or directory (os error 2)"
        );
    }

    /// A store whose script counts its runs in a file and prints what `answer` holds.
    struct CachedRoute {
        store: ScriptStore,
        clock: Rc<Cell<u64>>,
        runs: std::path::PathBuf,
        answer: std::path::PathBuf,
        _dir: tempfile::TempDir,
    }

    impl CachedRoute {
        fn new(cache: CacheSpec) -> CachedRoute {
            let dir = tempfile::tempdir().unwrap();
            let runs = dir.path().join("runs");
            let answer = dir.path().join("answer");
            let mut sp = spec(script(
                dir.path(),
                &format!(
                    "echo x >> {}; cat {} 2>/dev/null || exit 1",
                    runs.display(),
                    answer.display()
                ),
            ));
            sp.cache = Some(cache);
            let clock = Rc::new(Cell::new(1_000_000));
            let c = clock.clone();
            let store =
                ScriptStore::new("r.example.test", sp, Some(Box::new(MemoryStore::default())))
                    .with_clock(move || c.get())
                    .with_notice(|m| panic!("unexpected notice: {m}"));
            CachedRoute {
                store,
                clock,
                runs,
                answer,
                _dir: dir,
            }
        }

        fn answer(&self, text: &str) {
            std::fs::write(&self.answer, text).unwrap();
        }

        fn runs(&self) -> usize {
            std::fs::read_to_string(&self.runs).map_or(0, |s| s.lines().count())
        }

        fn get(&self) -> Result<String, StoreError> {
            self.store
                .get("r.example.test")
                .map(|c| c.secret.expose().clone())
        }
    }

    #[test]
    fn cache_hit_skips_the_script_until_the_ttl_runs_out() {
        let c = CachedRoute::new(CacheSpec {
            ttl: Some(Duration::from_secs(300)),
            margin: Duration::from_secs(60),
        });
        c.answer("one\n");
        assert_eq!(c.get().unwrap(), "one");
        c.answer("two\n");
        c.clock.set(1_000_299);
        assert_eq!(c.get().unwrap(), "one");
        assert_eq!(c.runs(), 1);
        c.clock.set(1_000_300);
        assert_eq!(c.get().unwrap(), "two");
        assert_eq!(c.runs(), 2);
    }

    #[test]
    fn jwt_is_cached_until_exp_minus_the_margin() {
        let c = CachedRoute::new(CacheSpec {
            ttl: None,
            margin: Duration::from_secs(60),
        });
        let token = jwt(1_000_600);
        c.answer(&token);
        assert_eq!(c.get().unwrap(), token);
        c.clock.set(1_000_539);
        assert_eq!(c.get().unwrap(), token);
        assert_eq!(c.runs(), 1);
        c.clock.set(1_000_540);
        let fresh = jwt(1_001_000);
        c.answer(&fresh);
        assert_eq!(c.get().unwrap(), fresh);
        assert_eq!(c.runs(), 2);
    }

    #[test]
    fn ttl_longer_than_the_jwt_lifetime_still_stops_at_exp() {
        let c = CachedRoute::new(CacheSpec {
            ttl: Some(Duration::from_secs(3600)),
            margin: Duration::from_secs(0),
        });
        c.answer(&jwt(1_000_100));
        c.get().unwrap();
        c.clock.set(1_000_100);
        c.answer("other");
        assert_eq!(c.get().unwrap(), "other");
    }

    #[test]
    fn failed_refresh_is_an_error_never_the_stale_token() {
        let c = CachedRoute::new(CacheSpec {
            ttl: Some(Duration::from_secs(60)),
            margin: Duration::from_secs(0),
        });
        c.answer("one");
        assert_eq!(c.get().unwrap(), "one");
        std::fs::remove_file(&c.answer).unwrap();
        c.clock.set(1_000_060);
        let e = c.get().unwrap_err();
        assert!(!e.is_not_found());
        assert!(
            e.to_string()
                .contains("failed for r.example.test with exit status 1"),
            "{e}"
        );
    }

    #[test]
    fn expired_jwt_from_the_script_is_refused() {
        let c = CachedRoute::new(CacheSpec {
            ttl: None,
            margin: Duration::from_secs(60),
        });
        c.answer(&jwt(1_000_000));
        let e = c.get().unwrap_err().to_string();
        assert!(
            e.ends_with("returned a token for r.example.test that expired 0s ago"),
            "{e}"
        );
    }

    #[test]
    fn non_jwt_without_ttl_is_not_cached() {
        let c = CachedRoute::new(CacheSpec {
            ttl: None,
            margin: Duration::from_secs(60),
        });
        c.answer("plain");
        c.get().unwrap();
        c.get().unwrap();
        assert_eq!(c.runs(), 2);
    }

    #[test]
    fn erase_drops_the_cached_answer() {
        let c = CachedRoute::new(CacheSpec {
            ttl: Some(Duration::from_secs(300)),
            margin: Duration::from_secs(0),
        });
        c.answer("one");
        c.get().unwrap();
        assert!(matches!(
            c.store.erase("r.example.test"),
            Err(StoreError::ReadOnly { .. })
        ));
        c.get().unwrap();
        assert_eq!(c.runs(), 2);
    }

    #[test]
    fn jwt_expiry_reads_only_jwt_shapes() {
        assert_eq!(jwt_expiry(&jwt(42)), Some(42));
        assert_eq!(jwt_expiry("a.b"), None);
        assert_eq!(jwt_expiry("a.b.c.d"), None);
        assert_eq!(jwt_expiry("ya29.not-base64!.x"), None);
    }
}
