//! `resolve REF`: which credential source Docker, containers/image (skopeo,
//! podman, buildah) and Incus would use for an image reference or registry,
//! and why; with `--get`, fetch the credential through that source.
//!
//! The rules (protocol.md §3, §5; environment.md §4):
//! - docker: `credHelpers[key]` (an empty value means the file), else
//!   `credsStore`, else `auths` (exact key, then legacy keys reduced to their
//!   host). The key is the registry host, Docker Hub's is
//!   `https://index.docker.io/v1/`. A config with no auth data at all gets an
//!   auto-detected store: pass when `pass` is installed, else secretservice,
//!   if its helper is installed. `DOCKER_AUTH_CONFIG` entries come first.
//! - containers/image: files in order (`--authfile` or `REGISTRY_AUTH_FILE`
//!   alone; else `$XDG_RUNTIME_DIR/containers/auth.json` or
//!   `/run/containers/$UID/auth.json`, `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`,
//!   `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, `~/.dockercfg`).
//!   In each: `credHelpers[host]`, then `auths` by repository, namespace and
//!   host, then keys reduced to their host (Hub `index.docker.io`). A helper
//!   that finds nothing, or an empty entry, passes to the next file.
//!   `credsStore` is ignored.
//! - Incus: the OCI remotes of config.yml (local over global) whose address
//!   is this registry, and their `credentials_helper`, run as given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::{Map, Value};

use super::client::{Format, print_credentials};
use super::{Env, Streams, ToolError};
use crate::protocol::{Credentials, TOKEN_USERNAME};
use crate::registry::{DOCKER_HUB_LEGACY_URL, ServerUrl};
use crate::store::helper::{HELPER_PREFIX, Helper};
use crate::store::{Store, StoreError};

/// A client whose rules `resolve` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    /// The docker CLI.
    Docker,
    /// containers/image: skopeo, podman, buildah.
    Containers,
    /// The Incus client.
    Incus,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Docker => "docker",
            Tool::Containers => "containers",
            Tool::Incus => "incus",
        }
    }
}

/// Arguments of `resolve`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// An image reference (alpine, ghcr.io/org/app:1, docker://…) or a registry
    /// (gcr.io, https://gcr.io, 127.0.0.1:5000/). A name without `/` is a
    /// registry when it holds a `.` or is localhost, else an image on Docker Hub.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Explain only these clients (repeatable; default all three).
    #[arg(long = "tool", value_enum, value_name = "CLIENT")]
    pub tools: Vec<Tool>,
    /// For containers: the --authfile the client would be given.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Fetch the credential through the first client's source (docker unless --tool says otherwise).
    #[arg(long)]
    pub get: bool,
    /// Output of --get: json, env, username or secret.
    #[arg(long, value_enum, default_value_t = Format::Json, requires = "get")]
    pub format: Format,
    /// Print the explanation as one JSON object.
    #[arg(long, conflicts_with = "get")]
    pub json: bool,
    /// Seconds each helper call may take (with --get).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

/// An image reference or registry, reduced to what credential lookup uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// `host[:port]`, Docker Hub as `docker.io`.
    pub registry: String,
    /// The repository path without tag or digest (`library/alpine`), if any.
    pub repository: Option<String>,
    #[serde(skip)]
    url: ServerUrl,
}

/// Parses `input` by docker's reference rules (see [`ResolveArgs::reference`]).
pub fn parse_reference(input: &str) -> Result<Reference, ToolError> {
    let bad = |e: String| ToolError::Usage(format!("{input}: {e}"));
    let input = input.trim();
    let input = input.strip_prefix("docker://").unwrap_or(input);
    let (domain, repo): (String, Option<String>) = if input.contains("://") {
        let url = ServerUrl::parse(input).map_err(|e| bad(e.to_string()))?;
        let path = url.path().trim_start_matches('/').to_string();
        (url.registry(), Some(path).filter(|p| !p.is_empty()))
    } else {
        match input.split_once('/') {
            Some((first, rest)) if is_domain(first) => (
                first.to_string(),
                Some(rest.trim_end_matches('/').to_string()).filter(|r| !r.is_empty()),
            ),
            Some(_) => ("docker.io".to_string(), Some(input.to_string())),
            None if host_like(input) => (input.to_string(), None),
            None => ("docker.io".to_string(), Some(input.to_string())),
        }
    };
    let url = ServerUrl::parse(&domain).map_err(|e| bad(e.to_string()))?;
    let url = ServerUrl::parse(&url.registry()).map_err(|e| bad(e.to_string()))?;
    let repository = repo
        .map(|r| strip_tag(&r))
        .filter(|r| !r.is_empty())
        .map(|r| {
            if url.is_docker_hub() && !r.contains('/') {
                format!("library/{r}")
            } else {
                r
            }
        });
    Ok(Reference {
        registry: url.registry(),
        repository,
        url,
    })
}

