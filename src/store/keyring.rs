//! The OS keyring as a `Store`: the Secret Service and the kernel keyutils
//! keyring on Linux, Keychain on macOS, Credential Manager on Windows.
//!
//! One entry per canonical registry key: service `docker-credential-incus`,
//! user = the key, secret = `{"ServerURL","Username","Secret"}` as JSON bytes.
//! Stores are opened lazily, so a call only connects to what it uses, and every
//! keyring call runs under a deadline, because a locked desktop keyring can
//! block on a prompt for minutes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use keyring_core::{CredentialStore, Entry, Error as KeyringError};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::protocol::Credentials;
use crate::registry::ServerUrl;
use crate::secret::Secret;

/// The keyring service name of every credential we write.
pub const SERVICE: &str = "docker-credential-incus";
/// The service name of cached script answers, kept apart so that `list`
/// never shows them as credentials.
pub const CACHE_SERVICE: &str = "docker-credential-incus-cache";
/// Forces one store: `secret-service`, `keyutils`, `keychain` or `windows`.
pub const STORE_ENV: &str = "DOCKER_CREDENTIAL_INCUS_STORE";
/// Seconds one keyring call may take (default 10).
pub const TIMEOUT_ENV: &str = "DOCKER_CREDENTIAL_INCUS_TIMEOUT";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// A keyutils `user` key holds at most 32767 bytes (kernel `user_preparse`).
pub const KEYUTILS_MAX_BYTES: usize = 32767;
/// Windows Credential Manager blobs hold at most 2560 bytes.
pub const WINDOWS_MAX_BYTES: usize = 2560;

/// One OS credential store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// org.freedesktop.secrets on the D-Bus session bus.
    SecretService,
    /// The kernel keyutils persistent keyring: no daemon, lost on reboot.
    Keyutils,
    /// The macOS login keychain.
    Keychain,
    /// Windows Credential Manager.
    WindowsCredential,
}

impl Backend {
    /// The name used in messages.
    pub fn label(self) -> &'static str {
        match self {
            Backend::SecretService => "the Secret Service",
            Backend::Keyutils => "the kernel keyring",
            Backend::Keychain => "the macOS keychain",
            Backend::WindowsCredential => "Windows Credential Manager",
        }
    }

    /// The value of [`STORE_ENV`] that selects it.
    pub fn env_name(self) -> &'static str {
        match self {
            Backend::SecretService => "secret-service",
            Backend::Keyutils => "keyutils",
            Backend::Keychain => "keychain",
            Backend::WindowsCredential => "windows",
        }
    }

    fn from_env_name(name: &str) -> Option<Backend> {
        [
            Backend::SecretService,
            Backend::Keyutils,
            Backend::Keychain,
            Backend::WindowsCredential,
        ]
        .into_iter()
        .find(|b| b.env_name() == name)
    }

    fn max_record_bytes(self) -> Option<usize> {
        match self {
            Backend::Keyutils => Some(KEYUTILS_MAX_BYTES),
            Backend::WindowsCredential => Some(WINDOWS_MAX_BYTES),
            _ => None,
        }
    }
}

/// Which stores a process uses, decided from the environment without touching any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Stores consulted by get, erase and list, in order.
    pub lookup: Vec<Backend>,
    /// True when [`STORE_ENV`] named the store.
    pub forced: bool,
}

