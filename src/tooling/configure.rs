//! `configure docker|containers|incus`: point a client at this helper.
//!
//! - docker config.json: `credsStore` (every registry) or `credHelpers` per
//!   registry, keyed as docker keys them (Hub: `https://index.docker.io/v1/`).
//! - containers auth.json: `credHelpers` per registry (containers tools ignore
//!   `credsStore`), keyed `host[:port]`, Hub `docker.io`.
//! - Incus config.yml: `credentials_helper` of an OCI remote.
//!
//! Every other setting stays where it was (JSON key order and layout are
//! kept), the file is written atomically after a 0600 backup of what it held,
//! another helper is replaced only with `--force`, and `--undo` puts back
//! what the backup held for the keys we set, or removes them.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

use super::{Env, JsonDoc, Streams, ToolError};
use crate::registry::{DOCKER_HUB_LEGACY_URL, ServerUrl};

/// The name docker and containers tools complete to `docker-credential-incus`.
pub const SHORT_NAME: &str = "incus";
/// The program name Incus runs as given.
pub const PROGRAM_NAME: &str = "docker-credential-incus";

/// Which client to configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// docker's config.json (credsStore, or credHelpers with --registry).
    Docker,
    /// containers auth.json for skopeo, podman, buildah (credHelpers).
    Containers,
    /// An OCI remote in Incus's config.yml (credentials_helper).
    Incus,
}

/// Arguments of `configure`.
#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// The client to configure.
    #[arg(value_enum, value_name = "CLIENT")]
    pub target: Target,
    /// For incus: the OCI remote's name.
    #[arg(value_name = "REMOTE")]
    pub remote: Option<String>,
    /// A registry to route to this helper (credHelpers). docker without it sets credsStore.
    #[arg(long = "registry", value_name = "REGISTRY")]
    pub registries: Vec<String>,
    /// The file to edit instead of the client's default.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Replace a setting that names another helper.
    #[arg(long)]
    pub force: bool,
    /// Revert: put back what the backup held for our settings, or remove them.
    #[arg(long)]
    pub undo: bool,
    /// The helper value to write (default: incus for docker and containers,
    /// docker-credential-incus for Incus, which runs it as given).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// Runs `configure`.
pub fn run(args: ConfigureArgs, io: &mut Streams) -> Result<(), ToolError> {
    let env = Env::process();
    match args.target {
        Target::Docker | Target::Containers => {
            if args.remote.is_some() {
                return Err(ToolError::Usage(
                    "REMOTE applies to incus only; use --registry".to_string(),
                ));
            }
            let path = args.file.clone().unwrap_or_else(|| match args.target {
                Target::Docker => env.docker_config(),
                _ => containers_file(&env),
            });
            configure_json(&args, &path, io.stderr)
        }
        Target::Incus => {
            if !args.registries.is_empty() {
                return Err(ToolError::Usage(
                    "incus takes a REMOTE name, not --registry".to_string(),
                ));
            }
            let remote = args.remote.clone().ok_or_else(|| {
                ToolError::Usage("name the Incus OCI remote: configure incus REMOTE".to_string())
            })?;
            let path = args.file.clone().unwrap_or_else(|| env.incus_config());
            configure_incus(&args, &remote, &path, io.stderr)
        }
    }
}

/// The containers auth.json to configure: `REGISTRY_AUTH_FILE` when set
/// (then the only file read), else the persistent
/// `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json` (the runtime one is
/// lost at logout).
pub fn containers_file(env: &Env) -> PathBuf {
    match env.containers_primary() {
        (path, true) => path,
        _ => env.containers_config(),
    }
}

/// The key a client's `credHelpers` uses for a registry.
pub fn helper_key(target: Target, registry: &str) -> Result<String, ToolError> {
    let url = ServerUrl::parse(registry)
        .map_err(|e| ToolError::Usage(format!("--registry {registry}: {e}")))?;
    if !url.path().is_empty() {
        return Err(ToolError::Usage(format!(
            "--registry {registry}: credHelpers match a registry host only, not a path (B11)"
        )));
    }
    Ok(match target {
        Target::Docker if url.is_docker_hub() => DOCKER_HUB_LEGACY_URL.to_string(),
        _ => url.registry(),
    })
}

/// A planned edit of one setting: where, what was there, what goes there.
#[derive(Debug, PartialEq, Eq)]
struct Change {
    what: String,
    before: Option<String>,
    after: Option<String>,
}

