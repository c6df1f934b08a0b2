//! Routes through the binary (config file, static, script and helper
//! sources, delegation to real third-party helpers) and the sh helpers in
//! helpers/ (shellcheck, protocol cases, secret scripts against fake CLIs and
//! a real `pass`).

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use dci::protocol::{Credentials, write_credentials};

const NOT_FOUND: &str = "credentials not found in native keychain\n";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn helper_path(name: &str) -> PathBuf {
    root().join("helpers").join(name)
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// True when `tool` is on PATH. When it is not: under CI a failure, else a
/// skip line and false.
fn have(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is not installed, and CI needs it for this test"
        );
        println!("skipped: {tool} is not installed");
    }
    found
}

/// The exact `get` answer our binary writes for these credentials.
fn answer(url: &str, user: &str, secret: &str) -> String {
    let mut out = Vec::new();
    write_credentials(&mut out, &Credentials::new(url, user, secret)).unwrap();
    String::from_utf8(out).unwrap()
}

fn text(out: &Output) -> (String, Option<i32>) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

fn write_mode(path: &Path, content: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A config file in its own folder, and the binary pointed at it.
struct Routed {
    dir: tempfile::TempDir,
}

impl Routed {
    fn new(config: &str) -> Routed {
        let dir = tempfile::tempdir().unwrap();
        write_mode(&dir.path().join("config.json"), config, 0o600);
        Routed { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    fn cmd(&self, action: &str) -> Command {
        let mut cmd = Command::cargo_bin("docker-credential-incus").unwrap();
        cmd.arg(action)
            .env("DOCKER_CREDENTIAL_INCUS_CONFIG", self.path())
            .env_remove("DOCKER_CREDENTIAL_INCUS_STORE");
        cmd
    }

    fn run(&self, action: &str, input: &str) -> (String, Option<i32>) {
        text(&self.cmd(action).write_stdin(input).output().unwrap())
    }
}

const STATIC_DEFAULT: &str =
    r#""default": {"source": "static", "username": "anon", "secret_env": "DCI_TEST_UNSET_VAR"}"#;

#[test]
fn static_route_answers_get_with_exact_bytes() {
    let r = Routed::new(
        r#"{"routes": {"ghcr.io": {"source": "static", "username": "ci", "secret": "p<&>\"\\ü"}}}"#,
    );
    assert_eq!(
        r.run("get", "https://ghcr.io/\n"),
        (answer("https://ghcr.io/", "ci", "p<&>\"\\ü"), Some(0))
    );
}

#[test]
fn readable_config_with_inline_secret_is_refused() {
    let r = Routed::new(
        r#"{"routes": {"ghcr.io": {"source": "static", "username": "ci", "secret": "hunter2"}}}"#,
    );
    write_mode(
        &r.path(),
        &std::fs::read_to_string(r.path()).unwrap(),
        0o644,
    );
    let p = r.path().display().to_string();
    assert_eq!(
        r.run("get", "ghcr.io"),
        (
            format!(
                "config {p} holds an inline secret (route \"ghcr.io\") but its mode 0644 lets group or others read it; run chmod 600 {p}\n"
            ),
            Some(1)
        )
    );
}

#[test]
fn config_that_others_can_change_is_refused() {
    let r = Routed::new(
        r#"{"routes": {"a.test": {"source": "script", "command": ["sh", "-c", "echo s"], "username": "u"}}}"#,
    );
    write_mode(
        &r.path(),
        &std::fs::read_to_string(r.path()).unwrap(),
        0o666,
    );
    let p = r.path().display().to_string();
    assert_eq!(
        r.run("get", "a.test"),
        (
            format!(
                "config {p} can be changed by group or others (mode 0666); it names commands to run, so run chmod go-w {p}\n"
            ),
            Some(1)
        )
    );
    // Readable by others is fine when it holds no inline secret.
    write_mode(
        &r.path(),
        &std::fs::read_to_string(r.path()).unwrap(),
        0o644,
    );
    assert_eq!(r.run("get", "a.test").1, Some(0));
}

#[test]
fn read_only_route_refuses_store_in_one_line() {
    let r = Routed::new(
        r#"{"routes": {"ghcr.io": {"source": "static", "username": "ci", "secret": "s"}}}"#,
    );
    let p = r.path().display().to_string();
    assert_eq!(
        r.run(
            "store",
            "{\"ServerURL\":\"ghcr.io\",\"Username\":\"u\",\"Secret\":\"hunter2\"}\n"
        ),
        (
            format!("store not supported: route \"ghcr.io\" (static) in {p} is read-only\n"),
            Some(1)
        )
    );
}

#[test]
fn config_named_by_env_must_exist() {
    let mut cmd = Command::cargo_bin("docker-credential-incus").unwrap();
    let out = cmd
        .arg("get")
        .env("DOCKER_CREDENTIAL_INCUS_CONFIG", "/nonexistent/dci.json")
        .write_stdin("h")
        .output()
        .unwrap();
    assert_eq!(
        text(&out),
        (
            "DOCKER_CREDENTIAL_INCUS_CONFIG names /nonexistent/dci.json, which does not exist; create it or unset DOCKER_CREDENTIAL_INCUS_CONFIG\n".to_string(),
            Some(1)
        )
    );
}

#[test]
fn invalid_config_is_one_line_naming_file_and_route() {
    let r = Routed::new(
        r#"{"routes": {"*.pkg.dev": {"source": "script", "command": "gcloud auth print-access-token"}}}"#,
    );
    let p = r.path().display().to_string();
    assert_eq!(
        r.run("get", "us-docker.pkg.dev"),
        (
            format!(
                "config {p}: route \"*.pkg.dev\": \"command\" must be a list such as [\"gcloud\", \"auth\", \"print-access-token\"], not a shell string\n"
            ),
            Some(1)
        )
    );
}

#[test]
fn script_route_gets_the_registry_in_env_and_keeps_inner_newlines() {
    let r = Routed::new(&format!(
        r#"{{"routes": {{"*.example.test": {{"source": "script", "command": ["{}"], "username": "tok"}}}}, {STATIC_DEFAULT}}}"#,
        fixture("secret-from-env").display()
    ));
    let out = r
        .cmd("get")
        .env("FAKE_SECRET", "a\n\"b\"\n")
        .write_stdin("https://r.example.test/x/")
        .output()
        .unwrap();
    assert_eq!(
        text(&out),
        (
            answer("https://r.example.test/x/", "tok", "a\n\"b\"\n"),
            Some(0)
        )
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "asked for r.example.test (https://r.example.test/x/) key r.example.test/x\n"
    );
}

#[test]
fn script_route_none_code_is_the_not_found_text() {
    let r = Routed::new(&format!(
        r#"{{"routes": {{"*.example.test": {{"source": "script", "command": ["{}"], "username": "tok"}}}}}}"#,
        fixture("secret-from-env").display()
    ));
    let out = r
        .cmd("get")
        .env("FAKE_EXIT", "3")
        .write_stdin("r.example.test")
        .output()
        .unwrap();
    assert_eq!(text(&out), (NOT_FOUND.to_string(), Some(1)));
}

#[test]
fn list_merges_static_routes() {
    let r = Routed::new(&format!(
        r#"{{"routes": {{
            "ghcr.io": {{"source": "static", "username": "ci", "secret": "s"}},
            "https://index.docker.io/v1/": {{"source": "static", "username": "hub", "secret": "s"}},
            "*.example.test": {{"source": "static", "username": "wild", "secret": "s"}}
        }}, {STATIC_DEFAULT}}}"#
    ));
    assert_eq!(
        r.run("list", ""),
        (
            "{\"docker.io\":\"hub\",\"ghcr.io\":\"ci\"}\n".to_string(),
            Some(0)
        )
    );
}

