//! Real clients against the local registry, with our binary as their
//! credential helper: skopeo through `credHelpers`, and the docker CLI through
//! `credsStore` and `credHelpers` (its login and logout need no daemon). Each
//! runs once with the Secret Service and once with the kernel keyring.
//!
//! Every test has its own HOME, XDG dirs, auth files and registry port
//! ([`Registry::alias`]), and erases what it stored, also when it fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::str::contains;
use tempfile::TempDir;

use crate::util::{self, Registry};

/// The store a test forces with `DOCKER_CREDENTIAL_INCUS_STORE`.
#[derive(Clone, Copy, Debug)]
enum Store {
    SecretService,
    Keyutils,
}

impl Store {
    fn env_value(self) -> &'static str {
        match self {
            Store::SecretService => "secret-service",
            Store::Keyutils => "keyutils",
        }
    }

    /// Whether this run has the store; fails under CI when it does not.
    fn available(self) -> bool {
        match self {
            Store::SecretService => {
                util::require_that(util::secret_service_present(), util::NEED_SECRET_SERVICE)
            }
            Store::Keyutils => util::require_that(util::keyutils_present(), util::NEED_KEYUTILS),
        }
    }
}

/// A client's private world: HOME, XDG dirs, DOCKER_CONFIG, an auth file
/// path, and a PATH that starts with a directory holding our binary as
/// `docker-credential-incus`. Erases the registry's credential when dropped.
struct Sandbox {
    dir: TempDir,
    store: Store,
    registry: Registry,
}

