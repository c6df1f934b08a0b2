//! Client tooling for shell pipelines and for consumers such as skopeo and
//! Incus: run a helper (`client`), say which source a config selects
//! (`resolve`), write a containers auth file (`authfile`), build userinfo URLs
//! (`url`), run a command with temporary credentials (`exec`), point clients
//! at this helper (`configure`) and move credentials into the keyring
//! (`import`).
//!
//! Every command reaches other helpers through [`Helper`], the helper-as-a-
//! `Store`, and reaches our own credentials through
//! [`crate::store::protocol_store`], so they see exactly what the protocol
//! verbs see. Secrets arrive on stdin or from a helper, never through argv.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::protocol::Credentials;
use crate::registry::{DOCKER_HUB_LEGACY_URL, ServerUrl};
use crate::store::helper::Helper;
use crate::store::{Store, StoreError};

pub mod authfile;
pub mod client;
pub mod configure;
pub mod exec;
pub mod import;
pub mod resolve;
pub mod url;

/// The streams a tooling command reads and writes.
pub struct Streams<'a> {
    /// Where secrets and requests come in.
    pub stdin: &'a mut dyn Read,
    /// Answers.
    pub stdout: &'a mut dyn Write,
    /// Diagnostics and errors.
    pub stderr: &'a mut dyn Write,
}

/// Why a tooling command failed. The variant sets the exit code; the message
/// says what happened and what to do, and never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Nothing was found (exit 1).
    #[error("{0}")]
    NotFound(String),
    /// The command line or the input cannot work (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A helper, a store or a file failed (exit 2).
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    /// The exit code of the tooling conventions: 1 nothing found, 2 error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ToolError::NotFound(_) => 1,
            ToolError::Usage(_) | ToolError::Failed(_) => 2,
        }
    }
}

/// Prints the error of `command` on stderr, if any, and maps it to an exit code.
pub fn finish(command: &str, result: Result<(), ToolError>, stderr: &mut dyn Write) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(stderr, "docker-credential-incus {command}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// A snapshot of the environment variables the tooling reads, so that the
/// rules can be tested against fixtures without touching the process.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, OsString>,
    uid: u32,
}

impl Env {
    /// The environment of this process.
    pub fn process() -> Env {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| k.into_string().ok().map(|k| (k, v)))
                .collect(),
            uid: current_uid(),
        }
    }

    /// An environment made of `pairs` (for tests).
    pub fn from_pairs(pairs: &[(&str, &str)], uid: u32) -> Env {
        Env {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), OsString::from(v)))
                .collect(),
            uid,
        }
    }

    /// A variable, if set and not empty (Go code treats empty as unset).
    pub fn var(&self, name: &str) -> Option<&OsString> {
        self.vars.get(name).filter(|v| !v.is_empty())
    }

    /// A variable as a path, if set and not empty.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.var(name).map(PathBuf::from)
    }

    /// The user's numeric id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// `$HOME`, as Go's `os.UserHomeDir` and Incus read it.
    pub fn home(&self) -> PathBuf {
        self.path("HOME").unwrap_or_else(|| PathBuf::from("/"))
    }

    /// docker's config.json: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    pub fn docker_config(&self) -> PathBuf {
        self.path("DOCKER_CONFIG")
            .unwrap_or_else(|| self.home().join(".docker"))
            .join("config.json")
    }

    /// The containers auth file that `podman login` writes, and whether the
    /// user named it (`REGISTRY_AUTH_FILE`), which makes it the only file read.
    pub fn containers_primary(&self) -> (PathBuf, bool) {
        if let Some(path) = self.path("REGISTRY_AUTH_FILE") {
            return (path, true);
        }
        let path = match self.path("XDG_RUNTIME_DIR") {
            Some(dir) => dir.join("containers/auth.json"),
            None => PathBuf::from(format!("/run/containers/{}/auth.json", self.uid)),
        };
        (path, false)
    }

    /// `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`.
    pub fn containers_config(&self) -> PathBuf {
        self.path("XDG_CONFIG_HOME")
            .unwrap_or_else(|| self.home().join(".config"))
            .join("containers/auth.json")
    }

    /// Incus's client config: `$INCUS_CONF/config.yml` or `~/.config/incus/config.yml`.
    pub fn incus_config(&self) -> PathBuf {
        self.path("INCUS_CONF")
            .unwrap_or_else(|| self.home().join(".config/incus"))
            .join("config.yml")
    }

    /// Incus's system-wide remotes: `$INCUS_GLOBAL_CONF/config.yml` or `/etc/incus/config.yml`.
    pub fn incus_global_config(&self) -> PathBuf {
        self.path("INCUS_GLOBAL_CONF")
            .unwrap_or_else(|| PathBuf::from("/etc/incus"))
            .join("config.yml")
    }

    /// Looks `program` up on this environment's PATH.
    pub fn find_program(&self, program: &str) -> Option<PathBuf> {
        crate::store::helper::find_program(self.var("PATH")?.as_ref(), program)
    }
}