impl Selection {
    /// Reads [`STORE_ENV`]; without it, picks the platform default.
    pub fn from_env() -> Result<Selection, StoreError> {
        match std::env::var(STORE_ENV) {
            Ok(name) if !name.is_empty() && name != "auto" => match Backend::from_env_name(&name) {
                Some(b) if platform_backends().contains(&b) => Ok(Selection {
                    lookup: vec![b],
                    forced: true,
                }),
                _ => Err(StoreError::Other(format!(
                    "{STORE_ENV}={name:?} is not a store on this system; use one of: auto, {}",
                    platform_backends()
                        .iter()
                        .map(|b| b.env_name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            },
            _ => Ok(Selection {
                lookup: default_backends(),
                forced: false,
            }),
        }
    }
}

fn platform_backends() -> Vec<Backend> {
    if cfg!(target_os = "linux") {
        vec![Backend::SecretService, Backend::Keyutils]
    } else if cfg!(target_os = "macos") {
        vec![Backend::Keychain]
    } else if cfg!(target_os = "windows") {
        vec![Backend::WindowsCredential]
    } else {
        Vec::new()
    }
}

/// On Linux the Secret Service is consulted only when a session bus exists:
/// connecting costs a D-Bus handshake, and without a bus it can only fail.
fn default_backends() -> Vec<Backend> {
    let mut backends = platform_backends();
    if !session_bus_configured() {
        backends.retain(|b| *b != Backend::SecretService);
    }
    backends
}

/// True when `DBUS_SESSION_BUS_ADDRESS` is set or the systemd user bus socket exists.
pub fn session_bus_configured() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) {
        return true;
    }
    #[cfg(unix)]
    {
        let runtime = std::env::var_os("XDG_RUNTIME_DIR")
            .map(std::path::PathBuf::from)
            .or_else(|| crate::process::current_uid().map(|uid| format!("/run/user/{uid}").into()));
        if let Some(dir) = runtime {
            return dir.join("bus").exists();
        }
    }
    false
}

/// The stored record. The ServerURL is kept as first stored, for `list`.
#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(rename = "ServerURL")]
    server_url: String,
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

impl Drop for Record {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

/// A store opened on first use, or why it could not be.
type Opened = Result<Arc<CredentialStore>, StoreError>;

/// The keyring-backed store.
pub struct KeyringStore {
    selection: Selection,
    service: &'static str,
    timeout: Duration,
    opened: Vec<(Backend, OnceLock<Opened>)>,
    /// Where `store` notices go (stderr in the binary).
    notice: Box<dyn Fn(&str) + Send + Sync>,
}

impl KeyringStore {
    /// A store for this process, chosen from the environment. Touches nothing yet.
    pub fn from_env() -> Result<KeyringStore, StoreError> {
        let selection = Selection::from_env()?;
        let timeout = match std::env::var(TIMEOUT_ENV) {
            Ok(v) => match v.parse::<u64>() {
                Ok(secs) if secs > 0 => Duration::from_secs(secs),
                _ => {
                    return Err(StoreError::Other(format!(
                        "{TIMEOUT_ENV}={v:?} is not a whole number of seconds above 0"
                    )));
                }
            },
            Err(_) => DEFAULT_TIMEOUT,
        };
        Ok(KeyringStore::new(selection, timeout))
    }

    /// A store over the given selection.
    pub fn new(selection: Selection, timeout: Duration) -> KeyringStore {
        let opened = selection
            .lookup
            .iter()
            .map(|b| (*b, OnceLock::new()))
            .collect();
        KeyringStore {
            selection,
            service: SERVICE,
            timeout,
            opened,
            notice: Box::new(|msg| eprintln!("docker-credential-incus: {msg}")),
        }
    }

    /// Keeps entries under another keyring service name (e.g. [`CACHE_SERVICE`]).
    pub fn with_service(mut self, service: &'static str) -> Self {
        self.service = service;
        self
    }

    /// Replaces where notices go.
    pub fn with_notice(mut self, notice: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.notice = Box::new(notice);
        self
    }

    /// The backends consulted by get, erase and list.
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    fn open(&self, index: usize) -> Result<Arc<CredentialStore>, StoreError> {
        let (backend, cell) = &self.opened[index];
        let backend = *backend;
        cell.get_or_init(|| {
            if backend == Backend::Keyutils {
                // On this thread, before any worker starts: keyrings live in the
                // thread's credentials, and a worker inherits them when spawned.
                attach_persistent_keyring()?;
            }
            self.with_deadline(backend, move || open_backend(backend))
        })
        .clone()
    }

    /// Runs `f` on a worker thread and gives up after the deadline. The thread is
    /// left behind: the process exits soon after, and a stuck D-Bus call cannot be
    /// cancelled from outside.
    fn with_deadline<T: Send + 'static>(
        &self,
        backend: Backend,
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(self.timeout)
            .unwrap_or(Err(StoreError::Timeout {
                store: backend.label(),
                seconds: self.timeout.as_secs(),
            }))
    }

    /// Runs `op` on the entry for `key` in store `index`, under the deadline.
    /// Errors from the entry are mapped with the store and the key.
    fn with_entry<T: Send + 'static>(
        &self,
        index: usize,
        key: &str,
        op: impl FnOnce(&Entry) -> Result<T, KeyringError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let backend = self.opened[index].0;
        let store = self.open(index)?;
        let key = key.to_string();
        let service = self.service;
        self.with_deadline(backend, move || {
            Entry::new_in_store(&store, service, &key)
                .and_then(|entry| op(&entry))
                .map_err(|e| map_error(backend, &key, e))
        })
    }

    fn read(&self, index: usize, key: &str) -> Result<Record, StoreError> {
        let bytes = Secret::new(self.with_entry(index, key, |entry| entry.get_secret())?);
        serde_json::from_slice::<Record>(bytes.expose()).map_err(|_| {
            StoreError::Other(format!(
                "{} entry for {key} is not a docker-credential-incus record; erase it and store it again",
                self.opened[index].0.label()
            ))
        })
    }

    fn write(&self, index: usize, key: &str, record: Record) -> Result<(), StoreError> {
        let backend = self.opened[index].0;
        let bytes =
            Secret::new(serde_json::to_vec(&record).map_err(|e| StoreError::Other(e.to_string()))?);
        if let Some(limit) = backend.max_record_bytes()
            && bytes.expose().len() > limit
        {
            return Err(StoreError::TooLarge {
                store: backend.label(),
                limit,
                size: bytes.expose().len(),
            });
        }
        self.with_entry(index, key, move |entry| entry.set_secret(bytes.expose()))
    }

    /// Deletes every item for `key`, duplicates included, so that `erase`
    /// is also the way out of an ambiguous entry.
    fn delete(&self, index: usize, key: &str) -> Result<(), StoreError> {
        self.with_entry(index, key, |entry| match entry.delete_credential() {
            Ok(()) | Err(KeyringError::NoEntry) => Ok(()),
            Err(KeyringError::Ambiguous(items)) => {
                items.iter().try_for_each(|item| item.delete_credential())
            }
            Err(e) => Err(e),
        })
    }

    fn keys(&self, index: usize) -> Result<Vec<String>, StoreError> {
        let backend = self.opened[index].0;
        let store = self.open(index)?;
        let service = self.service;
        self.with_deadline(backend, move || list_keys(backend, &store, service))
    }

    /// In automatic selection a store that does not exist here is skipped;
    /// a store the user forced must work.
    fn is_skippable_flag(&self) -> bool {
        !self.selection.forced
    }
}

fn no_store_available(unavailable: Vec<StoreError>) -> StoreError {
    if unavailable.len() == 1 {
        return unavailable
            .into_iter()
            .next()
            .unwrap_or(StoreError::Other("no credential store".into()));
    }
    let reasons: Vec<String> = unavailable.iter().map(|e| e.to_string()).collect();
    StoreError::Other(format!(
        "no credential store is available: {}",
        reasons.join("; ")
    ))
}

impl Store for KeyringStore {
    fn get(&self, server_url: &str) -> Result<Credentials, StoreError> {
        let url = ServerUrl::parse(server_url)?;
        let mut outcome = Outcome::default();
        let mut dead = vec![false; self.opened.len()];
        // Most specific key first, across every store.
        for key in url.lookup_keys() {
            for (index, dead) in dead.iter_mut().enumerate() {
                if *dead {
                    continue;
                }
                match self.read(index, &key) {
                    Ok(record) => {
                        return Ok(Credentials::new(
                            server_url,
                            record.username.clone(),
                            record.secret.clone(),
                        ));
                    }
                    Err(StoreError::NotFound) => outcome.answered = true,
                    Err(e @ StoreError::Ambiguous { .. }) => return Err(e),
                    Err(e) => {
                        *dead = true;
                        outcome.add_failure(e, self.is_skippable_flag());
                    }
                }
            }
        }
        outcome.finish().and(Err(StoreError::NotFound))
    }