/// docker-credential-gcloud, offline: a throwaway gcloud config whose
/// access token comes from a file.
#[test]
fn helper_route_delegates_to_docker_credential_gcloud() {
    if !have("gcloud") || !have("docker-credential-gcloud") {
        return;
    }
    let sdk = tempfile::tempdir().unwrap();
    let token = sdk.path().join("token");
    std::fs::write(&token, "ya29.offline-test-token").unwrap();
    for (key, value) in [
        ("auth/access_token_file", token.to_str().unwrap()),
        ("artifacts/allow_unrecognized_registry", "true"),
    ] {
        let status = std::process::Command::new("gcloud")
            .args(["config", "set", key, value])
            .env("CLOUDSDK_CONFIG", sdk.path())
            .output()
            .unwrap()
            .status;
        assert!(status.success(), "gcloud config set {key} failed");
    }
    let r = Routed::new(&format!(
        r#"{{"routes": {{"*.pkg.dev": {{"source": "helper", "helper": "gcloud", "env": {{"CLOUDSDK_CONFIG": "{}"}}}}}}, {STATIC_DEFAULT}}}"#,
        sdk.path().display()
    ));
    assert_eq!(
        r.run("get", "us-docker.pkg.dev"),
        (
            answer(
                "us-docker.pkg.dev",
                "_dcgcloud_token",
                "ya29.offline-test-token"
            ),
            Some(0)
        )
    );
}