fn current_uid() -> u32 {
    crate::process::current_uid().unwrap_or(0)
}

/// Where a registry's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Another `docker-credential-*` program (name or path).
    Helper(String),
    /// The store the protocol verbs use (routes, else the keyring).
    Route,
}

impl Source {
    /// From `--helper` / `--route`; `None` when neither was given.
    pub fn from_flags(helper: Option<&str>, route: bool) -> Result<Option<Source>, ToolError> {
        match (helper, route) {
            (Some(_), true) => Err(ToolError::Usage(
                "give either --helper or --route, not both".to_string(),
            )),
            (Some(h), false) => Ok(Some(Source::Helper(h.to_string()))),
            (None, true) => Ok(Some(Source::Route)),
            (None, false) => Ok(None),
        }
    }

    /// Opens the source.
    pub fn open(&self, timeout: Duration) -> Result<Box<dyn Store>, ToolError> {
        match self {
            Source::Helper(name) => Helper::resolve(name)
                .map(|h| Box::new(h.with_timeout(timeout)) as Box<dyn Store>)
                .map_err(|e| ToolError::Failed(e.to_string())),
            Source::Route => {
                crate::store::protocol_store().map_err(|e| ToolError::Failed(e.to_string()))
            }
        }
    }

    /// How messages name the source.
    pub fn describe(&self) -> String {
        match self {
            Source::Helper(name) if name.contains('/') => name.clone(),
            Source::Helper(name) if name.starts_with(crate::store::helper::HELPER_PREFIX) => {
                name.clone()
            }
            Source::Helper(name) => format!("{}{name}", crate::store::helper::HELPER_PREFIX),
            Source::Route => "the docker-credential-incus store".to_string(),
        }
    }
}

/// One `--registry` argument: `REGISTRY` or `REGISTRY=HELPER`.
#[derive(Debug, Clone)]
pub struct RegistrySpec {
    /// The registry, as parsed.
    pub url: ServerUrl,
    /// Its source.
    pub source: Source,
}

/// Parses `--registry` arguments; `default` applies to those without `=HELPER`.
pub fn parse_registry_specs(
    specs: &[String],
    default: Option<&Source>,
) -> Result<Vec<RegistrySpec>, ToolError> {
    if specs.is_empty() {
        return Err(ToolError::Usage("name at least one --registry".to_string()));
    }
    specs
        .iter()
        .map(|spec| {
            let (registry, source) = match spec.split_once('=') {
                Some((r, h)) if !h.is_empty() => (r, Source::Helper(h.to_string())),
                Some((r, _)) => {
                    return Err(ToolError::Usage(format!(
                        "--registry {r}= names no helper; write REGISTRY=HELPER"
                    )));
                }
                None => match default {
                    Some(s) => (spec.as_str(), s.clone()),
                    None => {
                        return Err(ToolError::Usage(format!(
                            "no source for {spec}: give --helper HELPER, --route, or --registry {spec}=HELPER"
                        )));
                    }
                },
            };
            let url = ServerUrl::parse(registry)
                .map_err(|e| ToolError::Usage(format!("--registry {registry}: {e}")))?;
            Ok(RegistrySpec { url, source })
        })
        .collect()
}