    fn store(&self, creds: &Credentials) -> Result<(), StoreError> {
        let key = ServerUrl::parse(&creds.server_url)?.key();
        let mut record = Record {
            server_url: creds.server_url.clone(),
            username: creds.username.clone(),
            secret: creds.secret.expose().clone(),
        };
        for index in 0..self.opened.len() {
            let backend = self.opened[index].0;
            // Keep the ServerURL as first stored, so `list` shows one spelling.
            match self.read(index, &key) {
                Ok(old) => record.server_url = old.server_url.clone(),
                Err(StoreError::NotFound) | Err(StoreError::Ambiguous { .. }) => {}
                Err(StoreError::Unavailable { .. })
                    if !self.selection.forced && index + 1 < self.opened.len() =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
            self.write(index, &key, record)?;
            // Once per process: `import` stores many credentials in one run.
            static REBOOT_NOTICE_SHOWN: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if backend == Backend::Keyutils
                && !REBOOT_NOTICE_SHOWN.swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                (self.notice)(if self.selection.forced {
                    "credentials are kept in the kernel keyring, which does not survive a reboot"
                } else {
                    "no Secret Service on a session bus, so credentials are kept in the kernel keyring, which does not survive a reboot"
                });
            }
            return Ok(());
        }
        Err(StoreError::Other(
            "no credential store is available on this system".to_string(),
        ))
    }