/// A throwaway GnuPG home with one key and an initialised pass store;
/// the gpg-agent is stopped on drop.
struct PassEnv {
    dir: tempfile::TempDir,
}

impl PassEnv {
    fn new() -> Option<PassEnv> {
        if !have("pass") || !have("gpg") || !have("gpgconf") {
            return None;
        }
        // Short path: gpg-agent's socket lives in GNUPGHOME here.
        let dir = tempfile::Builder::new()
            .prefix("dcip")
            .tempdir_in("/tmp")
            .unwrap();
        let env = PassEnv { dir };
        std::fs::create_dir(env.gnupg()).unwrap();
        write_mode(
            &env.gnupg().join("gpg.conf"),
            "pinentry-mode loopback\n",
            0o600,
        );
        write_mode(
            &env.gnupg().join("gpg-agent.conf"),
            "allow-loopback-pinentry\n",
            0o600,
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(env.gnupg(), std::fs::Permissions::from_mode(0o700)).unwrap();
        env.run(&[
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-generate-key",
            "dci test <dci@example.test>",
            "future-default",
            "default",
            "never",
        ]);
        let listing = env.run(&["gpg", "--batch", "--list-secret-keys", "--with-colons"]);
        let fpr = String::from_utf8_lossy(&listing.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .expect("no key fingerprint");
        env.run(&["pass", "init", &fpr]);
        Some(env)
    }

    fn gnupg(&self) -> PathBuf {
        self.dir.path().join("g")
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn envs(&self) -> [(&'static str, PathBuf); 2] {
        [
            ("GNUPGHOME", self.gnupg()),
            ("PASSWORD_STORE_DIR", self.store()),
        ]
    }

    fn run(&self, argv: &[&str]) -> Output {
        let out = std::process::Command::new(argv[0])
            .args(&argv[1..])
            .envs(self.envs())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{argv:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for PassEnv {
    fn drop(&mut self) {
        let _ = std::process::Command::new("gpgconf")
            .args(["--kill", "all"])
            .envs(self.envs())
            .output();
    }
}

#[test]
fn helper_route_delegates_reads_and_writes_to_docker_credential_pass() {
    if !have("docker-credential-pass") {
        return;
    }
    let Some(pass) = PassEnv::new() else { return };
    let r = Routed::new(&format!(
        r#"{{"routes": {{"*.example.test": {{"source": "helper", "helper": "pass"}}}}, {STATIC_DEFAULT}}}"#
    ));
    let run = |action: &str, input: &str| {
        text(
            &r.cmd(action)
                .envs(pass.envs())
                .write_stdin(input)
                .output()
                .unwrap(),
        )
    };
    assert_eq!(
        run(
            "store",
            "{\"ServerURL\":\"r.example.test\",\"Username\":\"u1\",\"Secret\":\"p&ss ü\"}\n"
        ),
        (String::new(), Some(0))
    );
    assert_eq!(
        run("get", "r.example.test"),
        (answer("r.example.test", "u1", "p&ss ü"), Some(0))
    );
    assert_eq!(
        run("list", ""),
        ("{\"r.example.test\":\"u1\"}\n".to_string(), Some(0))
    );
    assert_eq!(run("erase", "r.example.test"), (String::new(), Some(0)));
    // docker-credential-pass answers an unknown server with empty
    // credentials and exit 0; the route turns that into not-found.
    assert_eq!(
        run("get", "r.example.test"),
        (NOT_FOUND.to_string(), Some(1))
    );
}

#[test]
fn secret_pass_prints_the_first_line_of_a_real_pass_entry() {
    let Some(pass) = PassEnv::new() else { return };
    let mut insert = std::process::Command::new("pass")
        .args(["insert", "-m", "docker/r.example.test:5000"])
        .envs(pass.envs())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    insert
        .stdin
        .take()
        .unwrap()
        .write_all(b" s3cret \"x\" \nuser: someone\n")
        .unwrap();
    assert!(insert.wait().unwrap().success());
    let run = |registry: &str| {
        std::process::Command::new(helper_path("secret-pass"))
            .envs(pass.envs())
            .env("DOCKER_CREDENTIAL_REGISTRY", registry)
            .output()
            .unwrap()
    };
    let out = run("r.example.test:5000");
    assert_eq!(text(&out), (" s3cret \"x\" \n".to_string(), Some(0)));
    assert_eq!(run("other.example.test").status.code(), Some(3));
}

#[test]
fn shellcheck_passes_on_every_helper() {
    if !have("shellcheck") {
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("helpers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 8, "helpers/ lost files: {files:?}");
    let out = std::process::Command::new("shellcheck")
        .args(["--shell=sh", "--severity=style"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs an sh helper with `action`, `input` on stdin and extra variables.
fn sh_helper(
    name: &str,
    action: &str,
    input: &[u8],
    env: &[(&str, &str)],
) -> (String, Option<i32>) {
    let out = std::process::Command::new(helper_path(name))
        .arg(action)
        .env_remove("DOCKER_CREDENTIAL_STATIC_SECRET")
        .env_remove("DOCKER_CREDENTIAL_STATIC_FILE")
        .env_remove("DOCKER_CREDENTIAL_SCRIPT_COMMAND")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input)?;
            child.wait_with_output()
        })
        .unwrap();
    text(&out)
}

/// A secret that needs every kind of JSON escape, and bytes beyond ASCII.
const HARD_SECRET: &str = "q\"b\\s/\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f} <&> ü€😀 \u{2028}\u{2029}";

#[test]
fn static_helper_escapes_like_the_binary() {
    let env = [
        ("DOCKER_CREDENTIAL_STATIC_USERNAME", "<token>"),
        ("DOCKER_CREDENTIAL_STATIC_SECRET", HARD_SECRET),
    ];
    assert_eq!(
        sh_helper(
            "docker-credential-static",
            "get",
            b"https://index.docker.io/v1/\n",
            &env
        ),
        (
            answer("https://index.docker.io/v1/", "<token>", HARD_SECRET),
            Some(0)
        )
    );
}

#[test]
fn static_helper_protocol_errors_are_exact_lines_on_stdout() {
    let env = [
        ("DOCKER_CREDENTIAL_STATIC_USERNAME", "u"),
        ("DOCKER_CREDENTIAL_STATIC_SECRET", "s"),
        ("DOCKER_CREDENTIAL_STATIC_REGISTRIES", "ghcr.io docker.io"),
    ];
    let h = |action: &str, input: &[u8]| sh_helper("docker-credential-static", action, input, &env);
    assert_eq!(h("get", b"quay.io"), (NOT_FOUND.to_string(), Some(1)));
    assert_eq!(
        h("get", b" \n"),
        ("no credentials server URL\n".to_string(), Some(1))
    );
    assert_eq!(
        h("get", b"HTTPS://GHCR.IO/team/"),
        (answer("HTTPS://GHCR.IO/team/", "u", "s"), Some(0))
    );
    assert_eq!(
        h(
            "store",
            b"{\"ServerURL\":\"ghcr.io\",\"Username\":\"u\",\"Secret\":\"x\"}\n"
        ),
        (
            "store not supported: docker-credential-static is read-only\n".to_string(),
            Some(1)
        )
    );
    assert_eq!(
        h("erase", b"ghcr.io"),
        (
            "erase not supported: docker-credential-static is read-only\n".to_string(),
            Some(1)
        )
    );
    assert_eq!(
        h("list", b""),
        (
            "{\"ghcr.io\":\"u\",\"docker.io\":\"u\"}\n".to_string(),
            Some(0)
        )
    );
    assert_eq!(
        h("frobnicate", b""),
        (
            "docker-credential-static: unknown action: frobnicate\n".to_string(),
            Some(1)
        )
    );
    assert_eq!(
        h("version", b""),
        (
            "docker-credential-static (docker-credential-incus helpers) v0.1.0\n".to_string(),
            Some(0)
        )
    );
}

#[test]
fn static_helper_can_ignore_writes() {
    let env = [
        ("DOCKER_CREDENTIAL_STATIC_USERNAME", "u"),
        ("DOCKER_CREDENTIAL_STATIC_SECRET", "s"),
        ("DOCKER_CREDENTIAL_STATIC_IGNORE_WRITES", "true"),
    ];
    assert_eq!(
        sh_helper("docker-credential-static", "store", b"{}", &env),
        (String::new(), Some(0))
    );
}

#[test]
fn static_helper_file_needs_mode_0600_and_matches_canonically() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    write_mode(
        &file,
        "# registry\tuser\tsecret\nGHCR.io\tci\t sp ace \"q\" \nr.example.test/team\tteam\tt1\nr.example.test\thost\th1\n",
        0o640,
    );
    let path = file.to_str().unwrap();
    let env = [("DOCKER_CREDENTIAL_STATIC_FILE", path)];
    let h = |action: &str, input: &[u8]| sh_helper("docker-credential-static", action, input, &env);
    assert_eq!(
        h("get", b"ghcr.io"),
        (
            format!(
                "docker-credential-static: {path} has mode -rw-r-----, so group or others can read it; run chmod 600 {path}\n"
            ),
            Some(1)
        )
    );
    write_mode(&file, &std::fs::read_to_string(&file).unwrap(), 0o600);
    assert_eq!(
        h("get", b"https://ghcr.io/"),
        (answer("https://ghcr.io/", "ci", " sp ace \"q\" "), Some(0))
    );
    assert_eq!(
        h("get", b"r.example.test/team/app"),
        (answer("r.example.test/team/app", "team", "t1"), Some(0))
    );
    assert_eq!(
        h("get", b"r.example.test/other"),
        (answer("r.example.test/other", "host", "h1"), Some(0))
    );
    assert_eq!(
        h("list", b""),
        (
            "{\"GHCR.io\":\"ci\",\"r.example.test/team\":\"team\",\"r.example.test\":\"host\"}\n"
                .to_string(),
            Some(0)
        )
    );
}

#[test]
fn static_helper_refuses_a_secret_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let out = std::process::Command::new(helper_path("docker-credential-static"))
        .arg("get")
        .env("DOCKER_CREDENTIAL_STATIC_USERNAME", "u")
        .env(
            "DOCKER_CREDENTIAL_STATIC_SECRET",
            std::ffi::OsStr::from_bytes(b"bad\xff"),
        )
        .env_remove("DOCKER_CREDENTIAL_STATIC_REGISTRIES")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    // Empty stdin comes first: the URL is checked before the secret.
    assert_eq!(
        text(&out),
        ("no credentials server URL\n".to_string(), Some(1))
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c");
    std::fs::write(&file, b"h\tu\tbad\xff\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        sh_helper(
            "docker-credential-static",
            "get",
            b"h",
            &[("DOCKER_CREDENTIAL_STATIC_FILE", file.to_str().unwrap())]
        ),
        (
            "docker-credential-static: secret is not valid UTF-8\n".to_string(),
            Some(1)
        )
    );
}

fn template(input: &[u8], env: &[(&str, &str)]) -> (String, Option<i32>) {
    let command = fixture("secret-from-env");
    let mut all = vec![(
        "DOCKER_CREDENTIAL_SCRIPT_COMMAND",
        command.to_str().unwrap(),
    )];
    all.extend_from_slice(env);
    let all: Vec<(&str, &str)> = all;
    sh_helper("docker-credential-script-template", "get", input, &all)
}

#[test]
fn script_template_keeps_every_byte_but_one_trailing_newline() {
    let secret = format!("{HARD_SECRET}\n\n");
    assert_eq!(
        template(
            b"https://us-docker.pkg.dev\n",
            &[
                ("FAKE_SECRET", &secret),
                ("DOCKER_CREDENTIAL_SCRIPT_USERNAME", "AWS")
            ]
        ),
        (answer("https://us-docker.pkg.dev", "AWS", &secret), Some(0))
    );
}

#[test]
fn script_template_exit_codes() {
    assert_eq!(
        template(b"h.example.test", &[("FAKE_EXIT", "3")]),
        (NOT_FOUND.to_string(), Some(1))
    );
    let command = fixture("secret-from-env");
    assert_eq!(
        template(b"h.example.test:5000/x", &[("FAKE_EXIT", "7")]),
        (
            format!(
                "docker-credential-script-template: {} failed for h.example.test:5000 with exit status 7\n",
                command.display()
            ),
            Some(1)
        )
    );
    assert_eq!(
        template(b"", &[]),
        ("no credentials server URL\n".to_string(), Some(1))
    );
    assert_eq!(
        sh_helper("docker-credential-script-template", "store", b"{}", &[]),
        (
            "store not supported: docker-credential-script-template is read-only\n".to_string(),
            Some(1)
        )
    );
    assert_eq!(
        sh_helper("docker-credential-script-template", "list", b"", &[]),
        ("{}\n".to_string(), Some(0))
    );
    assert_eq!(
        sh_helper("docker-credential-script-template", "get", b"h", &[]),
        (
            format!(
                "docker-credential-script-template: no secret command; set DOCKER_CREDENTIAL_SCRIPT_COMMAND or edit the settings in {}\n",
                helper_path("docker-credential-script-template").display()
            ),
            Some(1)
        )
    );
}

/// PATH with fake `gcloud`, `aws`, `az`, `op` and `vault`, each printing
/// `fake <name> <args>` as the secret.
fn fake_clis() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["gcloud", "aws", "az", "op", "vault"] {
        std::os::unix::fs::symlink(fixture("fake-cli"), dir.path().join(name)).unwrap();
    }
    dir
}

fn secret_script(
    name: &str,
    registry: &str,
    fakes: &Path,
    env: &[(&str, &str)],
) -> (String, Option<i32>) {
    let path = format!(
        "{}:{}",
        fakes.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(helper_path(name))
        .env("PATH", path)
        .env("DOCKER_CREDENTIAL_REGISTRY", registry)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    text(&out)
}

#[test]
fn secret_scripts_call_their_cli_for_matching_registries() {
    let fakes = fake_clis();
    let f = fakes.path();
    let cases = [
        (
            "secret-gcloud",
            "us-docker.pkg.dev",
            "fake gcloud auth print-access-token",
        ),
        (
            "secret-gcloud",
            "gcr.io",
            "fake gcloud auth print-access-token",
        ),
        (
            "secret-ecr",
            "123456789012.dkr.ecr.eu-west-3.amazonaws.com",
            "fake aws ecr get-login-password --region eu-west-3",
        ),
        (
            "secret-ecr",
            "public.ecr.aws",
            "fake aws ecr-public get-login-password --region us-east-1",
        ),
        (
            "secret-acr",
            "myreg.azurecr.io",
            "fake az acr login --name myreg --expose-token --output tsv --query accessToken",
        ),
        (
            "secret-op",
            "ghcr.io",
            "fake op read --no-newline op://docker/ghcr.io/password",
        ),
        (
            "secret-vault",
            "ghcr.io:443",
            "fake vault kv get -mount=secret -field=password docker/ghcr.io:443",
        ),
    ];
    for (script, registry, expected) in cases {
        assert_eq!(
            secret_script(script, registry, f, &[]),
            (format!("{expected}\n"), Some(0)),
            "{script} {registry}"
        );
    }
    assert_eq!(
        secret_script(
            "secret-gcloud",
            "r.example.test",
            f,
            &[
                ("SECRET_GCLOUD_ACCOUNT", "ci@example.test"),
                ("SECRET_GCLOUD_ANY_REGISTRY", "1")
            ]
        ),
        (
            "fake gcloud auth print-access-token --account=ci@example.test\n".to_string(),
            Some(0)
        )
    );
}

#[test]
fn secret_scripts_exit_3_for_registries_they_do_not_serve() {
    let fakes = fake_clis();
    for script in ["secret-gcloud", "secret-ecr", "secret-acr"] {
        assert_eq!(
            secret_script(script, "r.example.test", fakes.path(), &[]),
            (String::new(), Some(3)),
            "{script}"
        );
    }
}

#[test]
fn secret_script_failure_keeps_the_cli_status() {
    let fakes = fake_clis();
    assert_eq!(
        secret_script(
            "secret-gcloud",
            "gcr.io",
            fakes.path(),
            &[("FAKE_CLI_EXIT", "1")]
        ),
        (String::new(), Some(1))
    );
}

#[test]
fn template_with_a_secret_script_serves_a_route() {
    let fakes = fake_clis();
    let path = format!(
        "{}:{}",
        fakes.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let secret = helper_path("secret-ecr");
    let env = [
        ("PATH", path.as_str()),
        ("DOCKER_CREDENTIAL_SCRIPT_COMMAND", secret.to_str().unwrap()),
        ("DOCKER_CREDENTIAL_SCRIPT_USERNAME", "AWS"),
    ];
    let url = "1.dkr.ecr.us-east-1.amazonaws.com";
    assert_eq!(
        sh_helper(
            "docker-credential-script-template",
            "get",
            url.as_bytes(),
            &env
        ),
        (
            answer(
                url,
                "AWS",
                "fake aws ecr get-login-password --region us-east-1"
            ),
            Some(0)
        )
    );
    assert_eq!(
        sh_helper("docker-credential-script-template", "get", b"ghcr.io", &env),
        (NOT_FOUND.to_string(), Some(1))
    );
}

#[test]
fn man_page_example_config_is_valid() {
    let page = std::fs::read_to_string(root().join("man/docker-credential-incus.5")).unwrap();
    let example = page
        .split(".SH EXAMPLES\n.nf\n")
        .nth(1)
        .and_then(|rest| rest.split("\n.fi\n").next())
        .expect("EXAMPLES section with a .nf block");
    let config = dci::config::Config::parse(
        Path::new("/etc/example.json"),
        example.as_bytes(),
        Some(0o600),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.routes.len(), 6);
}

#[test]
fn config_is_found_in_the_user_config_folder() {
    let xdg = tempfile::tempdir().unwrap();
    let dir = xdg.path().join("docker-credential-incus");
    std::fs::create_dir(&dir).unwrap();
    write_mode(
        &dir.join("config.json"),
        r#"{"routes": {"ghcr.io": {"source": "static", "username": "ci", "secret": "s"}}}"#,
        0o600,
    );
    let out = Command::cargo_bin("docker-credential-incus")
        .unwrap()
        .arg("get")
        .env_remove("DOCKER_CREDENTIAL_INCUS_CONFIG")
        .env("XDG_CONFIG_HOME", xdg.path())
        .write_stdin("ghcr.io")
        .output()
        .unwrap();
    assert_eq!(text(&out), (answer("ghcr.io", "ci", "s"), Some(0)));
}

/// The cache in the real kernel keyring: a hit skips the script, the entry
/// never shows in `list`, and `erase` drops it.
#[test]
fn script_cache_in_the_kernel_keyring_skips_the_script_and_stays_unlisted() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let script = dir.path().join("script");
    write_mode(
        &script,
        &format!("#!/bin/sh\necho run >> {}\necho tok-1\n", runs.display()),
        0o700,
    );
    let host = format!("cache-{}.routes.test", std::process::id());
    let r = Routed::new(&format!(
        r#"{{"routes": {{"{host}": {{"source": "script", "command": ["{}"], "username": "u", "cache": {{"ttl": 600}}}}}}, {STATIC_DEFAULT}}}"#,
        script.display()
    ));
    let run = |action: &str| {
        text(
            &r.cmd(action)
                .env("DOCKER_CREDENTIAL_INCUS_STORE", "keyutils")
                .write_stdin(host.clone())
                .output()
                .unwrap(),
        )
    };
    let count = || std::fs::read_to_string(&runs).unwrap().lines().count();
    assert_eq!(run("get"), (answer(&host, "u", "tok-1"), Some(0)));
    assert_eq!(run("get"), (answer(&host, "u", "tok-1"), Some(0)));
    assert_eq!(count(), 1, "the second get should come from the cache");
    assert_eq!(run("list"), ("{}\n".to_string(), Some(0)));
    let erased = run("erase");
    assert_eq!(erased.1, Some(1));
    assert!(
        erased.0.starts_with("erase not supported: route"),
        "{}",
        erased.0
    );
    assert_eq!(run("get"), (answer(&host, "u", "tok-1"), Some(0)));
    assert_eq!(count(), 2, "erase should have dropped the cached answer");
    run("erase");
}