fn configure_json(
    args: &ConfigureArgs,
    path: &Path,
    stderr: &mut dyn Write,
) -> Result<(), ToolError> {
    let ours = args.name.clone().unwrap_or_else(|| SHORT_NAME.to_string());
    let mut doc = JsonDoc::read(path)?;
    let keys: Vec<String> = args
        .registries
        .iter()
        .map(|r| helper_key(args.target, r))
        .collect::<Result<_, _>>()?;
    if args.target == Target::Containers && keys.is_empty() && !args.undo {
        return Err(ToolError::Usage(
            "containers tools ignore credsStore; name each registry with --registry".to_string(),
        ));
    }
    let changes = if args.undo {
        let backup = read_backup_json(path);
        undo_json(&mut doc.root, &keys, &ours, backup.as_ref())?
    } else {
        apply_json(&mut doc.root, &keys, &ours, args.force, path)?
    };
    if changes.is_empty() {
        let _ = writeln!(stderr, "{}: nothing to change", path.display());
        return Ok(());
    }
    let bytes = doc.render();
    commit(path, doc.original.as_deref(), &bytes, 0o600)?;
    report(stderr, path, &changes, doc.original.is_some());
    Ok(())
}

/// Sets `credsStore` (no keys) or `credHelpers[key]` to `ours`.
fn apply_json(
    root: &mut Map<String, Value>,
    keys: &[String],
    ours: &str,
    force: bool,
    path: &Path,
) -> Result<Vec<Change>, ToolError> {
    let mut changes = Vec::new();
    if keys.is_empty() {
        let current = root
            .get("credsStore")
            .and_then(Value::as_str)
            .map(str::to_string);
        check_replace("credsStore", current.as_deref(), ours, force, path)?;
        if current.as_deref() != Some(ours) {
            root.insert("credsStore".to_string(), Value::String(ours.to_string()));
            changes.push(Change {
                what: "credsStore".to_string(),
                before: current,
                after: Some(ours.to_string()),
            });
        }
        return Ok(changes);
    }
    // Check every key before changing any, so a refusal changes nothing.
    let current: Vec<Option<String>> = {
        let helpers = root.get("credHelpers").and_then(Value::as_object);
        keys.iter()
            .map(|k| {
                helpers
                    .and_then(|h| h.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    };
    for (key, value) in keys.iter().zip(&current) {
        check_replace(
            &format!("credHelpers[{key:?}]"),
            value.as_deref(),
            ours,
            force,
            path,
        )?;
    }
    let helpers = super::object_mut(root, "credHelpers", path)?;
    for (key, before) in keys.iter().zip(current) {
        if before.as_deref() != Some(ours) {
            helpers.insert(key.clone(), Value::String(ours.to_string()));
            changes.push(Change {
                what: format!("credHelpers[{key:?}]"),
                before,
                after: Some(ours.to_string()),
            });
        }
    }
    Ok(changes)
}

/// Puts back what `backup` held for each of our settings, or removes them.
/// Without keys, every setting that names us is reverted.
fn undo_json(
    root: &mut Map<String, Value>,
    keys: &[String],
    ours: &str,
    backup: Option<&Map<String, Value>>,
) -> Result<Vec<Change>, ToolError> {
    let mut changes = Vec::new();
    let backup_value = |section: Option<&str>, key: &str| -> Option<String> {
        let map = match section {
            Some(s) => backup?.get(s)?.as_object()?,
            None => backup?,
        };
        map.get(key)
            .and_then(Value::as_str)
            .filter(|v| *v != ours)
            .map(str::to_string)
    };
    if keys.is_empty() && root.get("credsStore").and_then(Value::as_str) == Some(ours) {
        let before = backup_value(None, "credsStore");
        match &before {
            Some(v) => {
                root.insert("credsStore".to_string(), Value::String(v.clone()));
            }
            None => {
                root.shift_remove("credsStore");
            }
        }
        changes.push(Change {
            what: "credsStore".to_string(),
            before: Some(ours.to_string()),
            after: before,
        });
    }
    // An empty map is removed unless the file had it empty before us.
    let backup_had_empty_helpers = backup
        .and_then(|b| b.get("credHelpers"))
        .and_then(Value::as_object)
        .is_some_and(|h| h.is_empty());
    if let Some(helpers) = root.get_mut("credHelpers").and_then(Value::as_object_mut) {
        let targets: Vec<String> = if keys.is_empty() {
            helpers
                .iter()
                .filter(|(_, v)| v.as_str() == Some(ours))
                .map(|(k, _)| k.clone())
                .collect()
        } else {
            keys.iter()
                .filter(|k| helpers.get(*k).and_then(Value::as_str) == Some(ours))
                .cloned()
                .collect()
        };
        for key in targets {
            let before = backup_value(Some("credHelpers"), &key);
            match &before {
                Some(v) => {
                    helpers.insert(key.clone(), Value::String(v.clone()));
                }
                None => {
                    helpers.shift_remove(&key);
                }
            }
            changes.push(Change {
                what: format!("credHelpers[{key:?}]"),
                before: Some(ours.to_string()),
                after: before,
            });
        }
        if helpers.is_empty() && !backup_had_empty_helpers && !changes.is_empty() {
            root.shift_remove("credHelpers");
        }
    }
    Ok(changes)
}

fn check_replace(
    what: &str,
    current: Option<&str>,
    ours: &str,
    force: bool,
    path: &Path,
) -> Result<(), ToolError> {
    match current {
        Some(other) if !other.is_empty() && other != ours && !force => {
            Err(ToolError::Usage(format!(
                "{what} in {} names another helper ({other:?}); nothing was changed. Use --force to replace it (`import --from {other}` copies its credentials first)",
                path.display()
            )))
        }
        _ => Ok(()),
    }
}

fn read_backup_json(path: &Path) -> Option<Map<String, Value>> {
    let bytes = std::fs::read(super::backup_path(path)).ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Backs up `original` (if the file existed), then writes `bytes` atomically,
/// keeping the file's mode (`new_mode` for a new file).
fn commit(
    path: &Path,
    original: Option<&[u8]>,
    bytes: &[u8],
    new_mode: u32,
) -> Result<(), ToolError> {
    let mode = super::existing_mode(path, new_mode);
    if let Some(original) = original {
        super::write_backup(path, original)?;
    }
    super::write_atomic(path, bytes, mode)
}

fn report(stderr: &mut dyn Write, path: &Path, changes: &[Change], backed_up: bool) {
    for c in changes {
        let show = |v: &Option<String>| {
            v.as_ref()
                .map_or("(unset)".to_string(), |v| format!("{v:?}"))
        };
        let _ = writeln!(
            stderr,
            "{}: {} {} -> {}",
            path.display(),
            c.what,
            show(&c.before),
            show(&c.after)
        );
    }
    if backed_up {
        let _ = writeln!(
            stderr,
            "backup of the previous file: {}",
            super::backup_path(path).display()
        );
    }
}

fn configure_incus(
    args: &ConfigureArgs,
    remote: &str,
    path: &Path,
    stderr: &mut dyn Write,
) -> Result<(), ToolError> {
    let ours = args
        .name
        .clone()
        .unwrap_or_else(|| PROGRAM_NAME.to_string());
    let original = std::fs::read(path).map_err(|e| {
        ToolError::Failed(format!(
            "cannot read {}: {e} (add the remote first: incus remote add {remote} https://HOST --protocol=oci)",
            path.display()
        ))
    })?;
    let mut doc: Yaml = serde_yaml_ng::from_slice(&original).map_err(|e| {
        ToolError::Failed(format!(
            "{} is not valid YAML ({}); nothing was changed",
            path.display(),
            e.location()
                .map_or("unknown place".to_string(), |l| format!(
                    "line {} column {}",
                    l.line(),
                    l.column()
                ))
        ))
    })?;
    let backup: Option<Yaml> = std::fs::read(super::backup_path(path))
        .ok()
        .and_then(|b| serde_yaml_ng::from_slice(&b).ok());
    let change = edit_incus(
        &mut doc,
        remote,
        &ours,
        args.force,
        args.undo,
        backup.as_ref(),
        path,
    )?;
    let Some(change) = change else {
        let _ = writeln!(stderr, "{}: nothing to change", path.display());
        return Ok(());
    };
    let bytes = serde_yaml_ng::to_string(&doc)
        .map_err(|e| ToolError::Failed(format!("cannot write YAML: {e}")))?;
    commit(path, Some(&original), bytes.as_bytes(), 0o600)?;
    report(stderr, path, &[change], true);
    Ok(())
}

/// Sets or reverts `remotes.<remote>.credentials_helper`.
fn edit_incus(
    doc: &mut Yaml,
    remote: &str,
    ours: &str,
    force: bool,
    undo: bool,
    backup: Option<&Yaml>,
    path: &Path,
) -> Result<Option<Change>, ToolError> {
    const KEY: &str = "credentials_helper";
    let what = format!("remotes.{remote}.{KEY}");
    let entry = doc
        .get_mut("remotes")
        .and_then(|r| r.get_mut(remote))
        .and_then(Yaml::as_mapping_mut)
        .ok_or_else(|| {
            ToolError::Usage(format!(
                "no remote {remote:?} in {}; add it first: incus remote add {remote} https://HOST --protocol=oci",
                path.display()
            ))
        })?;
    let protocol = entry
        .get("protocol")
        .and_then(Yaml::as_str)
        .unwrap_or("incus");
    if protocol != "oci" && !undo {
        return Err(ToolError::Usage(format!(
            "remote {remote:?} uses protocol {protocol:?}; Incus runs credentials_helper only for oci remotes"
        )));
    }
    let current = entry.get(KEY).and_then(Yaml::as_str).map(str::to_string);
    let is_ours =
        |v: &str| v == ours || Path::new(v).file_name().is_some_and(|n| n == PROGRAM_NAME);
    if undo {
        if !current.as_deref().is_some_and(is_ours) {
            return Ok(None);
        }
        let before = backup
            .and_then(|b| b.get("remotes"))
            .and_then(|r| r.get(remote))
            .and_then(|r| r.get(KEY))
            .and_then(Yaml::as_str)
            .filter(|v| !is_ours(v))
            .map(str::to_string);
        match &before {
            Some(v) => {
                entry.insert(Yaml::from(KEY), Yaml::from(v.clone()));
            }
            None => {
                entry.shift_remove(KEY);
            }
        }
        return Ok(Some(Change {
            what,
            before: current,
            after: before,
        }));
    }
    if current.as_deref() == Some(ours) {
        return Ok(None);
    }
    check_replace(&what, current.as_deref(), ours, force, path)?;
    entry.insert(Yaml::from(KEY), Yaml::from(ours.to_string()));
    Ok(Some(Change {
        what,
        before: current,
        after: Some(ours.to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Map<String, Value> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn docker_keys_hub_by_its_v1_url_and_containers_by_docker_io() {
        assert_eq!(
            helper_key(Target::Docker, "docker.io").unwrap(),
            DOCKER_HUB_LEGACY_URL
        );
        assert_eq!(
            helper_key(Target::Containers, "https://index.docker.io/v1/").unwrap(),
            "docker.io"
        );
        assert_eq!(
            helper_key(Target::Docker, "https://R.example.test:5000/").unwrap(),
            "r.example.test:5000"
        );
        assert!(helper_key(Target::Docker, "r.example.test/team").is_err());
    }

    #[test]
    fn another_helper_is_kept_without_force() {
        let mut root = json(r#"{"credsStore":"pass"}"#);
        assert!(apply_json(&mut root, &[], "incus", false, Path::new("c")).is_err());
        assert_eq!(root, json(r#"{"credsStore":"pass"}"#));
        let mut root = json(r#"{"credHelpers":{"a":"incus","b":"gcloud"}}"#);
        let keys = ["a".to_string(), "b".to_string(), "c".to_string()];
        assert!(apply_json(&mut root, &keys, "incus", false, Path::new("c")).is_err());
        assert_eq!(root, json(r#"{"credHelpers":{"a":"incus","b":"gcloud"}}"#));
        let changes = apply_json(&mut root, &keys, "incus", true, Path::new("c")).unwrap();
        assert_eq!(changes.len(), 2);
    }

    #[test]
    fn undo_restores_what_the_backup_held_in_place() {
        let backup = json(r#"{"a":1,"credsStore":"pass","credHelpers":{"x":"gcloud"}}"#);
        let mut root =
            json(r#"{"a":1,"credsStore":"incus","credHelpers":{"x":"incus","y":"incus"},"z":2}"#);
        undo_json(&mut root, &[], "incus", Some(&backup)).unwrap();
        assert_eq!(
            serde_json::to_string(&root).unwrap(),
            r#"{"a":1,"credsStore":"pass","credHelpers":{"x":"gcloud"},"z":2}"#
        );
    }

    #[test]
    fn incus_remote_gets_the_program_name() {
        let text = "default-remote: local\nremotes:\n  gar:\n    addr: https://us-docker.pkg.dev\n    protocol: oci\n    public: true\n  images:\n    addr: https://images.example.test\n    protocol: simplestreams\n";
        let mut doc: Yaml = serde_yaml_ng::from_str(text).unwrap();
        let original = doc.clone();
        let change = edit_incus(
            &mut doc,
            "gar",
            PROGRAM_NAME,
            false,
            false,
            None,
            Path::new("c"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(change.after.as_deref(), Some(PROGRAM_NAME));
        assert_eq!(
            doc["remotes"]["gar"]["credentials_helper"].as_str(),
            Some(PROGRAM_NAME)
        );
        assert!(
            edit_incus(
                &mut doc,
                "images",
                PROGRAM_NAME,
                false,
                false,
                None,
                Path::new("c")
            )
            .is_err()
        );
        edit_incus(
            &mut doc,
            "gar",
            PROGRAM_NAME,
            false,
            true,
            None,
            Path::new("c"),
        )
        .unwrap();
        assert_eq!(doc, original);
    }
}