    fn erase(&self, server_url: &str) -> Result<(), StoreError> {
        let key = ServerUrl::parse(server_url)?.key();
        let mut outcome = Outcome::default();
        for index in 0..self.opened.len() {
            match self.delete(index, &key) {
                Ok(()) => outcome.answered = true,
                Err(e) => outcome.add_failure(e, self.is_skippable_flag()),
            }
        }
        outcome.finish()
    }

    fn list(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let mut out = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut outcome = Outcome::default();
        for index in 0..self.opened.len() {
            let keys = match self.keys(index) {
                Ok(keys) => keys,
                Err(e) => {
                    outcome.add_failure(e, self.is_skippable_flag());
                    continue;
                }
            };
            outcome.answered = true;
            for key in keys {
                if !seen.insert(key.clone()) {
                    continue;
                }
                // One broken or vanished entry must not hide the others.
                if let Ok(record) = self.read(index, &key) {
                    out.insert(record.server_url.clone(), record.username.clone());
                }
            }
        }
        outcome.finish().map(|()| out)
    }
}

/// What a call across several stores has seen so far.
#[derive(Default)]
struct Outcome {
    /// Some store answered (found, not found, erased, listed).
    answered: bool,
    /// The first real failure.
    failure: Option<StoreError>,
    /// Stores that do not exist here, when the selection was automatic.
    unavailable: Vec<StoreError>,
}

impl Outcome {
    fn add_failure(&mut self, e: StoreError, unavailable_is_skippable: bool) {
        match e {
            StoreError::Unavailable { .. } if unavailable_is_skippable => self.unavailable.push(e),
            e => {
                self.failure.get_or_insert(e);
            }
        }
    }