/// docker's test for the first component naming a registry.
fn is_domain(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

/// A bare `host[:port]` whose host has a dot, is localhost or an IPv6
/// literal; anything else without a `/` is an image name (`alpine:3.20`).
fn host_like(input: &str) -> bool {
    if input.starts_with('[') {
        return true;
    }
    let host = match input.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return false,
        None => input,
    };
    host.contains('.') || host == "localhost"
}

fn strip_tag(repo: &str) -> String {
    let repo = repo.split('@').next().unwrap_or(repo);
    match repo.rfind(['/', ':']) {
        Some(at) if repo.as_bytes()[at] == b':' => repo[..at].to_string(),
        _ => repo.to_string(),
    }
}

/// How a step gets its credential.
#[derive(Debug, Clone)]
enum Fetch {
    /// Run this program's `get` with this stdin.
    Helper { program: String, query: String },
    /// Credentials written in a file or variable.
    Static(Box<Credentials>),
}

/// One source a client would consult, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What selected it, e.g. `credHelpers["gcr.io"] in /h/.docker/config.json`.
    pub why: String,
    /// The program run (`docker-credential-gcloud`), for helper sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helper: Option<String>,
    /// What the helper reads on stdin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// The username, for credentials written in a file (never the secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// True when the client goes on to the next step if this one finds nothing.
    pub falls_through: bool,
    #[serde(skip)]
    fetch: Option<Fetch>,
}

impl Step {
    fn helper(why: String, program: String, query: String, falls_through: bool) -> Step {
        Step {
            why,
            helper: Some(program.clone()),
            stdin: Some(query.clone()),
            username: None,
            falls_through,
            fetch: Some(Fetch::Helper { program, query }),
        }
    }

    fn stored(why: String, creds: Credentials) -> Step {
        Step {
            why,
            helper: None,
            stdin: None,
            username: Some(creds.username.clone()),
            falls_through: false,
            fetch: Some(Fetch::Static(Box::new(creds))),
        }
    }

    fn describe(&self) -> String {
        match (&self.helper, &self.stdin, &self.username) {
            (Some(h), Some(q), _) => format!("runs `{h} get` with stdin {q:?}"),
            (_, _, Some(u)) if u == TOKEN_USERNAME => {
                "uses the identity token written there".to_string()
            }
            (_, _, Some(u)) => format!("uses user {u:?} and the password written there"),
            _ => "has no credentials".to_string(),
        }
    }
}

/// What one client would do.
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    /// The client.
    pub tool: Tool,
    /// Sources in the order the client tries them; empty means anonymous.
    pub steps: Vec<Step>,
    /// Things worth knowing: ignored settings, quirks.
    pub notes: Vec<String>,
}

/// Runs `resolve`.
pub fn run(args: ResolveArgs, io: &mut Streams) -> Result<(), ToolError> {
    let reference = parse_reference(&args.reference)?;
    let env = Env::process();
    let tools = if args.tools.is_empty() {
        vec![Tool::Docker, Tool::Containers, Tool::Incus]
    } else {
        args.tools.clone()
    };
    let resolutions: Vec<Resolution> = tools
        .iter()
        .map(|t| resolve_tool(*t, &reference, &env, args.authfile.as_deref()))
        .collect();
    if args.get {
        let first = &resolutions[0];
        let creds = fetch(
            first,
            &reference,
            &env,
            Duration::from_secs(args.timeout.max(1)),
        )?;
        return print_credentials(&creds, args.format, io.stdout);
    }
    let out = if args.json {
        let mut object = Map::new();
        object.insert(
            "reference".to_string(),
            Value::String(args.reference.clone()),
        );
        object.insert(
            "registry".to_string(),
            Value::String(reference.registry.clone()),
        );
        object.insert(
            "repository".to_string(),
            reference
                .repository
                .clone()
                .map_or(Value::Null, Value::String),
        );
        for r in &resolutions {
            object.insert(
                r.tool.name().to_string(),
                serde_json::to_value(r).unwrap_or(Value::Null),
            );
        }
        let mut text = serde_json::to_string(&Value::Object(object)).unwrap_or_default();
        text.push('\n');
        text
    } else {
        render_text(&args.reference, &reference, &resolutions)
    };
    io.stdout
        .write_all(out.as_bytes())
        .map_err(|e| ToolError::Failed(format!("cannot write to stdout: {e}")))?;
    if resolutions.iter().all(|r| r.steps.is_empty()) {
        return Err(ToolError::NotFound(format!(
            "no client has a credential source for {}: they would pull anonymously",
            reference.registry
        )));
    }
    Ok(())
}

