//! The route config: where it lives, what it says, and its validation.
//!
//! A JSON file maps registry patterns to credential sources (keyring, static,
//! script, helper). It lives in the user's config folder (found with
//! `directories`), or wherever [`CONFIG_ENV`] points. With no file, nothing
//! here runs beyond one `stat`. Every error is one line naming the file and,
//! where there is one, the route; none quotes a value from the file, since
//! values may be secrets. The format is documented in
//! `man/docker-credential-incus.5`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::registry::ServerUrl;

/// Names the config file to use instead of the default location.
pub const CONFIG_ENV: &str = "DOCKER_CREDENTIAL_INCUS_CONFIG";
/// The file name inside the config folder.
pub const FILE_NAME: &str = "config.json";
/// The folder name inside the user's config folder.
pub const DIR_NAME: &str = "docker-credential-incus";
/// Deadline for a script when the route sets none.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long before a JWT's `exp` a cached token stops being served.
pub const DEFAULT_CACHE_MARGIN: Duration = Duration::from_secs(60);
/// Largest config file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Longest timeout or TTL accepted, so that arithmetic on them cannot overflow.
const MAX_SECONDS: f64 = 366.0 * 24.0 * 3600.0;

/// Why the config could not be used. Each message is one line that names the
/// file; none quotes a value from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// [`CONFIG_ENV`] names a file that is not there.
    #[error("{CONFIG_ENV} names {}, which does not exist; create it or unset {CONFIG_ENV}", .0.display())]
    Missing(PathBuf),
    /// The file exists but cannot be read.
    #[error("cannot read config {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The file is not valid JSON, or its top level has the wrong shape.
    #[error("config {}: {reason}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where and what.
        reason: String,
    },
    /// A route (or the top level) says something we cannot use.
    #[error("config {}: {}{reason}", path.display(), route_prefix(route))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The route's pattern as written, or `default`; `None` for the top level.
        route: Option<String>,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A file someone else could change: it names commands to run and
    /// where secrets come from, so it is refused as ssh refuses such files.
    #[error("config {} {reason}", path.display())]
    Unsafe {
        /// The file.
        path: PathBuf,
        /// Who could change it, and the fix.
        reason: String,
    },
    /// Inline secrets in a file that others can read, refused as ssh refuses keys.
    #[error(
        "config {} holds an inline secret (route \"{route}\") but its mode {mode:04o} lets group or others read it; run chmod 600 {}",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// The first route with an inline secret.
        route: String,
        /// The file's permission bits.
        mode: u32,
    },
}

fn route_prefix(route: &Option<String>) -> String {
    match route {
        Some(r) if r == "default" => "default route: ".to_string(),
        Some(r) => format!("route \"{r}\": "),
        None => String::new(),
    }
}

/// The config file to use: the one [`CONFIG_ENV`] names (which must exist), or
/// the default one if it exists. `None` means "no config": the keyring alone.
pub fn locate() -> Result<Option<PathBuf>, ConfigError> {
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return match std::fs::metadata(&path) {
            Ok(_) => Ok(Some(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfigError::Missing(path)),
            Err(e) => Err(ConfigError::Read {
                path,
                reason: e.to_string(),
            }),
        };
    }
    let Some(path) = default_path() else {
        return Ok(None);
    };
    match std::fs::metadata(&path) {
        Ok(_) => Ok(Some(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::Read {
            path,
            reason: e.to_string(),
        }),
    }
}

/// `<config folder>/docker-credential-incus/config.json`, e.g.
/// `~/.config/docker-credential-incus/config.json` on Linux.
pub fn default_path() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.config_dir().join(DIR_NAME).join(FILE_NAME))
}

/// A parsed, validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (relative paths in it are relative to its folder).
    pub path: PathBuf,
    /// The routes, in file order (ties between equally specific patterns go
    /// to the first).
    pub routes: Vec<Route>,
    /// The route for registries that no pattern matches (the keyring unless set).
    pub default: Route,
}

/// One route: which registries, which source, and what writes do.
#[derive(Debug, Clone)]
pub struct Route {
    /// The pattern; `None` for the default route.
    pub pattern: Option<Pattern>,
    /// Where credentials come from.
    pub source: Source,
    /// What `store` and `erase` do.
    pub writes: Writes,
}

