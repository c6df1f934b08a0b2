//! `import`: move credentials into the store this helper serves.
//!
//! Without `--from`, the plaintext `auths` of docker's config.json (base64
//! `user:password` that any process of the user can read) are stored, read
//! back to verify, and only then removed from the file, which is rewritten
//! atomically after a 0600 backup. Entries are left as `{}`, the marker docker
//! itself writes when a helper holds the secret.
//!
//! With `--from HELPER`, every entry another helper lists is copied. Their
//! quirks are handled: pass answers empty credentials (skipped, as docker
//! would), and secretservice 0.9+ lists item labels (`Registry credentials for
//! <url>`) instead of server URLs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use serde_json::{Map, Value};

use super::{Env, JsonDoc, Source, Streams, ToolError};
use crate::protocol::{Credentials, TOKEN_USERNAME};
use crate::registry::ServerUrl;
use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// The label prefix docker-credential-secretservice 0.9+ lists instead of the URL.
pub const SECRETSERVICE_LABEL_PREFIX: &str = "Registry credentials for ";
/// The credential fields of a docker `auths` entry.
const CREDENTIAL_FIELDS: [&str; 5] = [
    "auth",
    "username",
    "password",
    "identitytoken",
    "registrytoken",
];

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Copy every credential this helper lists (name or path), e.g. pass or secretservice.
    #[arg(long, value_name = "HELPER")]
    pub from: Option<String>,
    /// The docker config.json to read (default $DOCKER_CONFIG/config.json or ~/.docker/config.json).
    #[arg(long, value_name = "FILE", conflicts_with = "from")]
    pub file: Option<PathBuf>,
    /// Leave the plaintext entries in the file.
    #[arg(long, conflicts_with = "from")]
    pub keep: bool,
    /// Say what would be imported; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds each helper call may take.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

/// Runs `import`.
pub fn run(args: ImportArgs, io: &mut Streams) -> Result<(), ToolError> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    match &args.from {
        Some(helper) => from_helper(helper, &args, timeout, io.stderr),
        None => {
            let path = args
                .file
                .clone()
                .unwrap_or_else(|| Env::process().docker_config());
            from_docker_config(&path, &args, io.stderr)
        }
    }
}

/// What one `auths` entry holds.
#[derive(Debug)]
pub enum Plaintext {
    /// A credential to import.
    Credential(Credentials),
    /// No credential: a `{}` marker or an entry with other fields only.
    Marker,
    /// Something that cannot be decoded; left in place.
    Broken(String),
}

/// Decodes an `auths` entry by docker's rules: an identity token wins (stored
/// with username `<token>`, as docker does); else `auth`, base64 of
/// `user:password` with a non-empty user and trailing NULs trimmed from the
/// password; else the older `username`/`password` fields.
pub fn decode_entry(key: &str, entry: &Value) -> Plaintext {
    let Some(entry) = entry.as_object() else {
        return Plaintext::Broken("not a JSON object".to_string());
    };
    let text = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(token) = text("identitytoken") {
        return Plaintext::Credential(Credentials::new(key, TOKEN_USERNAME, token));
    }
    if let Some(auth) = text("auth") {
        let Ok(decoded) = STANDARD.decode(auth.trim()) else {
            return Plaintext::Broken("its auth field is not base64".to_string());
        };
        let decoded = Secret::new(decoded);
        let Ok(text) = std::str::from_utf8(decoded.expose()) else {
            return Plaintext::Broken("its auth field is not UTF-8".to_string());
        };
        return match text.split_once(':') {
            Some((user, password)) if !user.is_empty() => {
                Plaintext::Credential(Credentials::new(key, user, password.trim_end_matches('\0')))
            }
            _ => Plaintext::Broken("its auth field is not user:password".to_string()),
        };
    }
    match (
        text("username"),
        entry.get("password").and_then(Value::as_str),
    ) {
        (Some(user), Some(password)) => {
            Plaintext::Credential(Credentials::new(key, user, password))
        }
        _ => Plaintext::Marker,
    }
}