/// The server URLs to ask a helper for a registry, in order. Helpers are
/// asked for the registry host alone (B11), as skopeo and Incus do; for Docker
/// Hub the docker CLI's key comes first, because `docker login` stores there.
pub fn helper_queries(url: &ServerUrl) -> Vec<String> {
    if url.is_docker_hub() {
        vec![DOCKER_HUB_LEGACY_URL.to_string(), url.registry()]
    } else {
        vec![url.registry()]
    }
}

/// Fetches the credential for `spec` from `store`.
pub fn fetch(store: &dyn Store, spec: &RegistrySpec) -> Result<Credentials, ToolError> {
    let queries = match spec.source {
        Source::Helper(_) => helper_queries(&spec.url),
        // Our own store canonicalises every spelling, and honours path keys.
        Source::Route => vec![spec.url.key()],
    };
    for query in &queries {
        match store.get(query) {
            Ok(creds) => return Ok(creds),
            Err(StoreError::NotFound) => continue,
            Err(e) => return Err(ToolError::Failed(e.to_string())),
        }
    }
    Err(ToolError::NotFound(format!(
        "{} has no credentials for {}",
        spec.source.describe(),
        spec.url.key()
    )))
}

/// Fetches every registry's credential, opening each source once. All or
/// nothing: callers write nothing unless every registry answered.
pub fn fetch_all(
    specs: &[RegistrySpec],
    timeout: Duration,
) -> Result<Vec<(ServerUrl, Credentials)>, ToolError> {
    let mut opened: Vec<(Source, Box<dyn Store>)> = Vec::new();
    let mut out = Vec::new();
    for spec in specs {
        let index = match opened.iter().position(|(s, _)| *s == spec.source) {
            Some(i) => i,
            None => {
                opened.push((spec.source.clone(), spec.source.open(timeout)?));
                opened.len() - 1
            }
        };
        let creds = fetch(opened[index].1.as_ref(), spec)?;
        out.push((spec.url.clone(), creds));
    }
    Ok(out)
}

/// docker's `ConvertToHostname`: the scheme and any path dropped, as docker
/// reads legacy `auths` keys such as `https://host/v1/`.
pub fn convert_to_hostname(key: &str) -> &str {
    let rest = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// Layout of a JSON file, kept so that an edit changes only what it edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStyle {
    /// One indent step; `None` for compact JSON on one line.
    pub indent: Option<Vec<u8>>,
    /// Whether the file ends with a newline.
    pub trailing_newline: bool,
}

impl JsonStyle {
    /// What docker, podman and skopeo write (Go's `MarshalIndent(v, "", "\t")`),
    /// plus a final newline.
    pub fn tabs() -> JsonStyle {
        JsonStyle {
            indent: Some(b"\t".to_vec()),
            trailing_newline: true,
        }
    }

    /// Guesses the layout of existing JSON text from its first indented line.
    pub fn detect(text: &[u8]) -> JsonStyle {
        let trimmed_end = text.trim_ascii_end();
        let inner = match trimmed_end.iter().position(|b| *b == b'\n') {
            Some(at) => &trimmed_end[at + 1..],
            None => {
                return JsonStyle {
                    indent: None,
                    trailing_newline: text.ends_with(b"\n"),
                };
            }
        };
        let indent: Vec<u8> = inner
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .copied()
            .collect();
        JsonStyle {
            indent: if indent.is_empty() {
                Some(b"\t".to_vec())
            } else {
                Some(indent)
            },
            trailing_newline: text.ends_with(b"\n"),
        }
    }
}

/// A JSON object read from a file, with its layout.
#[derive(Debug, Clone)]
pub struct JsonDoc {
    /// The top-level object, in file order.
    pub root: Map<String, Value>,
    /// The layout to write it back in.
    pub style: JsonStyle,
    /// The bytes as read, for the backup; `None` if the file did not exist.
    pub original: Option<Vec<u8>>,
}