fn render_text(input: &str, reference: &Reference, resolutions: &[Resolution]) -> String {
    let mut out = format!("{input}: registry {}", reference.registry);
    if let Some(repo) = &reference.repository {
        out.push_str(&format!(", repository {repo}"));
    }
    out.push('\n');
    for r in resolutions {
        out.push_str(&format!("{}:\n", r.tool.name()));
        if r.steps.is_empty() {
            out.push_str("  no credentials: anonymous access\n");
        }
        for (i, step) in r.steps.iter().enumerate() {
            out.push_str(&format!("  {}. {}: {}", i + 1, step.why, step.describe()));
            if step.falls_through && i + 1 < r.steps.len() {
                out.push_str("; if it finds nothing, the next source is tried");
            }
            out.push('\n');
        }
        for note in &r.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
    }
    out
}

/// Applies one client's rules.
pub fn resolve_tool(
    tool: Tool,
    reference: &Reference,
    env: &Env,
    authfile: Option<&Path>,
) -> Resolution {
    match tool {
        Tool::Docker => resolve_docker(reference, env),
        Tool::Containers => resolve_containers(reference, env, authfile),
        Tool::Incus => resolve_incus(reference, env),
    }
}

/// Reads a JSON object file; `Ok(None)` when it does not exist.
fn read_json(path: &Path) -> Result<Option<Map<String, Value>>, String> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            Ok(_) => Err(format!("{} is not a JSON object", path.display())),
            Err(e) => Err(format!(
                "{} is not valid JSON (line {} column {})",
                path.display(),
                e.line(),
                e.column()
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn docker_key(reference: &Reference) -> String {
    if reference.url.is_docker_hub() {
        DOCKER_HUB_LEGACY_URL.to_string()
    } else {
        reference.registry.clone()
    }
}

/// Decodes an `auths` entry as containers/image and docker do: `auth` must
/// decode to `user:password`; an identity token counts only beside it.
fn decode_auth(server: &str, entry: &Value) -> Option<Credentials> {
    let entry = entry.as_object()?;
    let auth = entry.get("auth").and_then(Value::as_str).unwrap_or("");
    let decoded = crate::secret::Secret::new(STANDARD.decode(auth).ok()?);
    let text = std::str::from_utf8(decoded.expose()).ok()?;
    let (user, password) = text.split_once(':')?;
    if let Some(token) = entry
        .get("identitytoken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        return Some(Credentials::new(server, TOKEN_USERNAME, token));
    }
    Some(Credentials::new(
        server,
        user,
        password.trim_end_matches('\0'),
    ))
}

fn resolve_docker(reference: &Reference, env: &Env) -> Resolution {
    let key = docker_key(reference);
    let path = env.docker_config();
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    if let Some(raw) = env.var("DOCKER_AUTH_CONFIG") {
        match serde_json::from_str::<Value>(&raw.to_string_lossy()) {
            Ok(v) => {
                if let Some(entry) = v.get("auths").and_then(|a| a.get(&key))
                    && let Some(creds) = decode_auth(&key, entry)
                {
                    steps.push(Step::stored(
                        format!("auths[{key:?}] in DOCKER_AUTH_CONFIG"),
                        creds,
                    ));
                    return Resolution {
                        tool: Tool::Docker,
                        steps,
                        notes,
                    };
                }
            }
            Err(_) => {
                notes.push("DOCKER_AUTH_CONFIG is not valid JSON; docker refuses it".to_string())
            }
        }
    }
    let config = match read_json(&path) {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            notes.push(format!("{e}; docker stops with an error"));
            return Resolution {
                tool: Tool::Docker,
                steps,
                notes,
            };
        }
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let helpers = config.get("credHelpers").and_then(Value::as_object);
    let mut store = text(config.get("credsStore")).unwrap_or_default();
    let mut store_why = format!("credsStore {store:?} in {}", path.display());
    let has_auth_data = !store.is_empty()
        || helpers.is_some_and(|h| !h.is_empty())
        || config
            .get("auths")
            .and_then(Value::as_object)
            .is_some_and(|a| !a.is_empty());
    if !has_auth_data {
        let candidate = if env.find_program("pass").is_some() {
            "pass"
        } else {
            "secretservice"
        };
        if env
            .find_program(&format!("{HELPER_PREFIX}{candidate}"))
            .is_some()
        {
            store = candidate.to_string();
            store_why = format!(
                "no auth data in {}, so docker picks credsStore {candidate:?} itself ({})",
                path.display(),
                if candidate == "pass" {
                    "pass is installed"
                } else {
                    "pass is not installed"
                }
            );
        }
    }
    let (helper, why) = match helpers.and_then(|h| h.get(&key)) {
        Some(v) => {
            let name = v.as_str().unwrap_or_default().to_string();
            let why = format!("credHelpers[{key:?}] = {name:?} in {}", path.display());
            if name.is_empty() {
                notes.push(format!("{why}: an empty helper name sends docker to the auths of the file, past credsStore"));
            }
            (name, why)
        }
        None => (store, store_why),
    };
    if !helper.is_empty() {
        steps.push(Step::helper(
            why,
            format!("{HELPER_PREFIX}{helper}"),
            key.clone(),
            false,
        ));
        note_missing(
            env,
            &format!("{HELPER_PREFIX}{helper}"),
            "docker fails",
            &mut notes,
        );
        return Resolution {
            tool: Tool::Docker,
            steps,
            notes,
        };
    }
    if let Some(auths) = config.get("auths").and_then(Value::as_object) {
        let found = auths.get(&key).map(|e| (key.clone(), e)).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| super::convert_to_hostname(k) == key)
                .map(|(k, e)| (k.clone(), e))
        });
        if let Some((k, entry)) = found {
            match decode_auth(&key, entry) {
                Some(creds) => steps.push(Step::stored(
                    format!("auths[{k:?}] in {}", path.display()),
                    creds,
                )),
                None => notes.push(format!(
                    "auths[{k:?}] in {} holds no credentials: anonymous",
                    path.display()
                )),
            }
        }
    }
    Resolution {
        tool: Tool::Docker,
        steps,
        notes,
    }
}