    /// A real failure wins; else success if any store answered; else the
    /// reasons why no store exists here.
    fn finish(self) -> Result<(), StoreError> {
        match self.failure {
            Some(e) => Err(e),
            None if self.answered => Ok(()),
            None => Err(no_store_available(self.unavailable)),
        }
    }
}

fn open_backend(backend: Backend) -> Result<Arc<CredentialStore>, StoreError> {
    let unavailable = |reason: String| StoreError::Unavailable {
        store: backend.label(),
        reason,
    };
    match backend {
        #[cfg(target_os = "linux")]
        Backend::SecretService => zbus_secret_service_keyring_store::Store::new()
            .map(|s| s as Arc<CredentialStore>)
            .map_err(|e| unavailable(format!("cannot reach it on the session bus ({}); start a Secret Service such as gnome-keyring, or set {STORE_ENV}=keyutils", platform_text(&e)))),
        #[cfg(target_os = "linux")]
        Backend::Keyutils => linux_keyutils_keyring_store::Store::new()
                .map(|s| s as Arc<CredentialStore>)
                .map_err(|e| keyutils_unavailable(&platform_text(&e))),
        #[cfg(target_os = "macos")]
        Backend::Keychain => apple_native_keyring_store::keychain::Store::new()
            .map(|s| s as Arc<CredentialStore>)
            .map_err(|e| unavailable(platform_text(&e))),
        #[cfg(target_os = "windows")]
        Backend::WindowsCredential => windows_native_keyring_store::Store::new()
            .map(|s| s as Arc<CredentialStore>)
            .map_err(|e| unavailable(platform_text(&e))),
        #[allow(unreachable_patterns)]
        _ => Err(unavailable("not built for this system".to_string())),
    }
}

/// Processes without a PAM session keyring (CI, docker exec, setpriv) sit on
/// the implicit user-session keyring, where a new key cannot be linked into the
/// persistent keyring (EACCES, and a half-written key is left behind). Asking for
/// the persistent keyring first gives the thread a session keyring it possesses,
/// with the persistent keyring linked in (keyring.md §2).
#[cfg(target_os = "linux")]
fn attach_persistent_keyring() -> Result<(), StoreError> {
    use linux_keyutils::{KeyRing, KeyRingIdentifier};
    KeyRing::get_persistent(KeyRingIdentifier::Session)
        .map(|_| ())
        .map_err(|e| keyutils_unavailable(&format!("{e:?}")))
}

#[cfg(not(target_os = "linux"))]
fn attach_persistent_keyring() -> Result<(), StoreError> {
    Ok(())
}

fn keyutils_unavailable(detail: &str) -> StoreError {
    StoreError::Unavailable {
        store: Backend::Keyutils.label(),
        reason: format!(
            "the kernel refused keyutils calls ({detail}); container seccomp profiles such as Docker's default block them. Run with a Secret Service session bus, or allow add_key and keyctl"
        ),
    }
}

fn platform_text(e: &KeyringError) -> String {
    match e {
        KeyringError::PlatformFailure(inner) | KeyringError::NoStorageAccess(inner) => {
            inner.to_string()
        }
        other => other.to_string(),
    }
    .replace(['\n', '\r'], " ")
}

fn map_error(backend: Backend, key: &str, e: KeyringError) -> StoreError {
    let text = platform_text(&e);
    // EPERM is what seccomp filters return; EACCES is a permission problem.
    let blocked = text.contains("PermissionDenied");
    match e {
        KeyringError::NoEntry => StoreError::NotFound,
        KeyringError::Ambiguous(items) => StoreError::Ambiguous { store: backend.label(), key: key.to_string(), count: items.len() },
        _ if backend == Backend::Keyutils && blocked => keyutils_unavailable(&text),
        KeyringError::PlatformFailure(_) if backend == Backend::Keyutils && text.contains("QuotaExceeded") => StoreError::Other(
            "the kernel keyring quota for this user is full (see /proc/key-users and /proc/sys/kernel/keys/maxbytes); erase unused entries or use the Secret Service".to_string(),
        ),
        KeyringError::NoStorageAccess(_) if backend == Backend::SecretService => StoreError::Locked {
            store: backend.label(),
            hint: format!(
                "unlock the login keyring (log in to the desktop, or start gnome-keyring-daemon with --unlock), or set {STORE_ENV}=keyutils ({text})"
            ),
        },
        KeyringError::NoStorageAccess(_) => StoreError::Locked { store: backend.label(), hint: format!("unlock it and try again ({text})") },
        KeyringError::TooLong(_, limit) => StoreError::TooLarge { store: backend.label(), limit: limit as usize, size: 0 },
        _ => StoreError::Other(format!("{} failed for {key}: {text}", backend.label())),
    }
}

fn list_keys(
    backend: Backend,
    store: &Arc<CredentialStore>,
    service: &str,
) -> Result<Vec<String>, StoreError> {
    let pattern = format!(r"^.*\.{service}$");
    let spec: HashMap<&str, &str> = match backend {
        Backend::SecretService | Backend::Keychain => HashMap::from([("service", service)]),
        Backend::WindowsCredential => HashMap::from([("pattern", pattern.as_str())]),
        Backend::Keyutils => return keyutils_keys(service),
    };
    let entries =
        Entry::search_in_store(store, &spec).map_err(|e| map_error(backend, "list", e))?;
    Ok(entries
        .into_iter()
        .filter_map(|e| e.get_specifiers())
        .filter(|(s, _)| s == service)
        .map(|(_, user)| user)
        .collect())
}

/// The keyutils store has no search, so walk the session and persistent
/// keyrings for our descriptions (`keyring:<key>@docker-credential-incus`).
#[cfg(target_os = "linux")]
fn keyutils_keys(service: &str) -> Result<Vec<String>, StoreError> {
    use linux_keyutils::{KeyRing, KeyRingIdentifier};
    let persistent = KeyRing::get_persistent(KeyRingIdentifier::Session)
        .map_err(|e| keyutils_unavailable(&format!("{e:?}")))?;
    let session = KeyRing::from_special_id(KeyRingIdentifier::Session, false)
        .map_err(|e| keyutils_unavailable(&format!("{e:?}")))?;
    let suffix = format!("@{service}");
    let mut keys = Vec::new();
    for ring in [persistent, session] {
        let Ok(links) = ring.get_links(4096) else {
            continue;
        };
        for node in links.iter() {
            let Some(key) = node.as_key() else { continue };
            let Ok(meta) = key.metadata() else { continue };
            if let Some(k) = meta
                .get_description()
                .strip_prefix("keyring:")
                .and_then(|d| d.strip_suffix(&suffix))
                && !keys.iter().any(|x| x == k)
            {
                keys.push(k.to_string());
            }
        }
    }
    Ok(keys)
}

#[cfg(not(target_os = "linux"))]
fn keyutils_keys(_service: &str) -> Result<Vec<String>, StoreError> {
    Ok(Vec::new())
}