fn from_docker_config(
    path: &Path,
    args: &ImportArgs,
    stderr: &mut dyn Write,
) -> Result<(), ToolError> {
    let mut doc = JsonDoc::read(path)?;
    let Some(auths) = doc.root.get("auths").and_then(Value::as_object) else {
        let _ = writeln!(
            stderr,
            "{}: no plaintext credentials to import",
            path.display()
        );
        return Ok(());
    };
    let mut found: Vec<(String, Credentials)> = Vec::new();
    let mut failures = 0;
    for (key, entry) in auths {
        match decode_entry(&docker_server_url(key), entry) {
            Plaintext::Credential(c) => found.push((key.clone(), c)),
            Plaintext::Marker => {}
            Plaintext::Broken(why) => {
                failures += 1;
                let _ = writeln!(stderr, "skipped {key}: {why}; it stays in the file");
            }
        }
    }
    if found.is_empty() {
        let _ = writeln!(
            stderr,
            "{}: no plaintext credentials to import",
            path.display()
        );
        return if failures > 0 {
            Err(failed(failures))
        } else {
            Ok(())
        };
    }
    if args.dry_run {
        for (_, c) in &found {
            let _ = writeln!(
                stderr,
                "would import {} (user {})",
                c.server_url, c.username
            );
        }
        return Ok(());
    }
    let store = Source::Route.open(Duration::from_secs(args.timeout.max(1)))?;
    let mut imported = Vec::new();
    for (key, creds) in &found {
        match store_verified(store.as_ref(), creds) {
            Ok(()) => {
                let _ = writeln!(
                    stderr,
                    "imported {} (user {})",
                    creds.server_url, creds.username
                );
                imported.push(key.clone());
            }
            Err(e) => {
                failures += 1;
                let _ = writeln!(
                    stderr,
                    "not imported {}: {e}; it stays in the file",
                    creds.server_url
                );
            }
        }
    }
    if !args.keep && !imported.is_empty() {
        strip_credentials(&mut doc.root, &imported);
        let bytes = Secret::new(doc.render());
        if let Some(original) = doc.original.as_deref() {
            let backup = super::write_backup(path, original)?;
            let _ = writeln!(
                stderr,
                "the previous file, with its plaintext credentials, is kept 0600 in {}; delete it once docker works",
                backup.display()
            );
        }
        let mode = super::existing_mode(path, 0o600);
        super::write_atomic(path, bytes.expose(), mode)?;
        let _ = writeln!(
            stderr,
            "removed {} plaintext credential(s) from {}",
            imported.len(),
            path.display()
        );
        warn_if_docker_does_not_ask_us(&doc.root, &imported, stderr);
    }
    if failures > 0 {
        Err(failed(failures))
    } else {
        Ok(())
    }
}

/// The server docker asks a helper for, given an `auths` key: Docker Hub's
/// key as it is, any other reduced to its host as docker's file store reads
/// legacy keys (`https://host/v1/` serves `host`).
pub fn docker_server_url(key: &str) -> String {
    if key == crate::registry::DOCKER_HUB_LEGACY_URL {
        key.to_string()
    } else {
        super::convert_to_hostname(key).to_string()
    }
}

fn failed(count: usize) -> ToolError {
    ToolError::Failed(format!("{count} credential(s) could not be imported"))
}

/// Removes the credential fields of the imported entries, leaving the `{}`
/// marker and any other field (such as `email`) in place.
pub fn strip_credentials(root: &mut Map<String, Value>, keys: &[String]) {
    let Some(auths) = root.get_mut("auths").and_then(Value::as_object_mut) else {
        return;
    };
    for key in keys {
        if let Some(entry) = auths.get_mut(key).and_then(Value::as_object_mut) {
            for field in CREDENTIAL_FIELDS {
                entry.shift_remove(field);
            }
        }
    }
}