impl Route {
    /// The pattern as written, or `default`.
    pub fn name(&self) -> &str {
        self.pattern.as_ref().map_or("default", |p| p.as_written())
    }
}

/// What `store` and `erase` do on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// They go to the source (the keyring, or the delegated helper).
    Allow,
    /// Read-only: they fail with a one-line error.
    Refuse,
    /// Read-only: they succeed and change nothing.
    Ignore,
}

/// A credential source.
#[derive(Debug, Clone)]
pub enum Source {
    /// The OS keyring (the default).
    Keyring,
    /// Fixed credentials.
    Static(StaticSpec),
    /// A command that prints the secret.
    Script(ScriptSpec),
    /// Another `docker-credential-*` program.
    Helper(HelperSpec),
}

impl Source {
    /// The source's name in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Keyring => "keyring",
            Source::Static(_) => "static",
            Source::Script(_) => "script",
            Source::Helper(_) => "helper",
        }
    }
}

/// Where a static value comes from (`username`, `username_env`, `username_file`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueFrom {
    /// Written in the config.
    Inline(String),
    /// Read from this environment variable at each call.
    Env(String),
    /// Read from this file at each call (one trailing newline stripped).
    File(PathBuf),
}

/// A `static` route.
#[derive(Debug, Clone)]
pub struct StaticSpec {
    /// The username.
    pub username: ValueFrom,
    /// The secret.
    pub secret: ValueFrom,
}

/// How a script's output is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// A JSON object if it starts with `{`, else the bare secret.
    Auto,
    /// Always the bare secret.
    Secret,
    /// Always a `{"Username","Secret"}` object.
    Json,
}

/// A `script` route.
#[derive(Debug, Clone)]
pub struct ScriptSpec {
    /// Program and arguments; never run through a shell.
    pub command: Vec<String>,
    /// The username sent with a bare secret.
    pub username: Option<String>,
    /// Deadline for one run.
    pub timeout: Duration,
    /// Variables added to the script's environment.
    pub env: Vec<(String, String)>,
    /// How its output is read.
    pub output: OutputMode,
    /// Caching, if on.
    pub cache: Option<CacheSpec>,
}

/// When a script's answer is kept in the keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSpec {
    /// Keep it this long; `None` keeps only JWT-shaped secrets, until their `exp`.
    pub ttl: Option<Duration>,
    /// Stop serving a JWT this long before its `exp`.
    pub margin: Duration,
}

/// A `helper` route.
#[derive(Debug, Clone)]
pub struct HelperSpec {
    /// Helper name (`pass`, `docker-credential-pass`) or path.
    pub helper: String,
    /// Deadline for one call; the helper default if unset.
    pub timeout: Option<Duration>,
    /// Variables added to the helper's environment.
    pub env: Vec<(String, String)>,
}

/// A registry pattern: an exact `host[:port]`, a host with `*` labels, and an
/// optional path prefix. Follows the canonical-key rules: no scheme, lowercased
/// host, the Docker Hub family as `docker.io`, no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    written: String,
    /// Host labels; `None` is a `*`.
    labels: Vec<Option<String>>,
    port: Option<u16>,
    /// Empty, or `/seg/seg`.
    path: String,
}

/// How specifically a pattern matched; larger is more specific. Compared in
/// field order: an exact host beats any wildcard, then more literal host
/// labels win, then a longer path prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    exact_host: bool,
    literal_labels: usize,
    path_segments: usize,
}

/// Stands in for `*` labels while the rest of a pattern is parsed as a server URL.
const WILDCARD_STANDIN: &str = "x--dci-wildcard--x";