/// containers/image's `authKeysForKey`: the key and each parent, most specific first.
fn auth_keys(reference: &Reference) -> Vec<String> {
    let mut key = match &reference.repository {
        Some(repo) => format!("{}/{repo}", reference.registry),
        None => reference.registry.clone(),
    };
    let mut keys = vec![key.clone()];
    while let Some(at) = key.rfind('/') {
        key.truncate(at);
        keys.push(key.clone());
    }
    keys
}

fn normalize_registry(host: &str) -> &str {
    match host {
        "registry-1.docker.io" | "docker.io" => "index.docker.io",
        other => other,
    }
}

fn resolve_containers(reference: &Reference, env: &Env, authfile: Option<&Path>) -> Resolution {
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    let mut notes = Vec::new();
    let (primary, user_specified) = match authfile {
        Some(p) => (p.to_path_buf(), true),
        None => env.containers_primary(),
    };
    files.push((primary.clone(), false));
    if user_specified {
        notes.push(format!(
            "{} was named by the user, so it is the only file read (containers/image before 5.25, e.g. skopeo 1.9, read the default files after it too)",
            primary.display()
        ));
    } else {
        files.push((env.containers_config(), false));
        files.push((env.docker_config(), false));
        files.push((env.home().join(".dockercfg"), true));
    }
    let registry = reference.registry.as_str();
    let mut steps = Vec::new();
    for (path, legacy) in files {
        let map = match read_json(&path) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                notes.push(format!("{e}; it is skipped with an error"));
                continue;
            }
        };
        if !legacy && let Some(store) = map.get("credsStore").and_then(Value::as_str) {
            notes.push(format!(
                "credsStore {store:?} in {} is ignored by containers tools; use credHelpers (`docker-credential-incus configure containers`)",
                path.display()
            ));
        }
        if !legacy
            && let Some(helper) = map
                .get("credHelpers")
                .and_then(|h| h.get(registry))
                .and_then(Value::as_str)
        {
            steps.push(Step::helper(
                format!(
                    "credHelpers[{registry:?}] = {helper:?} in {}",
                    path.display()
                ),
                format!("{HELPER_PREFIX}{helper}"),
                registry.to_string(),
                true,
            ));
            let program = format!("{HELPER_PREFIX}{helper}");
            note_missing(env, &program, "containers tools fail", &mut notes);
            continue;
        }
        let auths = if legacy {
            Some(&map)
        } else {
            map.get("auths").and_then(Value::as_object)
        };
        let Some(auths) = auths else { continue };
        let keys = if legacy {
            vec![registry.to_string()]
        } else {
            auth_keys(reference)
        };
        let found = keys
            .iter()
            .find_map(|k| auths.get(k).map(|e| (k.clone(), e)))
            .or_else(|| {
                let wanted = normalize_registry(registry);
                auths.iter().find_map(|(k, e)| {
                    let stripped = k
                        .strip_prefix("http://")
                        .or_else(|| k.strip_prefix("https://"))
                        .unwrap_or(k);
                    let host = stripped.split('/').next().unwrap_or(stripped);
                    (normalize_registry(host) == wanted).then(|| (k.clone(), e))
                })
            });
        let Some((key, entry)) = found else { continue };
        match decode_auth(registry, entry) {
            Some(creds) => {
                steps.push(Step::stored(format!("auths[{key:?}] in {}", path.display()), creds));
                break;
            }
            None => notes.push(format!(
                "auths[{key:?}] in {} holds no usable credentials (a helper marker, or an auth without ':'), so the next file is read",
                path.display()
            )),
        }
    }
    Resolution {
        tool: Tool::Containers,
        steps,
        notes,
    }
}