impl Sandbox {
    /// Sets up the sandbox for `store` against a fresh alias of `registry`.
    fn new(store: Store, registry: &Registry) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("dci-real-clients.")
            .tempdir()
            .expect("temp dir");
        for sub in ["home", "run", "config", "data", "docker", "bin"] {
            std::fs::create_dir(dir.path().join(sub)).expect("create sandbox dir");
        }
        set_mode(&dir.path().join("run"), 0o700);
        std::os::unix::fs::symlink(
            util::helper_path(),
            dir.path().join("bin/docker-credential-incus"),
        )
        .expect("symlink the helper");
        Sandbox {
            dir,
            store,
            registry: registry.alias(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The registry auth file skopeo reads and writes (REGISTRY_AUTH_FILE).
    fn authfile(&self) -> PathBuf {
        self.path("auth.json")
    }

    /// Docker's config file.
    fn docker_config(&self) -> PathBuf {
        self.path("docker/config.json")
    }

    /// `program` with the sandbox environment.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let path = std::env::join_paths(std::iter::once(self.path("bin")).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .expect("PATH");
        let mut cmd = Command::new(program);
        cmd.env("HOME", self.path("home"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("REGISTRY_AUTH_FILE", self.authfile())
            .env("PATH", path)
            .env("DOCKER_CREDENTIAL_INCUS_STORE", self.store.env_value())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .timeout(std::time::Duration::from_secs(120));
        cmd
    }

    /// Our binary, through the sandbox PATH entry as clients run it.
    fn helper(&self) -> Command {
        self.command(self.path("bin/docker-credential-incus"))
    }

    /// What our `list` says, as a map.
    fn list(&self) -> BTreeMap<String, String> {
        util::list_with(self.helper())
    }

    /// Checks that `list` shows the registry with its user, and `get` gives
    /// back the password.
    fn assert_stored(&self) {
        let host = &self.registry.host;
        let listed = self.list();
        assert_eq!(
            listed.get(host),
            Some(&self.registry.user),
            "list should show {host} for {}: {listed:?}",
            self.registry.user
        );
        let out = self
            .helper()
            .arg("get")
            .write_stdin(host.as_str())
            .assert()
            .success();
        let got: serde_json::Value =
            serde_json::from_slice(&out.get_output().stdout).expect("get prints JSON");
        assert_eq!(got["ServerURL"], host.as_str());
        assert_eq!(got["Username"], self.registry.user.as_str());
        assert!(
            got["Secret"] == self.registry.password.as_str(),
            "get should give back the password that was logged in with"
        );
    }

    /// Checks that neither `list` nor `get` knows the registry any more.
    fn assert_erased(&self) {
        let host = &self.registry.host;
        let listed = self.list();
        assert!(
            !listed.contains_key(host),
            "{host} should be gone from list: {listed:?}"
        );
        self.helper()
            .arg("get")
            .write_stdin(host.as_str())
            .assert()
            .code(1)
            .stdout("credentials not found in native keychain\n");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self
            .helper()
            .arg("erase")
            .write_stdin(self.registry.host.as_str())
            .output();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The registry, the program and the store, or `None` (skip) outside CI.
fn setup(store: Store, program: &str) -> Option<(Sandbox, PathBuf)> {
    let registry = util::require(Registry::from_env(), util::NEED_REGISTRY)?;
    let program = util::require(
        util::find_program(program),
        &format!("{program} is not on PATH (scripts/install-deps installs it)"),
    )?;
    if !store.available() {
        return None;
    }
    Some((Sandbox::new(store, &registry), program))
}

/// skopeo login, inspect and logout with `credHelpers` pointing at us.
fn skopeo_round_trip(store: Store) {
    let Some((sb, skopeo)) = setup(store, "skopeo") else {
        return;
    };
    let reg = &sb.registry;
    std::fs::write(
        sb.authfile(),
        format!(r#"{{"credHelpers": {{"{}": "incus"}}}}"#, reg.host),
    )
    .expect("write auth.json");
    let inspect = || {
        let mut cmd = sb.command(&skopeo);
        cmd.args(["inspect", "--tls-verify=false", &reg.image_ref()]);
        cmd
    };

    // No credential yet: our helper says "not found", skopeo goes anonymous.
    inspect()
        .assert()
        .failure()
        .stderr(contains("unauthorized"));

    sb.command(&skopeo)
        .args([
            "login",
            "--tls-verify=false",
            "-u",
            &reg.user,
            "--password-stdin",
            &reg.host,
        ])
        .write_stdin(reg.password.as_str())
        .assert()
        .success()
        .stdout(contains("Login Succeeded"));
    sb.assert_stored();
    let authfile = std::fs::read_to_string(sb.authfile()).unwrap_or_default();
    assert!(
        !authfile.contains("\"auth\""),
        "with credHelpers skopeo should not write the password into auth.json: {authfile}"
    );

    inspect()
        .assert()
        .success()
        .stdout(contains(format!("\"Name\": \"{}/dcih/hello\"", reg.host)));

    sb.command(&skopeo)
        .args(["logout", &reg.host])
        .assert()
        .success();
    sb.assert_erased();
    inspect()
        .assert()
        .failure()
        .stderr(contains("unauthorized"));
}

#[test]
fn skopeo_with_secret_service() {
    skopeo_round_trip(Store::SecretService);
}

#[test]
fn skopeo_with_kernel_keyring() {
    skopeo_round_trip(Store::Keyutils);
}

/// How docker's config.json names our helper.
#[derive(Clone, Copy)]
enum DockerConfig {
    CredsStore,
    CredHelpers,
}

/// docker login and logout (no daemon needed) with our helper configured.
fn docker_round_trip(store: Store, config: DockerConfig) {
    let Some((sb, docker)) = setup(store, "docker") else {
        return;
    };
    let reg = &sb.registry;
    let json = match config {
        DockerConfig::CredsStore => r#"{"credsStore": "incus"}"#.to_string(),
        DockerConfig::CredHelpers => format!(r#"{{"credHelpers": {{"{}": "incus"}}}}"#, reg.host),
    };
    std::fs::write(sb.docker_config(), json).expect("write config.json");

    sb.command(&docker)
        .args(["login", "-u", &reg.user, "--password-stdin", &reg.host])
        .write_stdin(format!("{}\n", reg.password))
        .assert()
        .success()
        .stdout(contains("Login Succeeded"));
    sb.assert_stored();
    let written = std::fs::read_to_string(sb.docker_config()).expect("read config.json");
    assert!(
        !written.contains(&reg.password) && !written.contains("\"auth\":"),
        "docker should leave the password to the helper: {written}"
    );

    sb.command(&docker)
        .args(["logout", &reg.host])
        .assert()
        .success();
    sb.assert_erased();
}

#[test]
fn docker_creds_store_with_secret_service() {
    docker_round_trip(Store::SecretService, DockerConfig::CredsStore);
}

#[test]
fn docker_creds_store_with_kernel_keyring() {
    docker_round_trip(Store::Keyutils, DockerConfig::CredsStore);
}

#[test]
fn docker_cred_helpers_with_secret_service() {
    docker_round_trip(Store::SecretService, DockerConfig::CredHelpers);
}

#[test]
fn docker_cred_helpers_with_kernel_keyring() {
    docker_round_trip(Store::Keyutils, DockerConfig::CredHelpers);
}