impl Pattern {
    /// Parses a pattern. `*` must be a whole host label; a leading `*` stands
    /// for one or more labels, any other `*` for exactly one.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.contains(WILDCARD_STANDIN) {
            return Err("is not a valid pattern".to_string());
        }
        let replaced = text.replace('*', WILDCARD_STANDIN);
        let url = ServerUrl::parse(&replaced).map_err(|e| e.to_string())?;
        if url.path().contains(WILDCARD_STANDIN) {
            return Err("has a `*` in its path; `*` may only stand for whole host labels".into());
        }
        let labels: Vec<Option<String>> = url
            .host()
            .split('.')
            .map(|label| match label {
                WILDCARD_STANDIN => Ok(None),
                l if l.contains(WILDCARD_STANDIN) => Err(
                    "has a `*` inside a host label; `*` must be a whole label, as in *.example.com"
                        .to_string(),
                ),
                l => Ok(Some(l.to_string())),
            })
            .collect::<Result<_, _>>()?;
        if labels.iter().all(Option::is_none) {
            return Err("needs at least one literal host label besides `*`".to_string());
        }
        Ok(Pattern {
            written: text.to_string(),
            labels,
            port: url.port(),
            path: url.path().to_string(),
        })
    }

    /// The pattern as written in the config.
    pub fn as_written(&self) -> &str {
        &self.written
    }

    /// True when the host has no `*`.
    pub fn is_exact_host(&self) -> bool {
        self.labels.iter().all(Option::is_some)
    }

    /// The canonical form: what two patterns that mean the same thing share.
    pub fn canonical(&self) -> String {
        let host: Vec<&str> = self
            .labels
            .iter()
            .map(|l| l.as_deref().unwrap_or("*"))
            .collect();
        let mut out = host.join(".");
        if let Some(port) = self.port {
            out.push_str(&format!(":{port}"));
        }
        out.push_str(&self.path);
        out
    }

    /// For an exact pattern, the server URL it names (used by `list`).
    pub fn exact_url(&self) -> Option<String> {
        self.is_exact_host().then(|| self.canonical())
    }

    /// How specifically this pattern matches `url`, or `None` if it does not.
    pub fn matches(&self, url: &ServerUrl) -> Option<Specificity> {
        if self.port != url.port() || !path_has_prefix(url.path(), &self.path) {
            return None;
        }
        let host: Vec<&str> = url.host().split('.').collect();
        if !labels_match(&self.labels, &host) {
            return None;
        }
        Some(Specificity {
            exact_host: self.is_exact_host(),
            literal_labels: self.labels.iter().filter(|l| l.is_some()).count(),
            path_segments: self.path.matches('/').count(),
        })
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

fn labels_match(pattern: &[Option<String>], host: &[&str]) -> bool {
    match pattern.split_first() {
        // A leading `*` takes one or more labels.
        Some((None, rest)) if host.len() > rest.len() => {
            let (taken, tail) = host.split_at(host.len() - rest.len());
            !taken.is_empty() && taken.iter().all(|l| !l.is_empty()) && exact_labels(rest, tail)
        }
        Some((None, _)) => false,
        _ => pattern.len() == host.len() && exact_labels(pattern, host),
    }
}

fn exact_labels(pattern: &[Option<String>], host: &[&str]) -> bool {
    pattern.len() == host.len()
        && pattern.iter().zip(host).all(|(p, h)| match p {
            None => !h.is_empty(),
            Some(p) => p == h,
        })
}

/// `/a/b` is under `/a` but `/ab` is not; everything is under the empty path.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

impl Config {
    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        let read_error = |e: std::io::Error| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let meta = file.metadata().map_err(read_error)?;
        check_owner_and_writers(path, &meta)?;
        let mode = file_mode(&meta);
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::Syntax {
                path: path.to_path_buf(),
                reason: format!("larger than {} KiB", MAX_CONFIG_BYTES / 1024),
            });
        }
        let config = Config::parse(path, &bytes, mode);
        zeroize::Zeroize::zeroize(&mut bytes);
        config
    }

    /// Validates config text that came from `path`, whose permission bits are
    /// `mode` (`None` where the OS has none).
    pub fn parse(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<Config, ConfigError> {
        let syntax = |reason: String| ConfigError::Syntax {
            path: path.to_path_buf(),
            reason,
        };
        let file: FileFormat = serde_json::from_slice(bytes).map_err(|e| syntax(describe(&e)))?;
        if let Some(v) = file.version
            && v != 1
        {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                route: None,
                reason: format!("version {v} is not supported; this program reads version 1"),
            });
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut routes = Vec::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (text, body) in file.routes.map(|o| o.0).unwrap_or_default() {
            let invalid = |reason: String| ConfigError::Invalid {
                path: path.to_path_buf(),
                route: Some(text.clone()),
                reason,
            };
            let pattern = Pattern::parse(&text).map_err(|e| invalid(format!("pattern {e}")))?;
            if let Some(first) = seen.insert(pattern.canonical(), text.clone()) {
                return Err(invalid(format!(
                    "means the same registries as route \"{first}\"; keep one of them"
                )));
            }
            let (source, writes) = parse_route(&body, dir).map_err(invalid)?;
            routes.push(Route {
                pattern: Some(pattern),
                source,
                writes,
            });
        }
        let default = match file.default {
            Some(body) => {
                let (source, writes) =
                    parse_route(&body, dir).map_err(|reason| ConfigError::Invalid {
                        path: path.to_path_buf(),
                        route: Some("default".to_string()),
                        reason,
                    })?;
                Route {
                    pattern: None,
                    source,
                    writes,
                }
            }
            None => Route {
                pattern: None,
                source: Source::Keyring,
                writes: Writes::Allow,
            },
        };
        let config = Config {
            path: path.to_path_buf(),
            routes,
            default,
        };
        config.check_inline_secrets(mode)?;
        Ok(config)
    }

    /// Refuses inline secrets in a file that group or others can read.
    fn check_inline_secrets(&self, mode: Option<u32>) -> Result<(), ConfigError> {
        let Some(mode) = mode.filter(|m| m & 0o077 != 0) else {
            return Ok(());
        };
        let inline = self.routes.iter().chain([&self.default]).find(
            |r| matches!(&r.source, Source::Static(s) if matches!(s.secret, ValueFrom::Inline(_))),
        );
        match inline {
            Some(route) => Err(ConfigError::Permissions {
                path: self.path.clone(),
                route: route.name().to_string(),
                mode: mode & 0o7777,
            }),
            None => Ok(()),
        }
    }

    /// The route that serves `url`: the most specific matching pattern (ties
    /// go to the one written first), else the default route.
    pub fn route_for(&self, url: &ServerUrl) -> &Route {
        self.route_index(url)
            .map_or(&self.default, |i| &self.routes[i])
    }

    /// The index in [`Config::routes`] of the route serving `url`; `None` for the default.
    pub fn route_index(&self, url: &ServerUrl) -> Option<usize> {
        let mut best: Option<(Specificity, usize)> = None;
        for (i, route) in self.routes.iter().enumerate() {
            let Some(spec) = route.pattern.as_ref().and_then(|p| p.matches(url)) else {
                continue;
            };
            if best.is_none_or(|(b, _)| spec > b) {
                best = Some((spec, i));
            }
        }
        best.map(|(_, i)| i)
    }
}