/// One remote of Incus's config.yml.
#[derive(Debug, Clone)]
struct IncusRemote {
    name: String,
    addr: String,
    protocol: String,
    helper: Option<String>,
    file: PathBuf,
}

fn incus_remotes(path: &Path, notes: &mut Vec<String>) -> Vec<IncusRemote> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(_) => return Vec::new(),
    };
    let doc: serde_yaml_ng::Value = match serde_yaml_ng::from_slice(&bytes) {
        Ok(d) => d,
        Err(_) => {
            notes.push(format!(
                "{} is not valid YAML; Incus refuses it",
                path.display()
            ));
            return Vec::new();
        }
    };
    let Some(remotes) = doc.get("remotes").and_then(|r| r.as_mapping()) else {
        return Vec::new();
    };
    remotes
        .iter()
        .filter_map(|(name, r)| {
            let text = |k: &str| r.get(k).and_then(|v| v.as_str()).map(str::to_string);
            Some(IncusRemote {
                name: name.as_str()?.to_string(),
                addr: text("addr").unwrap_or_default(),
                protocol: text("protocol").unwrap_or_else(|| "incus".to_string()),
                helper: text("credentials_helper").filter(|h| !h.is_empty()),
                file: path.to_path_buf(),
            })
        })
        .collect()
}

fn resolve_incus(reference: &Reference, env: &Env) -> Resolution {
    let mut notes = Vec::new();
    let mut remotes = incus_remotes(&env.incus_config(), &mut notes);
    for global in incus_remotes(&env.incus_global_config(), &mut notes) {
        if !remotes.iter().any(|r| r.name == global.name) {
            remotes.push(global);
        }
    }
    let mut steps = Vec::new();
    for remote in remotes {
        let Ok(url) = ServerUrl::parse(&remote.addr) else {
            continue;
        };
        if url.registry() != reference.registry || remote.protocol != "oci" {
            continue;
        }
        let why = format!(
            "remote {:?} ({}) in {}",
            remote.name,
            remote.addr,
            remote.file.display()
        );
        match remote.helper {
            Some(helper) => {
                note_missing(env, &helper, "Incus fails", &mut notes);
                steps.push(Step::helper(
                    format!("{why}, credentials_helper {helper:?}"),
                    helper,
                    url.registry(),
                    false,
                ));
            }
            None => notes.push(format!("{why} has no credentials_helper: anonymous")),
        }
    }
    if !steps.is_empty() {
        notes.push("Incus runs the helper as given (no docker-credential- prefix) on every image operation. It sends a <token> answer as a basic-auth username, and writes the percent-escaped userinfo into skopeo's auth file, so secrets with characters such as / : @ % fail (lxc/incus#3989); `docker-credential-incus exec` avoids both".to_string());
    }
    Resolution {
        tool: Tool::Incus,
        steps,
        notes,
    }
}

/// Notes a helper program the client would not find.
fn note_missing(env: &Env, program: &str, outcome: &str, notes: &mut Vec<String>) {
    let found = if program.contains('/') {
        Path::new(program).is_file()
    } else {
        env.find_program(program).is_some()
    };
    if !found {
        notes.push(format!("{program} is not on PATH; {outcome}"));
    }
}