impl JsonDoc {
    /// Reads `path`; a missing or empty file is an empty object.
    pub fn read(path: &Path) -> Result<JsonDoc, ToolError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(JsonDoc {
                    root: Map::new(),
                    style: JsonStyle::tabs(),
                    original: None,
                });
            }
            Err(e) => {
                return Err(ToolError::Failed(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        if bytes.trim_ascii().is_empty() {
            return Ok(JsonDoc {
                root: Map::new(),
                style: JsonStyle::tabs(),
                original: Some(bytes),
            });
        }
        let root = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(ToolError::Failed(format!(
                    "{} does not hold a JSON object; fix or move it, nothing was changed",
                    path.display()
                )));
            }
            // serde's message quotes no values for syntax errors, but say only where.
            Err(e) => {
                return Err(ToolError::Failed(format!(
                    "{} is not valid JSON (line {} column {}); fix or move it, nothing was changed",
                    path.display(),
                    e.line(),
                    e.column()
                )));
            }
        };
        Ok(JsonDoc {
            root,
            style: JsonStyle::detect(&bytes),
            original: Some(bytes),
        })
    }

    /// The document in its own layout.
    pub fn render(&self) -> Vec<u8> {
        render_json(&Value::Object(self.root.clone()), &self.style)
    }
}

/// Serialises `value` in `style`.
pub fn render_json(value: &Value, style: &JsonStyle) -> Vec<u8> {
    let mut buf = Vec::new();
    // Serialising a Value into a Vec cannot fail.
    let _ = match &style.indent {
        Some(indent) => {
            let formatter = serde_json::ser::PrettyFormatter::with_indent(indent);
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
            serde::Serialize::serialize(value, &mut ser)
        }
        None => serde_json::to_writer(&mut buf, value),
    };
    if style.trailing_newline {
        buf.push(b'\n');
    }
    buf
}

/// The object under `key`, created if absent. An existing non-object value
/// is an error, so that nothing the user wrote is silently replaced.
pub fn object_mut<'a>(
    root: &'a mut Map<String, Value>,
    key: &str,
    path: &Path,
) -> Result<&'a mut Map<String, Value>, ToolError> {
    let slot = root
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().ok_or_else(|| {
        ToolError::Failed(format!(
            "\"{key}\" in {} is not a JSON object; fix it by hand, nothing was changed",
            path.display()
        ))
    })
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder,
/// set to `mode` whatever the umask, synced, then renamed over `path`. A
/// symlink at `path` is followed, so the link survives. Missing folders are
/// created 0700.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ToolError> {
    let fail = |what: &str, e: std::io::Error| {
        ToolError::Failed(format!("cannot {what} {}: {e}", path.display()))
    };
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| fail("follow the link", e))?
        }
        _ => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        create_private_dir_all(&dir).map_err(|e| fail("create the folder of", e))?;
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| fail("create a temporary file next to", e))?;
    set_mode(tmp.as_file(), mode).map_err(|e| fail("set the mode of a temporary file for", e))?;
    tmp.write_all(bytes).map_err(|e| fail("write", e))?;
    tmp.as_file().sync_all().map_err(|e| fail("sync", e))?;
    tmp.persist(&target).map_err(|e| fail("replace", e.error))?;
    Ok(())
}

fn set_mode(file: &std::fs::File, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // fchmod is not subject to the umask, unlike the mode given to open.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The backup file of `path`: `<path>.docker-credential-incus.bak`.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".docker-credential-incus.bak");
    PathBuf::from(name)
}

/// Saves `original` (the file's bytes before an edit) as its 0600 backup.
pub fn write_backup(path: &Path, original: &[u8]) -> Result<PathBuf, ToolError> {
    let backup = backup_path(path);
    write_atomic(&backup, original, 0o600)?;
    Ok(backup)
}

/// The mode to keep for an existing file, or `default` for a new one.
pub fn existing_mode(path: &Path, default: u32) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).map_or(default, |m| m.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        default
    }
}