/// The top level of the file. Unknown keys are refused so that typos show.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    version: Option<u64>,
    routes: Option<Ordered>,
    default: Option<Value>,
    #[serde(rename = "comment")]
    _comment: Option<Value>,
}

/// A JSON object kept in file order, refusing duplicate keys.
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object mapping registry patterns to routes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out: Vec<(String, Value)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!(
                            "route \"{key}\" is written twice"
                        )));
                    }
                    out.push((key, map.next_value()?));
                }
                Ok(Ordered(out))
            }
        }
        deserializer.deserialize_map(OrderedVisitor)
    }
}

/// serde_json's message without the risk of quoting a value: syntax errors
/// never quote one, but "invalid type: string \"…\"" does, so those are reworded.
fn describe(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if msg.starts_with("invalid type") || msg.starts_with("invalid value") {
        let expected = msg
            .split(", expected ")
            .nth(1)
            .and_then(|rest| rest.split(" at line ").next())
            .unwrap_or("another type");
        return format!(
            "wrong type of value at line {} column {}: expected {expected}",
            e.line(),
            e.column()
        );
    }
    msg
}

/// The fields of one route object, taken one by one so that each error can
/// name its field, and unknown fields are refused.
struct Fields<'a> {
    map: &'a serde_json::Map<String, Value>,
    used: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn take(&mut self, name: &'static str) -> Option<&'a Value> {
        self.used.push(name);
        self.map.get(name)
    }

    fn string(&mut self, name: &'static str) -> Result<Option<String>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("\"{name}\" must be a string")),
        }
    }

    fn seconds(&mut self, name: &'static str) -> Result<Option<Duration>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(s) if s > 0.0 && s <= MAX_SECONDS => Ok(Some(Duration::from_secs_f64(s))),
                _ => Err(format!(
                    "\"{name}\" must be a number of seconds above 0 and at most a year"
                )),
            },
            Some(_) => Err(format!("\"{name}\" must be a number of seconds")),
        }
    }

    fn env(&mut self) -> Result<Vec<(String, String)>, String> {
        match self.take("env") {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) if valid_env_name(k) => Ok((k.clone(), s.clone())),
                    Value::String(_) => Err(format!(
                        "\"env\" has an invalid variable name \"{k}\" (use letters, digits and _)"
                    )),
                    _ => Err(format!("\"env\" value for \"{k}\" must be a string")),
                })
                .collect(),
            Some(_) => Err("\"env\" must be an object of strings".to_string()),
        }
    }

    /// The value of `<name>`, `<name>_env` or `<name>_file`; exactly one must be set.
    fn value_from(&mut self, name: &'static str, dir: &Path) -> Result<ValueFrom, String> {
        let (env_name, file_name) = match name {
            "username" => ("username_env", "username_file"),
            _ => ("secret_env", "secret_file"),
        };
        let inline = self.string(name)?;
        let env = self.string(env_name)?;
        let file = self.string(file_name)?;
        match (inline, env, file) {
            (Some(v), None, None) => Ok(ValueFrom::Inline(v)),
            (None, Some(v), None) if valid_env_name(&v) => Ok(ValueFrom::Env(v)),
            (None, Some(_), None) => Err(format!(
                "\"{env_name}\" must name an environment variable (letters, digits and _)"
            )),
            (None, None, Some(v)) if !v.is_empty() => Ok(ValueFrom::File(resolve_path(&v, dir))),
            (None, None, None) => Err(format!(
                "a static route needs one of \"{name}\", \"{env_name}\" or \"{file_name}\""
            )),
            _ => Err(format!(
                "set only one of \"{name}\", \"{env_name}\" and \"{file_name}\""
            )),
        }
    }

    fn finish(self) -> Result<(), String> {
        let mut unknown: Vec<&str> = self
            .map
            .keys()
            .map(String::as_str)
            .filter(|k| !self.used.contains(k) && *k != "comment")
            .collect();
        unknown.sort();
        match unknown.first() {
            None => Ok(()),
            Some(k) => Err(format!(
                "unknown field \"{k}\"; this source knows: {}",
                self.used.join(", ")
            )),
        }
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `~/x` is under the home folder; a relative path is under the config's folder.
fn resolve_path(text: &str, dir: &Path) -> PathBuf {
    if let Some(rest) = text.strip_prefix("~/")
        && let Some(home) = directories::BaseDirs::new()
    {
        return home.home_dir().join(rest);
    }
    let path = PathBuf::from(text);
    if path.is_absolute() {
        path
    } else {
        dir.join(path)
    }
}

/// A bare program name is looked up on PATH; anything with a `/` is a path.
fn resolve_program(text: &str, dir: &Path) -> String {
    if text.contains('/') {
        resolve_path(text, dir).to_string_lossy().into_owned()
    } else {
        text.to_string()
    }
}

/// Every field some source knows. A name outside this list is a typo; when
/// the route does not parse, the typo is named rather than what it caused, so
/// that `"sorce"` is not reported as a keyring route with a stray `"secret"`.
const ROUTE_FIELDS: [&str; 15] = [
    "source",
    "writes",
    "comment",
    "username",
    "username_env",
    "username_file",
    "secret",
    "secret_env",
    "secret_file",
    "command",
    "output",
    "timeout",
    "env",
    "cache",
    "helper",
];

fn parse_route(body: &Value, dir: &Path) -> Result<(Source, Writes), String> {
    parse_route_fields(body, dir).map_err(|error| {
        let typo = body
            .as_object()
            .and_then(|map| map.keys().find(|k| !ROUTE_FIELDS.contains(&k.as_str())));
        match typo {
            Some(typo) if !error.contains(&format!("unknown field \"{typo}\"")) => format!(
                "unknown field \"{typo}\"; a route knows: {}",
                ROUTE_FIELDS.join(", ")
            ),
            _ => error,
        }
    })
}

fn parse_route_fields(body: &Value, dir: &Path) -> Result<(Source, Writes), String> {
    let Value::Object(map) = body else {
        return Err("must be an object such as {\"source\": \"keyring\"}".to_string());
    };
    let mut fields = Fields {
        map,
        used: Vec::new(),
    };
    let kind = fields.string("source")?.unwrap_or_else(|| "keyring".into());
    let source = match kind.as_str() {
        "keyring" => Source::Keyring,
        "static" => Source::Static(StaticSpec {
            username: fields.value_from("username", dir)?,
            secret: fields.value_from("secret", dir)?,
        }),
        "script" => Source::Script(parse_script(&mut fields, dir)?),
        "helper" => Source::Helper(HelperSpec {
            helper: match fields.string("helper")? {
                Some(h) if !h.is_empty() => resolve_program(&h, dir),
                _ => {
                    return Err(
                        "a helper route needs \"helper\", e.g. \"ecr-login\" or a path".into(),
                    );
                }
            },
            timeout: fields.seconds("timeout")?,
            env: fields.env()?,
        }),
        other => {
            return Err(format!(
                "unknown source \"{other}\"; use keyring, static, script or helper"
            ));
        }
    };
    let writable = matches!(source, Source::Keyring | Source::Helper(_));
    let writes = match fields.string("writes")?.as_deref() {
        None if writable => Writes::Allow,
        None => Writes::Refuse,
        Some("allow") if writable => Writes::Allow,
        Some("allow") => {
            return Err(format!(
                "a {kind} source cannot hold writes; set \"writes\" to \"refuse\" or \"ignore\""
            ));
        }
        Some("refuse") => Writes::Refuse,
        Some("ignore") => Writes::Ignore,
        Some(other) => {
            return Err(format!(
                "\"writes\" is \"{other}\"; use allow, refuse or ignore"
            ));
        }
    };
    fields.finish()?;
    Ok((source, writes))
}

fn parse_script(fields: &mut Fields, dir: &Path) -> Result<ScriptSpec, String> {
    let command = match fields.take("command") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err("\"command\" must be a list of strings".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::String(_)) => {
            return Err(
                "\"command\" must be a list such as [\"gcloud\", \"auth\", \"print-access-token\"], not a shell string"
                    .into(),
            );
        }
        _ => {
            return Err(
                "a script route needs \"command\", a non-empty list of program and arguments"
                    .into(),
            );
        }
    };
    if command[0].is_empty() {
        return Err("\"command\" starts with an empty program name".into());
    }
    let mut command = command;
    command[0] = resolve_program(&command[0], dir);
    let output = match fields.string("output")?.as_deref() {
        None | Some("auto") => OutputMode::Auto,
        Some("secret") => OutputMode::Secret,
        Some("json") => OutputMode::Json,
        Some(other) => {
            return Err(format!(
                "\"output\" is \"{other}\"; use auto, secret or json"
            ));
        }
    };
    let username = fields.string("username")?;
    if output == OutputMode::Secret && username.is_none() {
        return Err("\"output\": \"secret\" needs \"username\"".into());
    }
    let cache = match fields.take("cache") {
        None | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(CacheSpec {
            ttl: None,
            margin: DEFAULT_CACHE_MARGIN,
        }),
        Some(Value::Object(m)) => {
            let mut cache_fields = Fields {
                map: m,
                used: Vec::new(),
            };
            let spec = CacheSpec {
                ttl: cache_fields.seconds("ttl")?,
                margin: cache_fields
                    .seconds("margin")?
                    .unwrap_or(DEFAULT_CACHE_MARGIN),
            };
            cache_fields
                .finish()
                .map_err(|e| format!("\"cache\": {e}"))?;
            Some(spec)
        }
        Some(_) => {
            return Err("\"cache\" must be true, false or an object such as {\"ttl\": 300}".into());
        }
    };
    Ok(ScriptSpec {
        command,
        username,
        timeout: fields.seconds("timeout")?.unwrap_or(DEFAULT_SCRIPT_TIMEOUT),
        env: fields.env()?,
        output,
        cache,
    })
}