/// Fetches the credential the way `resolution`'s client would.
fn fetch(
    resolution: &Resolution,
    reference: &Reference,
    env: &Env,
    timeout: Duration,
) -> Result<Credentials, ToolError> {
    let mut last_not_found = Vec::new();
    for step in &resolution.steps {
        let result = match &step.fetch {
            Some(Fetch::Static(creds)) => Ok((**creds).clone()),
            Some(Fetch::Helper { program, query }) => {
                let helper = find_exact(program, env)?.with_timeout(timeout);
                helper.get(query).map(|c| Credentials {
                    server_url: query.clone(),
                    ..c
                })
            }
            None => Err(StoreError::NotFound),
        };
        match result {
            Ok(creds) => return Ok(creds),
            Err(StoreError::NotFound) => {
                last_not_found.push(step.why.clone());
                if !step.falls_through {
                    break;
                }
            }
            Err(e) => return Err(ToolError::Failed(format!("{} ({})", e, step.why))),
        }
    }
    Err(ToolError::NotFound(if last_not_found.is_empty() {
        format!(
            "{} has no credential source for {}",
            resolution.tool.name(),
            reference.registry
        )
    } else {
        format!(
            "no credentials for {}: {} found nothing",
            reference.registry,
            last_not_found.join("; ")
        )
    }))
}

/// The program a client runs: a path, or the exact name on PATH (no prefix added).
fn find_exact(program: &str, env: &Env) -> Result<Helper, ToolError> {
    if program.contains('/') {
        return Ok(Helper::at(PathBuf::from(program)));
    }
    env.find_program(program)
        .map(Helper::at)
        .ok_or_else(|| ToolError::Failed(format!("{program} not found in PATH")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(input: &str) -> (String, Option<String>) {
        let r = parse_reference(input).unwrap();
        (r.registry, r.repository)
    }

    #[test]
    fn references_follow_docker_rules() {
        assert_eq!(
            r("alpine"),
            ("docker.io".into(), Some("library/alpine".into()))
        );
        assert_eq!(
            r("alpine:3.20"),
            ("docker.io".into(), Some("library/alpine".into()))
        );
        assert_eq!(
            r("org/app@sha256:ab"),
            ("docker.io".into(), Some("org/app".into()))
        );
        assert_eq!(
            r("index.docker.io/org/app"),
            ("docker.io".into(), Some("org/app".into()))
        );
        assert_eq!(
            r("docker://ghcr.io/o/a:1"),
            ("ghcr.io".into(), Some("o/a".into()))
        );
        assert_eq!(
            r("127.0.0.1:5000/dcih/hello:v1"),
            ("127.0.0.1:5000".into(), Some("dcih/hello".into()))
        );
        assert_eq!(r("localhost/x"), ("localhost".into(), Some("x".into())));
        assert_eq!(r("gcr.io"), ("gcr.io".into(), None));
        assert_eq!(r("https://gcr.io/"), ("gcr.io".into(), None));
        assert_eq!(r("https://index.docker.io/v1/"), ("docker.io".into(), None));
        assert_eq!(r("127.0.0.1:5000"), ("127.0.0.1:5000".into(), None));
        assert_eq!(r("myhost:5000/"), ("myhost:5000".into(), None));
    }

    #[test]
    fn containers_keys_go_from_repository_to_host() {
        let reference = parse_reference("q.io/a/b/img:1").unwrap();
        assert_eq!(
            auth_keys(&reference),
            ["q.io/a/b/img", "q.io/a/b", "q.io/a", "q.io"]
        );
    }

    #[test]
    fn auth_entries_need_a_colon() {
        assert!(decode_auth("h", &serde_json::json!({})).is_none());
        assert!(decode_auth("h", &serde_json::json!({"auth": "dXNlcg=="})).is_none());
        let c = decode_auth("h", &serde_json::json!({"auth": "dTpw"})).unwrap();
        assert_eq!(
            (c.username.as_str(), c.secret.expose().as_str()),
            ("u", "p")
        );
        let c = decode_auth(
            "h",
            &serde_json::json!({"auth": "dTo=", "identitytoken": "rt"}),
        )
        .unwrap();
        assert_eq!(c.username, TOKEN_USERNAME);
        assert!(decode_auth("h", &serde_json::json!({"identitytoken": "rt"})).is_none());
    }
}
