//! Static credentials as a `Store`: a username and a secret written in the
//! config, read from an environment variable, or read from a file, for fixed
//! CI credentials. Read-only. Values are read at each call, so a rotated file
//! or variable takes effect at once.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::{Store, StoreError};
use crate::config::{StaticSpec, ValueFrom};
use crate::protocol::Credentials;
use crate::secret::Secret;

/// Largest secret or username file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A `static` route's credentials.
#[derive(Debug, Clone)]
pub struct FixedStore {
    route: String,
    spec: StaticSpec,
    /// The one server URL the route names, if its pattern is exact (for `list`).
    list_url: Option<String>,
}

impl FixedStore {
    /// Credentials for the route named `route` (its pattern as written); `list_url`
    /// is what `list` shows, or `None` for a wildcard route that names no server.
    pub fn new(route: impl Into<String>, spec: StaticSpec, list_url: Option<String>) -> Self {
        FixedStore {
            route: route.into(),
            spec,
            list_url,
        }
    }

    fn error(&self, what: String) -> StoreError {
        StoreError::Other(format!("static route \"{}\": {what}", self.route))
    }

    fn value(&self, from: &ValueFrom, secret: bool) -> Result<Secret<String>, StoreError> {
        match from {
            ValueFrom::Inline(v) => Ok(Secret::new(v.clone())),
            ValueFrom::Env(name) => match std::env::var(name) {
                Ok(v) => Ok(Secret::new(v)),
                Err(std::env::VarError::NotPresent) => Err(self.error(format!(
                    "environment variable {name} is not set; export it or change the route"
                ))),
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(self.error(format!("environment variable {name} is not valid UTF-8")))
                }
            },
            ValueFrom::File(path) => self.read_file(path, secret),
        }
    }

    fn read_file(&self, path: &Path, secret: bool) -> Result<Secret<String>, StoreError> {
        let shown = path.display();
        let file = std::fs::File::open(path)
            .map_err(|e| self.error(format!("cannot read {shown}: {e}")))?;
        if secret {
            check_private(&file, path).map_err(|e| self.error(e))?;
        }
        let mut buf = Vec::new();
        let read = file.take(MAX_FILE_BYTES + 1).read_to_end(&mut buf);
        let bytes = Secret::new(buf);
        read.map_err(|e| self.error(format!("cannot read {shown}: {e}")))?;
        let data = bytes.expose();
        if data.len() as u64 > MAX_FILE_BYTES {
            return Err(self.error(format!(
                "{shown} is larger than {} KiB",
                MAX_FILE_BYTES / 1024
            )));
        }
        let data = data.strip_suffix(b"\n").unwrap_or(data);
        match std::str::from_utf8(data) {
            Ok(text) => Ok(Secret::new(text.to_string())),
            Err(_) => Err(self.error(format!("{shown} is not valid UTF-8"))),
        }
    }
}

/// A secret file that group or others can read is refused, as ssh refuses keys.
#[cfg(unix)]
fn check_private(file: &std::fs::File, path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "secret file {} has mode {:04o}, so group or others can read it; run chmod 600 {}",
            path.display(),
            mode & 0o7777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_file: &std::fs::File, _path: &Path) -> Result<(), String> {
    Ok(())
}

impl Store for FixedStore {
    fn get(&self, server_url: &str) -> Result<Credentials, StoreError> {
        let username = self.value(&self.spec.username, false)?;
        let secret = self.value(&self.spec.secret, true)?;
        if username.is_empty() {
            return Err(self.error("the username is empty".to_string()));
        }
        Ok(Credentials {
            server_url: server_url.to_string(),
            username: username.expose().clone(),
            secret,
        })
    }

    fn store(&self, _creds: &Credentials) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly {
            action: "store",
            what: format!("static route \"{}\"", self.route),
        })
    }

    fn erase(&self, _server_url: &str) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly {
            action: "erase",
            what: format!("static route \"{}\"", self.route),
        })
    }

    fn list(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let mut out = BTreeMap::new();
        if let Some(url) = &self.list_url {
            out.insert(
                url.clone(),
                self.value(&self.spec.username, false)?.expose().clone(),
            );
        }
        Ok(out)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file_store(dir: &Path, mode: u32, content: &[u8]) -> FixedStore {
        let path = dir.join("secret");
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        FixedStore::new(
            "ghcr.io",
            StaticSpec {
                username: ValueFrom::Inline("ci".into()),
                secret: ValueFrom::File(path),
            },
            Some("ghcr.io".into()),
        )
    }

    #[test]
    fn secret_file_loses_exactly_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let s = file_store(dir.path(), 0o600, b" s3cret \n\n");
        let c = s.get("ghcr.io").unwrap();
        assert_eq!(c.secret.expose(), " s3cret \n");
        assert_eq!(c.username, "ci");
        assert_eq!(c.server_url, "ghcr.io");
    }

    #[test]
    fn secret_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = file_store(dir.path(), 0o644, b"hunter2");
        let e = s.get("ghcr.io").unwrap_err().to_string();
        let path = dir.path().join("secret");
        assert_eq!(
            e,
            format!(
                "static route \"ghcr.io\": secret file {} has mode 0644, so group or others can read it; run chmod 600 {}",
                path.display(),
                path.display()
            )
        );
    }

    #[test]
    fn missing_variable_is_a_clear_error_not_not_found() {
        let s = FixedStore::new(
            "h",
            StaticSpec {
                username: ValueFrom::Inline("u".into()),
                secret: ValueFrom::Env("DCI_TEST_SURELY_UNSET_VARIABLE".into()),
            },
            None,
        );
        let e = s.get("h").unwrap_err();
        assert!(!e.is_not_found());
        assert_eq!(
            e.to_string(),
            "static route \"h\": environment variable DCI_TEST_SURELY_UNSET_VARIABLE is not set; export it or change the route"
        );
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn writes_are_refused_as_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = file_store(dir.path(), 0o600, b"x");
        assert_eq!(
            s.store(&Credentials::new("ghcr.io", "u", "p"))
                .unwrap_err()
                .to_string(),
            "store not supported: static route \"ghcr.io\" is read-only"
        );
        assert_eq!(s.list().unwrap().get("ghcr.io").unwrap(), "ci");
    }
}