/// Refuses a config that group or others may write, or that belongs to
/// another user (root excepted).
#[cfg(unix)]
fn check_owner_and_writers(path: &Path, meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let unsafe_file = |reason: String| ConfigError::Unsafe {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(me) = crate::process::current_uid()
        && meta.uid() != me
        && meta.uid() != 0
    {
        return Err(unsafe_file(format!(
            "belongs to uid {}, not to you (uid {me}); it names commands to run, so use a config of your own",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_file(format!(
            "can be changed by group or others (mode {:04o}); it names commands to run, so run chmod go-w {}",
            meta.mode() & 0o7777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_and_writers(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    Ok(())
}

#[cfg(unix)]
fn file_mode(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    Some(meta.permissions().mode())
}

#[cfg(not(unix))]
fn file_mode(_meta: &std::fs::Metadata) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/cfg/config.json"), text.as_bytes(), Some(0o600))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    fn routed(config: &Config, url: &str) -> String {
        config
            .route_for(&ServerUrl::parse(url).unwrap())
            .name()
            .to_string()
    }

    const ROUTES: &str = r#"{"routes": {
        "*.example.test": {"source": "keyring"},
        "registry.example.test": {"source": "keyring"},
        "registry.example.test/team": {"source": "keyring"},
        "registry.example.test/team/app": {"source": "keyring"},
        "*.dkr.ecr.*.amazonaws.com": {"source": "helper", "helper": "ecr-login"},
        "*.amazonaws.com": {"source": "keyring"},
        "https://index.docker.io/v1/": {"source": "keyring"},
        "localhost:5000": {"source": "keyring"}
    }}"#;

    #[test]
    fn exact_host_beats_wildcard() {
        let c = parse(ROUTES).unwrap();
        assert_eq!(routed(&c, "registry.example.test"), "registry.example.test");
        assert_eq!(routed(&c, "https://other.example.test/"), "*.example.test");
    }

    #[test]
    fn longest_path_prefix_wins_on_segment_boundaries() {
        let c = parse(ROUTES).unwrap();
        assert_eq!(
            routed(&c, "registry.example.test/team/app/x"),
            "registry.example.test/team/app"
        );
        assert_eq!(
            routed(&c, "registry.example.test/team/other"),
            "registry.example.test/team"
        );
        assert_eq!(
            routed(&c, "registry.example.test/teamx"),
            "registry.example.test"
        );
    }

    #[test]
    fn leading_wildcard_takes_one_or_more_labels_but_not_none() {
        let c = parse(ROUTES).unwrap();
        assert_eq!(routed(&c, "a.b.example.test"), "*.example.test");
        assert_eq!(routed(&c, "example.test"), "default");
    }

    #[test]
    fn inner_wildcard_takes_exactly_one_label_and_more_literals_win() {
        let c = parse(ROUTES).unwrap();
        assert_eq!(
            routed(&c, "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            "*.dkr.ecr.*.amazonaws.com"
        );
        assert_eq!(routed(&c, "1.dkr.ecr.a.b.amazonaws.com"), "*.amazonaws.com");
        assert_eq!(routed(&c, "s3.amazonaws.com"), "*.amazonaws.com");
    }

    #[test]
    fn patterns_follow_the_canonical_key_rules() {
        let c = parse(ROUTES).unwrap();
        for hub in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(routed(&c, hub), "https://index.docker.io/v1/", "{hub}");
        }
        assert_eq!(routed(&c, "LOCALHOST:5000"), "localhost:5000");
        assert_eq!(routed(&c, "localhost"), "default");
        assert_eq!(routed(&c, "localhost:5001"), "default");
    }

    #[test]
    fn equally_specific_patterns_go_to_the_first_written() {
        let c = parse(
            r#"{"routes": {"a.*.example.test": {}, "*.b.example.test": {"source": "keyring"}}}"#,
        )
        .unwrap();
        assert_eq!(routed(&c, "a.b.example.test"), "a.*.example.test");
    }

    #[test]
    fn two_spellings_of_one_pattern_are_refused() {
        assert_eq!(
            err(r#"{"routes": {"ghcr.io": {}, "https://GHCR.io/": {}}}"#),
            "config /cfg/config.json: route \"https://GHCR.io/\": means the same registries as route \"ghcr.io\"; keep one of them"
        );
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        assert!(err(r#"{"routes": {"foo*.example.test": {}}}"#).contains("whole label"));
        assert!(err(r#"{"routes": {"*": {}}}"#).contains("literal host label"));
        assert!(err(r#"{"routes": {"h/*": {}}}"#).contains("in its path"));
        assert!(err(r#"{"routes": {"oci://h": {}}}"#).contains("unsupported scheme"));
    }

    #[test]
    fn unknown_source_and_fields_are_named() {
        assert_eq!(
            err(r#"{"routes": {"h": {"source": "statik"}}}"#),
            "config /cfg/config.json: route \"h\": unknown source \"statik\"; use keyring, static, script or helper"
        );
        assert_eq!(
            err(r#"{"routes": {"h": {"source": "helper", "helper": "pass", "timout": 3}}}"#),
            "config /cfg/config.json: route \"h\": unknown field \"timout\"; this source knows: source, helper, timeout, env, writes"
        );
        assert!(err(r#"{"route": {}}"#).contains("unknown field `route`"));
    }

    #[test]
    fn script_command_must_be_an_argv_list() {
        assert!(
            err(r#"{"routes": {"h": {"source": "script", "command": "gcloud auth"}}}"#)
                .contains("not a shell string")
        );
        let c = parse(
            r#"{"routes": {"h": {"source": "script", "command": ["./get", "x"], "username": "u", "cache": {"ttl": 60}}}}"#,
        )
        .unwrap();
        let Source::Script(s) = &c.routes[0].source else {
            panic!()
        };
        assert_eq!(s.command, ["/cfg/./get", "x"]);
        assert_eq!(s.cache.unwrap().ttl, Some(Duration::from_secs(60)));
        assert_eq!(c.routes[0].writes, Writes::Refuse);
    }

    #[test]
    fn static_and_script_routes_cannot_allow_writes() {
        assert!(
            err(r#"{"routes": {"h": {"source": "static", "username": "u", "secret_env": "S", "writes": "allow"}}}"#)
                .contains("cannot hold writes")
        );
    }

    #[test]
    fn static_route_needs_exactly_one_secret_source() {
        assert!(
            err(r#"{"routes": {"h": {"source": "static", "username": "u"}}}"#)
                .contains("needs one of \"secret\", \"secret_env\" or \"secret_file\"")
        );
        assert!(
            err(r#"{"routes": {"h": {"source": "static", "username": "u", "secret": "s", "secret_env": "S"}}}"#)
                .contains("set only one of")
        );
    }

    #[test]
    fn inline_secret_in_a_readable_file_is_refused() {
        let text =
            r#"{"routes": {"h": {"source": "static", "username": "u", "secret": "hunter2"}}}"#;
        let e = Config::parse(
            Path::new("/cfg/config.json"),
            text.as_bytes(),
            Some(0o100640),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "config /cfg/config.json holds an inline secret (route \"h\") but its mode 0640 lets group or others read it; run chmod 600 /cfg/config.json"
        );
        assert!(Config::parse(Path::new("/c"), text.as_bytes(), Some(0o100600)).is_ok());
        // Without inline secrets the mode does not matter.
        let text = r#"{"routes": {"h": {"source": "static", "username": "u", "secret_env": "S"}}}"#;
        assert!(Config::parse(Path::new("/c"), text.as_bytes(), Some(0o100644)).is_ok());
    }

    #[test]
    fn a_misspelt_field_is_named_before_anything_else() {
        assert!(
            err(r#"{"routes": {"h": {"sorce": "static", "username": "u", "secret": "x"}}}"#)
                .contains("route \"h\": unknown field \"sorce\"; a route knows: source,")
        );
        assert!(
            err(r#"{"routes": {"h": {"source": "static", "usernme": "u", "secret_env": "S"}}}"#)
                .contains("unknown field \"usernme\"")
        );
    }

    #[test]
    fn errors_never_quote_values() {
        let e =
            err(r#"{"routes": {"h": {"source": "static", "username": "u", "secret": 1234567}}}"#);
        assert!(!e.contains("1234567"), "{e}");
        let e =
            err(r#"{"routes": {"h": {"source": "static", "username": "u", "secret": "hunter2""#);
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn missing_default_is_the_keyring() {
        let c = parse("{}").unwrap();
        assert!(matches!(c.default.source, Source::Keyring));
        assert_eq!(c.default.writes, Writes::Allow);
    }
}
