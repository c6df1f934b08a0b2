//! Shared helpers for the integration tests: the built binary, which real
//! components this run has, and the local registry of `scripts/test`.
//!
//! A test that needs a missing component calls [`require`]: it fails under CI
//! (`CI=true`), so that no test passes there without running, and skips with a
//! message elsewhere.

#![allow(dead_code)] // each test module uses a different part

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The `docker-credential-incus` binary cargo built for these tests.
pub fn helper_path() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_docker-credential-incus"))
}

/// A command running the built binary, isolated from the developer's own
/// route config (a test that wants routes names its file explicitly).
pub fn helper() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(helper_path());
    cmd.env_remove("DOCKER_CREDENTIAL_INCUS_CONFIG")
        .env("XDG_CONFIG_HOME", no_config_dir());
    cmd
}

/// The binary on one store (`keyutils` or `secret-service`).
pub fn helper_on(store: &str) -> assert_cmd::Command {
    let mut cmd = helper();
    cmd.env("DOCKER_CREDENTIAL_INCUS_STORE", store);
    cmd
}

/// Runs `list` with `cmd` and returns its answer, which must be one JSON
/// object of strings and a newline.
pub fn list_with(mut cmd: assert_cmd::Command) -> std::collections::BTreeMap<String, String> {
    let out = cmd
        .arg("list")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(out.last(), Some(&b'\n'), "list must end its line");
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "list printed no JSON object of strings ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    })
}

/// An empty config folder, so no route config is found.
pub fn no_config_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-config");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// True when running under CI (`CI` set to anything but `false` or `0`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Passes `thing` through when it is there. When it is not: under CI, fails
/// the test with `what` (what is missing and how to get it); elsewhere prints
/// a skip line and returns `None`, so the test can `return`.
#[track_caller]
pub fn require<T>(thing: Option<T>, what: &str) -> Option<T> {
    if thing.is_none() {
        if in_ci() {
            panic!("CI=true but {what}");
        }
        eprintln!("skipped: {what}");
    }
    thing
}

/// [`require`] for a yes/no condition.
#[track_caller]
pub fn require_that(present: bool, what: &str) -> bool {
    require(present.then_some(()), what).is_some()
}

/// A name no other test, thread or process uses, for keys and URLs.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The full path of `name` on PATH, if it is an executable file there.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// True when a Secret Service answers on the session bus (as inside
/// `scripts/with-secret-service`). Asked once per test process.
pub fn secret_service_present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    *PRESENT.get_or_init(|| {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none_or(|v| v.is_empty()) {
            return false;
        }
        std::process::Command::new("dbus-send")
            .args([
                "--session",
                "--print-reply=literal",
                "--reply-timeout=2000",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains("true")
            })
    })
}

/// The message for a missing Secret Service.
pub const NEED_SECRET_SERVICE: &str = "no Secret Service on the session bus: run the tests with scripts/test (or inside scripts/with-secret-service)";

/// True when this process may use the kernel keyring (container seccomp
/// profiles often forbid the keyctl calls).
pub fn keyutils_present() -> bool {
    #[cfg(target_os = "linux")]
    {
        use linux_keyutils::{KeyRing, KeyRingIdentifier};
        KeyRing::from_special_id(KeyRingIdentifier::User, false).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// The message for an unusable kernel keyring.
pub const NEED_KEYUTILS: &str =
    "the kernel keyring is not usable here (not Linux, or keyctl is blocked by seccomp)";

/// The local registry that `scripts/test` starts (`scripts/local-registry`),
/// read from its `LOCAL_REGISTRY_*` variables.
#[derive(Debug, Clone)]
pub struct Registry {
    /// `127.0.0.1:PORT`, the spelling clients use as the registry key.
    pub host: String,
    /// The user of the htpasswd file.
    pub user: String,
    /// That user's password.
    pub password: String,
    /// The seeded image without the host, e.g. `dcih/hello:v1`.
    pub image: String,
}

/// The message for a missing registry.
pub const NEED_REGISTRY: &str =
    "no local registry (LOCAL_REGISTRY_* unset): run the tests with scripts/test";

impl Registry {
    /// The registry of this run, if `LOCAL_REGISTRY_*` are set.
    pub fn from_env() -> Option<Registry> {
        let var = |name: &str| std::env::var(format!("LOCAL_REGISTRY_{name}")).ok();
        let host = var("HOST")?;
        let image = var("IMAGE")?;
        Some(Registry {
            image: image.strip_prefix(&format!("{host}/"))?.to_string(),
            host,
            user: var("USER")?,
            password: var("PASSWORD")?,
        })
    }

    /// `docker://HOST/IMAGE`, as skopeo names the seeded image.
    pub fn image_ref(&self) -> String {
        format!("docker://{}/{}", self.host, self.image)
    }

    /// The same registry behind a port of its own: a TCP forwarder on
    /// 127.0.0.1 that lives as long as the test process. Clients key
    /// credentials by `host:port`, so tests that log in through their own
    /// alias never touch each other's entries, even in the per-user kernel
    /// keyring.
    pub fn alias(&self) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port on 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let target = self.host.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                match TcpStream::connect(&target) {
                    Ok(server) => forward(client, server),
                    Err(_) => drop(client),
                }
            }
        });
        Registry {
            host: format!("127.0.0.1:{port}"),
            ..self.clone()
        }
    }
}

/// Copies bytes both ways until each side closes.
fn forward(client: TcpStream, server: TcpStream) {
    let pairs = [
        (client.try_clone(), server.try_clone()),
        (server.try_clone(), client.try_clone()),
    ];
    for pair in pairs {
        if let (Ok(mut from), Ok(mut to)) = pair {
            std::thread::spawn(move || {
                let _ = io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Write);
            });
        }
    }
}
