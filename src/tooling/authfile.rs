//! `authfile`: write a containers auth.json (skopeo or podman `--authfile`,
//! `REGISTRY_AUTH_FILE`) for one or more registries, from helpers or routes.
//!
//! The file is what containers/image reads (B35): `auths[key].auth` is the
//! padded standard base64 of `user:secret`, keyed by `host[:port]` and by
//! `docker.io` for Docker Hub. An identity token (`<token>`) becomes
//! `identitytoken` beside an `auth` that decodes to `<token>:`, because
//! containers/image ignores `identitytoken` unless `auth` holds a `:`
//! (protocol.md §5). The file is 0600 whatever the umask, written to a
//! temporary file in the same folder and renamed, and merged into an existing
//! file without losing its other entries.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use serde_json::{Map, Value};

use super::{JsonDoc, JsonStyle, Source, Streams, ToolError};
use crate::protocol::Credentials;
use crate::registry::ServerUrl;
use crate::secret::Secret;

/// Arguments of `authfile`.
#[derive(Debug, Args)]
pub struct AuthfileArgs {
    /// A registry to write, as REGISTRY (source from --helper or --route) or
    /// REGISTRY=HELPER. Repeat for several. A path (host/team) makes a
    /// namespaced key; the helper is still asked for the host alone.
    #[arg(long = "registry", value_name = "REGISTRY[=HELPER]", required = true)]
    pub registries: Vec<String>,
    /// The helper (name or path) for registries without their own.
    #[arg(long, value_name = "HELPER", conflicts_with = "route")]
    pub helper: Option<String>,
    /// Take credentials from the store the protocol verbs use.
    #[arg(long)]
    pub route: bool,
    /// The auth file to create or merge into; `-` prints a new one on stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Seconds each helper call may take.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

/// Runs `authfile`.
pub fn run(args: AuthfileArgs, io: &mut Streams) -> Result<(), ToolError> {
    let default = Source::from_flags(args.helper.as_deref(), args.route)?;
    let specs = super::parse_registry_specs(&args.registries, default.as_ref())?;
    let fetched = super::fetch_all(&specs, Duration::from_secs(args.timeout.max(1)))?;
    let entries = entries_for(&fetched)?;
    if args.output.as_os_str() == "-" {
        let bytes = Secret::new(render_new(&entries));
        return io
            .stdout
            .write_all(bytes.expose())
            .and_then(|()| io.stdout.flush())
            .map_err(|e| ToolError::Failed(format!("cannot write to stdout: {e}")));
    }
    merge_into_file(&args.output, &entries)?;
    for (key, _) in &entries {
        let _ = writeln!(io.stderr, "wrote {key} to {}", args.output.display());
    }
    Ok(())
}

/// The auth.json key for a registry: `host[:port][/path]`, Docker Hub as `docker.io`.
pub fn containers_key(url: &ServerUrl) -> String {
    url.key()
}

/// The `auths` entries for fetched credentials, in order.
pub fn entries_for(
    fetched: &[(ServerUrl, Credentials)],
) -> Result<Vec<(String, Value)>, ToolError> {
    fetched
        .iter()
        .map(|(url, creds)| {
            auth_entry(creds)
                .map(|entry| (containers_key(url), entry))
                .map_err(|e| ToolError::Usage(format!("{}: {e}", url.key())))
        })
        .collect()
}

/// One `auths` entry as containers/image reads it.
pub fn auth_entry(creds: &Credentials) -> Result<Value, ToolError> {
    let mut entry = Map::new();
    if creds.is_identity_token() {
        entry.insert(
            "auth".to_string(),
            Value::String(STANDARD.encode("<token>:")),
        );
        entry.insert(
            "identitytoken".to_string(),
            Value::String(creds.secret.expose().clone()),
        );
        return Ok(Value::Object(entry));
    }
    if creds.username.contains(':') {
        return Err(ToolError::Usage(
            "the username contains ':', which the auth field (base64 of user:password) cannot carry"
                .to_string(),
        ));
    }
    if creds.username.is_empty() {
        return Err(ToolError::Usage(
            "the helper answered an empty username, which containers/image reads as no credentials"
                .to_string(),
        ));
    }
    let plain = Secret::new(format!("{}:{}", creds.username, creds.secret.expose()));
    entry.insert(
        "auth".to_string(),
        Value::String(STANDARD.encode(plain.expose())),
    );
    Ok(Value::Object(entry))
}

/// A new auth file holding `entries` only.
pub fn render_new(entries: &[(String, Value)]) -> Vec<u8> {
    let mut root = Map::new();
    merge(&mut root, entries, Path::new("-")).unwrap_or_default();
    super::render_json(&Value::Object(root), &JsonStyle::tabs())
}

/// Puts `entries` into `root["auths"]`, replacing entries with the same key
/// and keeping every other entry and setting.
pub fn merge(
    root: &mut Map<String, Value>,
    entries: &[(String, Value)],
    path: &Path,
) -> Result<(), ToolError> {
    let auths = super::object_mut(root, "auths", path)?;
    for (key, entry) in entries {
        auths.insert(key.clone(), entry.clone());
    }
    Ok(())
}

/// Merges `entries` into the auth file at `path` (created if missing) and
/// writes it back 0600, atomically.
pub fn merge_into_file(path: &Path, entries: &[(String, Value)]) -> Result<(), ToolError> {
    let mut doc = JsonDoc::read(path)?;
    merge(&mut doc.root, entries, path)?;
    let bytes = Secret::new(doc.render());
    super::write_atomic(path, bytes.expose(), 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_one_padded_auth_field() {
        let entry = auth_entry(&Credentials::new("h", "user1", "secret1")).unwrap();
        assert_eq!(
            serde_json::to_string(&entry).unwrap(),
            r#"{"auth":"dXNlcjE6c2VjcmV0MQ=="}"#
        );
    }

    #[test]
    fn identity_token_keeps_a_colon_in_auth() {
        let entry = auth_entry(&Credentials::new("h", "<token>", "rt-placeholder")).unwrap();
        assert_eq!(
            serde_json::to_string(&entry).unwrap(),
            r#"{"auth":"PHRva2VuPjo=","identitytoken":"rt-placeholder"}"#
        );
        let decoded = STANDARD.decode("PHRva2VuPjo=").unwrap();
        assert_eq!(decoded, b"<token>:");
    }

    #[test]
    fn docker_hub_key_is_docker_io() {
        for spelling in [
            "https://index.docker.io/v1/",
            "registry-1.docker.io",
            "docker.io",
        ] {
            let url = ServerUrl::parse(spelling).unwrap();
            assert_eq!(containers_key(&url), "docker.io");
        }
        let url = ServerUrl::parse("https://127.0.0.1:5000/").unwrap();
        assert_eq!(containers_key(&url), "127.0.0.1:5000");
    }

    #[test]
    fn merge_keeps_other_entries_and_settings() {
        let mut root: Map<String, Value> = serde_json::from_str(
            r#"{"auths":{"a":{"auth":"eDp5"},"b":{"auth":"b2xkOm9sZA=="}},"credHelpers":{"c":"pass"}}"#,
        )
        .unwrap();
        let entries = vec![(
            "b".to_string(),
            auth_entry(&Credentials::new("b", "new", "new")).unwrap(),
        )];
        merge(&mut root, &entries, Path::new("x")).unwrap();
        assert_eq!(
            serde_json::to_string(&root).unwrap(),
            r#"{"auths":{"a":{"auth":"eDp5"},"b":{"auth":"bmV3Om5ldw=="}},"credHelpers":{"c":"pass"}}"#
        );
    }
}