/// Reads a secret from stdin: the bytes as given, less one trailing `\n` or
/// `\r\n` (what `echo` and here-strings add), as `docker login --password-stdin` does.
pub fn read_secret(stdin: &mut dyn Read) -> Result<crate::secret::Secret<String>, ToolError> {
    let bytes =
        crate::protocol::read_request(stdin).map_err(|e| ToolError::Usage(e.to_string()))?;
    let mut text = String::from_utf8(bytes)
        .map_err(|_| ToolError::Usage("the secret on stdin is not valid UTF-8".to_string()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(crate::secret::Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_style_is_detected_and_kept() {
        let docker = b"{\n\t\"auths\": {\n\t\t\"h\": {}\n\t}\n}";
        let doc_style = JsonStyle::detect(docker);
        assert_eq!(doc_style.indent.as_deref(), Some(&b"\t"[..]));
        assert!(!doc_style.trailing_newline);
        let value: Value = serde_json::from_slice(docker).unwrap();
        assert_eq!(render_json(&value, &doc_style), docker);

        let spaces = b"{\n  \"b\": 1,\n  \"a\": [\n    \"x\"\n  ]\n}\n";
        let style = JsonStyle::detect(spaces);
        let value: Value = serde_json::from_slice(spaces).unwrap();
        assert_eq!(render_json(&value, &style), spaces);

        let compact = br#"{"b":{"c":"d"},"a":1}"#;
        let style = JsonStyle::detect(compact);
        let value: Value = serde_json::from_slice(compact).unwrap();
        assert_eq!(render_json(&value, &style), compact);
    }

    #[test]
    fn registry_specs_take_a_default_or_their_own_helper() {
        let specs = parse_registry_specs(
            &[
                "gcr.io".to_string(),
                "https://q.example.test/=/opt/h=x".to_string(),
            ],
            Some(&Source::Route),
        )
        .unwrap();
        assert_eq!(specs[0].source, Source::Route);
        assert_eq!(specs[0].url.key(), "gcr.io");
        assert_eq!(specs[1].source, Source::Helper("/opt/h=x".to_string()));
        assert_eq!(specs[1].url.key(), "q.example.test");
        assert!(matches!(
            parse_registry_specs(&["gcr.io".to_string()], None),
            Err(ToolError::Usage(_))
        ));
    }

    #[test]
    fn helpers_are_asked_for_the_host_and_hub_by_the_docker_key() {
        let url = ServerUrl::parse("https://r.example.test:5000/team/app").unwrap();
        assert_eq!(helper_queries(&url), ["r.example.test:5000"]);
        let hub = ServerUrl::parse("docker.io").unwrap();
        assert_eq!(
            helper_queries(&hub),
            ["https://index.docker.io/v1/", "docker.io"]
        );
    }

    #[test]
    fn env_paths_follow_each_tool() {
        let env = Env::from_pairs(&[("HOME", "/h")], 1000);
        assert_eq!(env.docker_config(), PathBuf::from("/h/.docker/config.json"));
        assert_eq!(
            env.containers_primary(),
            (PathBuf::from("/run/containers/1000/auth.json"), false)
        );
        assert_eq!(
            env.containers_config(),
            PathBuf::from("/h/.config/containers/auth.json")
        );
        assert_eq!(
            env.incus_config(),
            PathBuf::from("/h/.config/incus/config.yml")
        );
        let env = Env::from_pairs(
            &[
                ("HOME", "/h"),
                ("DOCKER_CONFIG", "/d"),
                ("XDG_RUNTIME_DIR", "/run/user/7"),
                ("XDG_CONFIG_HOME", "/x"),
                ("INCUS_CONF", "/i"),
            ],
            7,
        );
        assert_eq!(env.docker_config(), PathBuf::from("/d/config.json"));
        assert_eq!(
            env.containers_primary(),
            (PathBuf::from("/run/user/7/containers/auth.json"), false)
        );
        assert_eq!(
            env.containers_config(),
            PathBuf::from("/x/containers/auth.json")
        );
        assert_eq!(env.incus_config(), PathBuf::from("/i/config.yml"));
        let env = Env::from_pairs(&[("REGISTRY_AUTH_FILE", "/a.json")], 0);
        assert_eq!(env.containers_primary(), (PathBuf::from("/a.json"), true));
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_sets_the_mode_and_follows_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, b"old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new", 0o600).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        assert_eq!(
            std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let nested = dir.path().join("a/b/c.json");
        write_atomic(&nested, b"x", 0o600).unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join("a"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }

    #[test]
    fn secret_on_stdin_loses_one_newline_only() {
        let s = read_secret(&mut &b"  pw \n\n"[..]).unwrap();
        assert_eq!(s.expose(), "  pw \n");
        let s = read_secret(&mut &b"pw\r\n"[..]).unwrap();
        assert_eq!(s.expose(), "pw");
    }
}