fn warn_if_docker_does_not_ask_us(
    root: &Map<String, Value>,
    keys: &[String],
    stderr: &mut dyn Write,
) {
    let ours = super::configure::SHORT_NAME;
    let store = root.get("credsStore").and_then(Value::as_str);
    let helpers = root.get("credHelpers").and_then(Value::as_object);
    let missed: Vec<String> = keys
        .iter()
        .map(|k| docker_server_url(k))
        .filter(|k| {
            match helpers
                .and_then(|h| h.get(k.as_str()))
                .and_then(Value::as_str)
            {
                Some(h) => h != ours,
                None => store != Some(ours),
            }
        })
        .collect();
    if !missed.is_empty() {
        let _ = writeln!(
            stderr,
            "note: docker does not ask docker-credential-incus for {}; run `docker-credential-incus configure docker`",
            missed
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// Stores `creds` and reads them back, so a store that silently failed (B29)
/// never leads to the plaintext copy being removed.
fn store_verified(store: &dyn Store, creds: &Credentials) -> Result<(), ToolError> {
    ServerUrl::parse(&creds.server_url).map_err(|e| ToolError::Usage(e.to_string()))?;
    store
        .store(creds)
        .map_err(|e| ToolError::Failed(e.to_string()))?;
    let back = store
        .get(&creds.server_url)
        .map_err(|e| ToolError::Failed(format!("stored, but reading it back failed: {e}")))?;
    if back.username != creds.username || back.secret != creds.secret {
        return Err(ToolError::Failed(
            "stored, but reading it back gave a different credential".to_string(),
        ));
    }
    Ok(())
}

/// The server URL to ask for a key that a helper's `list` printed.
pub fn listed_server_url(key: &str) -> &str {
    key.strip_prefix(SECRETSERVICE_LABEL_PREFIX).unwrap_or(key)
}

fn from_helper(
    name: &str,
    args: &ImportArgs,
    timeout: Duration,
    stderr: &mut dyn Write,
) -> Result<(), ToolError> {
    let source = Source::Helper(name.to_string());
    refuse_ourselves(name)?;
    let helper = source.open(timeout)?;
    let listed = helper
        .list()
        .map_err(|e| ToolError::Failed(e.to_string()))?;
    if listed.is_empty() {
        let _ = writeln!(
            stderr,
            "{} lists no credentials to import",
            source.describe()
        );
        return Ok(());
    }
    let ours = if args.dry_run {
        None
    } else {
        Some(Source::Route.open(timeout)?)
    };
    let mut failures = 0;
    let mut imported = 0;
    for key in listed.keys() {
        let server = listed_server_url(key);
        if ServerUrl::parse(server).is_err() {
            let _ = writeln!(stderr, "skipped {key:?}: not a registry server URL");
            continue;
        }
        let creds = match helper.get(server) {
            Ok(c) => Credentials {
                server_url: server.to_string(),
                ..c
            },
            // pass answers a missing entry with empty credentials, which the
            // helper store reports as not found; docker treats it the same way.
            Err(StoreError::NotFound) => {
                let _ = writeln!(
                    stderr,
                    "skipped {server}: {} lists it but answers no credentials for it",
                    source.describe()
                );
                continue;
            }
            Err(e) => {
                failures += 1;
                let _ = writeln!(stderr, "not imported {server}: {e}");
                continue;
            }
        };
        let Some(store) = &ours else {
            let _ = writeln!(stderr, "would import {server} (user {})", creds.username);
            continue;
        };
        match store_verified(store.as_ref(), &creds) {
            Ok(()) => {
                imported += 1;
                let _ = writeln!(stderr, "imported {server} (user {})", creds.username);
            }
            Err(e) => {
                failures += 1;
                let _ = writeln!(stderr, "not imported {server}: {e}");
            }
        }
    }
    if !args.dry_run {
        let _ = writeln!(
            stderr,
            "copied {imported} credential(s) from {}; they are still there too",
            source.describe()
        );
    }
    if failures > 0 {
        Err(failed(failures))
    } else {
        Ok(())
    }
}

/// Importing from ourselves would read and write the same entries.
fn refuse_ourselves(name: &str) -> Result<(), ToolError> {
    let helper = crate::store::helper::Helper::resolve(name)
        .map_err(|e| ToolError::Failed(e.to_string()))?;
    let same = match (
        std::fs::canonicalize(helper.program()),
        std::env::current_exe().and_then(std::fs::canonicalize),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same || helper.name() == super::configure::PROGRAM_NAME {
        return Err(ToolError::Usage(
            "--from names docker-credential-incus itself; name the helper to copy from".to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(entry: &str) -> Plaintext {
        decode_entry("h", &serde_json::from_str(entry).unwrap())
    }

    #[test]
    fn auth_field_decodes_like_docker() {
        let Plaintext::Credential(c) = decode(r#"{"auth":"dXNlcjE6c2VjOnJldDEAAA=="}"#) else {
            panic!("not decoded")
        };
        assert_eq!(
            (c.username.as_str(), c.secret.expose().as_str()),
            ("user1", "sec:ret1")
        );
        assert!(matches!(
            decode(r#"{"auth":"OnBhc3M="}"#),
            Plaintext::Broken(_)
        ));
        assert!(matches!(decode(r#"{"auth":"!!"}"#), Plaintext::Broken(_)));
        assert!(matches!(decode(r#"{}"#), Plaintext::Marker));
        assert!(matches!(decode(r#"{"email":"e"}"#), Plaintext::Marker));
    }

    #[test]
    fn identity_token_becomes_the_token_username() {
        let Plaintext::Credential(c) = decode(r#"{"auth":"dTo=","identitytoken":"rt"}"#) else {
            panic!("not decoded")
        };
        assert_eq!(
            (c.username.as_str(), c.secret.expose().as_str()),
            ("<token>", "rt")
        );
    }

    #[test]
    fn stripping_leaves_markers_and_other_fields() {
        let mut root: Map<String, Value> = serde_json::from_str(
            r#"{"auths":{"a":{"auth":"dTpw","email":"e"},"b":{"auth":"dTpw"}},"x":1}"#,
        )
        .unwrap();
        strip_credentials(&mut root, &["a".to_string()]);
        assert_eq!(
            serde_json::to_string(&root).unwrap(),
            r#"{"auths":{"a":{"email":"e"},"b":{"auth":"dTpw"}},"x":1}"#
        );
    }

    #[test]
    fn secretservice_labels_map_back_to_urls() {
        assert_eq!(
            listed_server_url("Registry credentials for https://h"),
            "https://h"
        );
        assert_eq!(listed_server_url("h:5000"), "h:5000");
    }
}
