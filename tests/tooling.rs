//! The client tooling through the binary: client, url, authfile, exec,
//! resolve, configure and import, against config fixtures, a fake helper in
//! tests/fixtures, and the real docker-credential-pass.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tempfile::TempDir;

const FAKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tooling-fake-helper"
);

/// A private HOME, runtime and config tree, and the fake helper's answer folder.
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("dci-tooling.")
            .tempdir()
            .unwrap();
        for sub in ["home", "run", "config", "fake/get", "global", "bin"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        fs::set_permissions(dir.path().join("run"), fs::Permissions::from_mode(0o700)).unwrap();
        Sandbox { dir }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// The environment that keeps the binary to this sandbox's files.
    fn envs(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        vec![
            ("HOME", self.path("home").into()),
            ("XDG_RUNTIME_DIR", self.path("run").into()),
            ("XDG_CONFIG_HOME", self.path("config").into()),
            ("INCUS_GLOBAL_CONF", self.path("global").into()),
            ("FAKE_DIR", self.path("fake").into()),
            ("PATH", self.search_path().into()),
        ]
    }

    /// Variables of the user's environment that would lead outside the sandbox.
    const REMOVED: [&'static str; 6] = [
        "DOCKER_CONFIG",
        "REGISTRY_AUTH_FILE",
        "DOCKER_AUTH_CONFIG",
        "INCUS_CONF",
        "DBUS_SESSION_BUS_ADDRESS",
        "DOCKER_CREDENTIAL_INCUS_STORE",
    ];

    /// A process with this sandbox's environment.
    fn process(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.envs(self.envs());
        for name in Self::REMOVED {
            cmd.env_remove(name);
        }
        cmd
    }

    /// The binary with only this sandbox's files in reach.
    fn cmd(&self) -> Command {
        Command::from_std(self.process(assert_cmd::cargo::cargo_bin("docker-credential-incus")))
    }

    fn search_path(&self) -> String {
        format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// The fake helper answers `get` for `query` with `stdout` and `rc`.
    fn answer(&self, query: &str, stdout: &str, rc: i32) {
        let file = self.path("fake/get").join(query.replace('/', "_"));
        fs::write(&file, stdout).unwrap();
        fs::write(format!("{}.rc", file.display()), rc.to_string()).unwrap();
    }

    fn calls(&self) -> String {
        fs::read_to_string(self.path("fake/calls")).unwrap_or_default()
    }

    /// Puts the fake helper on PATH as docker-credential-NAME.
    fn install_fake(&self, name: &str) {
        std::os::unix::fs::symlink(
            FAKE,
            self.path("bin").join(format!("docker-credential-{name}")),
        )
        .unwrap();
    }
}

fn creds_json(user: &str, secret: &str) -> String {
    json!({"Username": user, "Secret": secret}).to_string()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------- client

#[test]
fn client_get_turns_pretty_output_without_server_url_into_one_line() {
    let s = Sandbox::new();
    s.answer(
        "r.example.test",
        "{\n  \"Secret\": \"ya29.x\",\n  \"Username\": \"_dcgcloud_token\"\n}\n",
        0,
    );
    s.cmd()
        .args(["client", FAKE, "get", "r.example.test"])
        .assert()
        .success()
        .stdout("{\"ServerURL\":\"r.example.test\",\"Username\":\"_dcgcloud_token\",\"Secret\":\"ya29.x\"}\n");
    assert_eq!(s.calls(), "get\tr.example.test\n");
}

#[test]
fn client_get_reads_the_server_from_stdin_and_prints_pipeline_formats() {
    let s = Sandbox::new();
    s.answer("h:5000", &creds_json("u", "it's $secret"), 0);
    s.cmd()
        .args(["client", FAKE, "get", "--format", "env"])
        .write_stdin("h:5000\n")
        .assert()
        .success()
        .stdout("REGISTRY_SERVER_URL='h:5000'\nREGISTRY_USERNAME='u'\nREGISTRY_SECRET='it'\\''s $secret'\n");
    s.cmd()
        .args(["client", FAKE, "get", "h:5000", "--format", "secret"])
        .assert()
        .success()
        .stdout("it's $secret\n");
    s.cmd()
        .args(["client", FAKE, "get", "h:5000", "--format", "username"])
        .assert()
        .success()
        .stdout("u\n");
}

#[test]
fn client_not_found_exits_1_and_an_error_exits_2() {
    let s = Sandbox::new();
    s.cmd()
        .args(["client", FAKE, "get", "absent.example.test"])
        .assert()
        .code(1)
        .stdout("");
    s.answer("broken.example.test", "backend exploded\n", 1);
    let out = s
        .cmd()
        .args(["client", FAKE, "get", "broken.example.test"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(err.contains("tooling-fake-helper get failed for broken.example.test: exit status 1: `backend exploded`"), "{err}");
}

#[test]
fn client_error_withholds_helper_stdout_that_holds_a_secret() {
    let s = Sandbox::new();
    s.answer("leak.example.test", &creds_json("u", "hunter2-leaked"), 1);
    let out = s
        .cmd()
        .args(["client", FAKE, "get", "leak.example.test"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("hunter2"), "{err}");
    assert!(
        err.contains("withheld") && err.contains("leak.example.test"),
        "{err}"
    );
}

#[test]
fn client_treats_pass_style_empty_credentials_as_not_found() {
    let s = Sandbox::new();
    s.answer(
        "p.example.test",
        r#"{"ServerURL":"p.example.test","Username":"","Secret":""}"#,
        0,
    );
    s.cmd()
        .args(["client", FAKE, "get", "p.example.test"])
        .assert()
        .code(1);
}

#[test]
fn client_finds_helpers_with_or_without_the_prefix() {
    let s = Sandbox::new();
    s.install_fake("tfake");
    s.answer("h", &creds_json("u", "p"), 0);
    for name in ["tfake", "docker-credential-tfake"] {
        s.cmd()
            .args(["client", name, "get", "h", "--format", "username"])
            .assert()
            .success()
            .stdout("u\n");
    }
    s.cmd()
        .args(["client", "surely-absent-xyz", "get", "h"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "docker-credential-surely-absent-xyz not found in PATH",
        ));
}

#[test]
fn client_store_takes_the_secret_on_stdin_only() {
    let s = Sandbox::new();
    s.cmd()
        .args([
            "client",
            FAKE,
            "store",
            "h.example.test",
            "--username",
            "u1",
        ])
        .write_stdin("s3cr:t\n")
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(s.path("fake/stored")).unwrap(),
        "{\"ServerURL\":\"h.example.test\",\"Username\":\"u1\",\"Secret\":\"s3cr:t\"}"
    );
    s.cmd()
        .args(["client", FAKE, "store"])
        .write_stdin(r#"{"ServerURL":"h2","Username":"u2","Secret":"x"}"#)
        .assert()
        .success();
    s.cmd()
        .args(["client", FAKE, "erase", "h2"])
        .assert()
        .success();
    fs::write(s.path("fake/list"), "{\"h2\":\"u2\"}\n").unwrap();
    s.cmd()
        .args(["client", FAKE, "list"])
        .assert()
        .success()
        .stdout("{\"h2\":\"u2\"}\n");
}

// ---------------------------------------------------------------- url

const AWKWARD: &str = "+/=@:% é密\u{1F511}";

#[test]
fn url_round_trips_awkward_secrets_byte_for_byte() {
    let s = Sandbox::new();
    s.answer("r.example.test:5000", &creds_json("us:er?", AWKWARD), 0);
    // A username with ':' cannot be carried.
    s.cmd()
        .args(["url", "--helper", FAKE, "https://r.example.test:5000"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("contains ':'"));
    s.answer("r.example.test:5000", &creds_json("us er@", AWKWARD), 0);
    let url = s
        .cmd()
        .args(["url", "--helper", FAKE, "r.example.test:5000"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let url = String::from_utf8(url).unwrap();
    assert_eq!(
        url,
        "https://us%20er%40:%2B%2F%3D%40%3A%25%20%C3%A9%E5%AF%86%F0%9F%94%91@r.example.test:5000\n"
    );
    let decoded = s
        .cmd()
        .args(["url", "--decode", "--format", "secret"])
        .write_stdin(url.clone())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(decoded, format!("{AWKWARD}\n").into_bytes());
    s.cmd()
        .args(["url", "--decode"])
        .write_stdin(url)
        .assert()
        .success()
        .stdout(format!(
            "{{\"ServerURL\":\"https://r.example.test:5000\",\"Username\":\"us er@\",\"Secret\":\"{AWKWARD}\"}}\n"
        ));
}

#[test]
fn url_takes_a_credential_object_from_a_pipe() {
    let s = Sandbox::new();
    s.cmd()
        .args(["url", "https://h/v2/"])
        .write_stdin(r#"{"ServerURL":"h","Username":"u","Secret":"a b"}"#)
        .assert()
        .success()
        .stdout("https://u:a%20b@h/v2/\n");
}

#[test]
fn url_refuses_an_identity_token() {
    let s = Sandbox::new();
    s.cmd()
        .args(["url", "h"])
        .write_stdin(r#"{"Username":"<token>","Secret":"rt"}"#)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicates::str::contains("identity token"));
}

// ---------------------------------------------------------------- authfile

#[test]
fn authfile_is_0600_under_umask_022_and_leaves_no_temporary_file() {
    let s = Sandbox::new();
    s.answer("r.example.test", &creds_json("user1", "secret1"), 0);
    let out = s.path("out/auth.json");
    // Run the binary under umask 022 through sh.
    let mut sh = s.process("sh");
    sh.env(
        "BIN",
        assert_cmd::cargo::cargo_bin("docker-credential-incus"),
    );
    Command::from_std(sh)
        .args([
            "-c",
            "umask 022; exec \"$BIN\" authfile --helper \"$0\" --registry r.example.test -o \"$1\"",
            FAKE,
        ])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(mode(&out), 0o600);
    assert_eq!(mode(out.parent().unwrap()), 0o700);
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "{\n\t\"auths\": {\n\t\t\"r.example.test\": {\n\t\t\t\"auth\": \"dXNlcjE6c2VjcmV0MQ==\"\n\t\t}\n\t}\n}\n"
    );
    let names: Vec<_> = fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["auth.json"]);
}

#[test]
fn authfile_merges_into_an_existing_file_without_losing_entries() {
    let s = Sandbox::new();
    s.answer("r.example.test", &creds_json("new", "new"), 0);
    let out = s.path("auth.json");
    let before = "{\n  \"auths\": {\n    \"other.example.test\": {\n      \"auth\": \"eDp5\"\n    },\n    \"r.example.test\": {\n      \"auth\": \"b2xkOm9sZA==\"\n    }\n  },\n  \"credHelpers\": {\n    \"gcr.io\": \"gcloud\"\n  }\n}\n";
    fs::write(&out, before).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o644)).unwrap();
    s.cmd()
        .args([
            "authfile",
            "--helper",
            FAKE,
            "--registry",
            "https://r.example.test/",
            "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        before.replace("b2xkOm9sZA==", "bmV3Om5ldw==")
    );
    assert_eq!(mode(&out), 0o600);
}

#[test]
fn authfile_writes_an_identity_token_that_containers_image_honours() {
    let s = Sandbox::new();
    s.answer(
        "acr.example.test",
        &creds_json("<token>", "rt-placeholder"),
        0,
    );
    s.cmd()
        .args(["authfile", "--registry", &format!("acr.example.test={FAKE}"), "-o", "-"])
        .assert()
        .success()
        .stdout("{\n\t\"auths\": {\n\t\t\"acr.example.test\": {\n\t\t\t\"auth\": \"PHRva2VuPjo=\",\n\t\t\t\"identitytoken\": \"rt-placeholder\"\n\t\t}\n\t}\n}\n");
}

#[test]
fn authfile_keys_docker_hub_as_docker_io() {
    let s = Sandbox::new();
    s.answer(
        "https://index.docker.io/v1/",
        &creds_json("hubuser", "p"),
        0,
    );
    let out = s.path("hub.json");
    s.cmd()
        .args([
            "authfile",
            "--helper",
            FAKE,
            "--registry",
            "docker.io",
            "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(
        read_json(&out),
        json!({"auths": {"docker.io": {"auth": STANDARD.encode("hubuser:p")}}})
    );
    assert_eq!(s.calls(), "get\thttps://index.docker.io/v1/\n");
}

#[test]
fn authfile_writes_nothing_unless_every_registry_answers() {
    let s = Sandbox::new();
    s.answer("a.example.test", &creds_json("u", "p"), 0);
    let out = s.path("auth.json");
    fs::write(&out, "{}").unwrap();
    s.cmd()
        .args([
            "authfile",
            "--helper",
            FAKE,
            "--registry",
            "a.example.test",
            "--registry",
            "b.example.test",
            "-o",
        ])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "has no credentials for b.example.test",
        ));
    assert_eq!(fs::read_to_string(&out).unwrap(), "{}");
}

// ---------------------------------------------------------------- exec

#[test]
fn exec_exposes_a_private_authfile_and_removes_it_afterwards() {
    let s = Sandbox::new();
    s.answer("127.0.0.1:5000", &creds_json("user1", "secret1"), 0);
    let report = s.path("report");
    fs::create_dir(&report).unwrap();
    let script = r#"r=$1; f=$2
        cp "$REGISTRY_AUTH_FILE" "$r/content"
        printf %s "$f" > "$r/placeholder"; printf %s "$REGISTRY_AUTH_FILE" > "$r/env"
        stat -c %a "$f" > "$r/mode"; stat -c %a "$(dirname "$f")" > "$r/dirmode""#;
    s.cmd()
        .args([
            "exec",
            "--helper",
            FAKE,
            "--registry",
            "127.0.0.1:5000",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&report)
        .arg("{authfile}")
        .assert()
        .success();
    let read = |n: &str| fs::read_to_string(report.join(n)).unwrap();
    assert_eq!(read("placeholder"), read("env"));
    assert!(
        read("env").starts_with(s.path("run").to_str().unwrap()),
        "{}",
        read("env")
    );
    assert_eq!(read("mode").trim(), "600");
    assert_eq!(read("dirmode").trim(), "700");
    assert_eq!(
        serde_json::from_str::<Value>(&read("content")).unwrap(),
        json!({"auths": {"127.0.0.1:5000": {"auth": "dXNlcjE6c2VjcmV0MQ=="}}})
    );
    let authfile = PathBuf::from(read("env"));
    assert!(!authfile.exists());
    assert!(!authfile.parent().unwrap().exists());
}

#[test]
fn exec_passes_the_exit_code_through_and_cleans_up_after_failure() {
    let s = Sandbox::new();
    s.answer("h.example.test", &creds_json("u", "p"), 0);
    s.cmd()
        .args([
            "exec",
            "--helper",
            FAKE,
            "--registry",
            "h.example.test",
            "--",
            "sh",
            "-c",
            "exit 7",
        ])
        .assert()
        .code(7);
    assert_eq!(fs::read_dir(s.path("run")).unwrap().count(), 0);
    s.cmd()
        .args([
            "exec",
            "--helper",
            FAKE,
            "--registry",
            "h.example.test",
            "--",
            "no-such-command-xyz",
        ])
        .assert()
        .code(127);
    assert_eq!(fs::read_dir(s.path("run")).unwrap().count(), 0);
    s.cmd()
        .args([
            "exec",
            "--helper",
            FAKE,
            "--registry",
            "absent.example.test",
            "--",
            "true",
        ])
        .assert()
        .code(125)
        .stderr(predicates::str::contains(
            "has no credentials for absent.example.test",
        ));
}

fn exec_interrupted_by(signal: nix::sys::signal::Signal, expected: i32) {
    let s = Sandbox::new();
    s.answer("h.example.test", &creds_json("u", "p"), 0);
    let marker = s.path("authfile-path");
    let mut child = s
        .process(assert_cmd::cargo::cargo_bin("docker-credential-incus"))
        .args([
            "exec",
            "--helper",
            FAKE,
            "--registry",
            "h.example.test",
            "--",
            "sh",
            "-c",
        ])
        .arg(format!(
            "printf %s \"$REGISTRY_AUTH_FILE\" > {}.tmp; mv {0}.tmp {0}; exec sleep 30",
            marker.display()
        ))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !marker.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let authfile = PathBuf::from(fs::read_to_string(&marker).unwrap());
    assert!(authfile.exists());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(expected));
    assert!(!authfile.exists());
    assert_eq!(fs::read_dir(s.path("run")).unwrap().count(), 0);
}

#[test]
fn exec_removes_the_authfile_when_terminated() {
    exec_interrupted_by(nix::sys::signal::Signal::SIGTERM, 128 + 15);
}

#[test]
fn exec_removes_the_authfile_when_interrupted() {
    exec_interrupted_by(nix::sys::signal::Signal::SIGINT, 128 + 2);
}

// ---------------------------------------------------------------- resolve

fn resolve_json(s: &Sandbox, args: &[&str]) -> Value {
    let out = s
        .cmd()
        .arg("resolve")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn resolve_docker_prefers_cred_helpers_over_creds_store_for_any_spelling() {
    let s = Sandbox::new();
    write(
        &s.path("home/.docker/config.json"),
        r#"{"credsStore":"desktop","credHelpers":{"registry.example.test":"gcloud"}}"#,
    );
    for reference in [
        "https://registry.example.test",
        "registry.example.test/",
        "registry.example.test/app:1",
    ] {
        let v = resolve_json(&s, &[reference, "--tool", "docker"]);
        let step = &v["docker"]["steps"][0];
        assert_eq!(step["helper"], "docker-credential-gcloud", "{reference}");
        assert_eq!(step["stdin"], "registry.example.test", "{reference}");
    }
    let v = resolve_json(&s, &["other.example.test", "--tool", "docker"]);
    assert_eq!(
        v["docker"]["steps"][0]["helper"],
        "docker-credential-desktop"
    );
}

#[test]
fn resolve_docker_asks_for_hub_by_its_v1_key() {
    let s = Sandbox::new();
    write(
        &s.path("home/.docker/config.json"),
        r#"{"credsStore":"incus"}"#,
    );
    let v = resolve_json(&s, &["alpine:3.20", "--tool", "docker"]);
    assert_eq!(v["registry"], "docker.io");
    assert_eq!(v["repository"], "library/alpine");
    assert_eq!(
        v["docker"]["steps"][0]["stdin"],
        "https://index.docker.io/v1/"
    );
}

#[test]
fn resolve_docker_empty_cred_helper_sends_it_to_the_file_past_creds_store() {
    let s = Sandbox::new();
    let auth = STANDARD.encode("user1:secret1");
    write(
        &s.path("home/.docker/config.json"),
        &format!(
            r#"{{"credsStore":"pass","credHelpers":{{"r.example.test":""}},"auths":{{"https://r.example.test/v2/":{{"auth":"{auth}"}}}}}}"#
        ),
    );
    let v = resolve_json(&s, &["r.example.test", "--tool", "docker"]);
    let step = &v["docker"]["steps"][0];
    assert_eq!(step["username"], "user1");
    assert!(step.get("helper").is_none());
    assert!(
        step["why"]
            .as_str()
            .unwrap()
            .contains("https://r.example.test/v2/")
    );
}

#[test]
fn resolve_docker_auto_detects_a_store_only_without_auth_data() {
    let s = Sandbox::new();
    // Only the sandbox's bin is on PATH, so what is installed is up to the test.
    let run = |s: &Sandbox| {
        let out = s
            .cmd()
            .env("PATH", s.path("bin"))
            .args(["resolve", "r.example.test", "--tool", "docker", "--json"])
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(run(&s)["docker"]["steps"], json!([]));
    s.install_fake("secretservice");
    assert_eq!(
        run(&s)["docker"]["steps"][0]["helper"],
        "docker-credential-secretservice"
    );
    s.install_fake("pass");
    std::os::unix::fs::symlink("/bin/true", s.path("bin/pass")).unwrap();
    assert_eq!(
        run(&s)["docker"]["steps"][0]["helper"],
        "docker-credential-pass"
    );
    write(
        &s.path("home/.docker/config.json"),
        r#"{"auths":{"x.example.test":{}}}"#,
    );
    assert_eq!(run(&s)["docker"]["steps"], json!([]));
}

#[test]
fn resolve_containers_reads_its_files_in_order_and_ignores_creds_store() {
    let s = Sandbox::new();
    // Runtime file: a docker-style empty marker, which passes to the next file.
    write(
        &s.path("run/containers/auth.json"),
        r#"{"auths":{"r.example.test":{}}}"#,
    );
    write(
        &s.path("config/containers/auth.json"),
        r#"{"credHelpers":{"r.example.test":"gcloud"}}"#,
    );
    write(
        &s.path("home/.docker/config.json"),
        &format!(
            r#"{{"credsStore":"incus","auths":{{"https://r.example.test/v1/":{{"auth":"{}"}}}}}}"#,
            STANDARD.encode("u:p")
        ),
    );
    let v = resolve_json(&s, &["r.example.test/team/app:1", "--tool", "containers"]);
    let steps = v["containers"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{v}");
    assert_eq!(steps[0]["helper"], "docker-credential-gcloud");
    assert_eq!(steps[0]["stdin"], "r.example.test");
    assert_eq!(steps[0]["falls_through"], true);
    assert_eq!(steps[1]["username"], "u");
    let notes = v["containers"]["notes"].to_string();
    assert!(notes.contains("credsStore \\\"incus\\\""), "{notes}");
    assert!(notes.contains("holds no usable credentials"), "{notes}");
}

#[test]
fn resolve_containers_prefers_namespaced_keys_and_honours_authfile_alone() {
    let s = Sandbox::new();
    let file = s.path("named.json");
    write(
        &file,
        &format!(
            r#"{{"auths":{{"q.example.test":{{"auth":"{}"}},"q.example.test/team":{{"auth":"{}"}}}}}}"#,
            STANDARD.encode("host:p"),
            STANDARD.encode("team:p")
        ),
    );
    write(
        &s.path("config/containers/auth.json"),
        r#"{"credHelpers":{"q.example.test":"gcloud"}}"#,
    );
    let v = resolve_json(
        &s,
        &[
            "q.example.test/team/app",
            "--tool",
            "containers",
            "--authfile",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(v["containers"]["steps"].as_array().unwrap().len(), 1);
    assert_eq!(v["containers"]["steps"][0]["username"], "team");
    let v = resolve_json(
        &s,
        &[
            "q.example.test/other/app",
            "--tool",
            "containers",
            "--authfile",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(v["containers"]["steps"][0]["username"], "host");
    // REGISTRY_AUTH_FILE counts as named by the user too.
    let out = s
        .cmd()
        .env("REGISTRY_AUTH_FILE", &file)
        .args([
            "resolve",
            "q.example.test/team/app",
            "--tool",
            "containers",
            "--json",
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["containers"]["steps"].as_array().unwrap().len(), 1);
}

#[test]
fn resolve_incus_finds_the_oci_remote_and_its_credentials_helper() {
    let s = Sandbox::new();
    write(
        &s.path("home/.config/incus/config.yml"),
        "default-remote: local\nremotes:\n  gar:\n    addr: https://us-docker.pkg.dev\n    protocol: oci\n    public: true\n    credentials_helper: docker-credential-gcloud\n  plain:\n    addr: https://us-docker.pkg.dev:8443\n    protocol: oci\n",
    );
    let v = resolve_json(&s, &["us-docker.pkg.dev/p/r/img:1", "--tool", "incus"]);
    let steps = v["incus"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["helper"], "docker-credential-gcloud");
    assert_eq!(steps[0]["stdin"], "us-docker.pkg.dev");
    assert!(v["incus"]["notes"].to_string().contains("<token>"));
}

#[test]
fn resolve_get_fetches_through_the_chosen_clients_chain() {
    let s = Sandbox::new();
    s.install_fake("tfake");
    write(
        &s.path("run/containers/auth.json"),
        r#"{"credHelpers":{"r.example.test":"tfake"}}"#,
    );
    write(
        &s.path("home/.docker/config.json"),
        &format!(
            r#"{{"auths":{{"r.example.test":{{"auth":"{}"}}}}}}"#,
            STANDARD.encode("fileuser:filepass")
        ),
    );
    // The helper finds nothing, so containers tools go on to docker's file.
    s.cmd()
        .args(["resolve", "r.example.test", "--tool", "containers", "--get"])
        .assert()
        .success()
        .stdout("{\"ServerURL\":\"r.example.test\",\"Username\":\"fileuser\",\"Secret\":\"filepass\"}\n");
    assert_eq!(s.calls(), "get\tr.example.test\n");
    s.answer("r.example.test", &creds_json("helperuser", "hp"), 0);
    s.cmd()
        .args([
            "resolve",
            "r.example.test",
            "--tool",
            "containers",
            "--get",
            "--format",
            "username",
        ])
        .assert()
        .success()
        .stdout("helperuser\n");
}

#[test]
fn resolve_without_any_source_exits_1() {
    let s = Sandbox::new();
    s.cmd()
        .env("PATH", s.path("bin"))
        .args(["resolve", "nothing.example.test"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains(
            "docker:\n  no credentials: anonymous access\n",
        ));
}

// ---------------------------------------------------------------- configure

const DOCKER_CONFIG: &str = "{\n\t\"auths\": {\n\t\t\"r.example.test\": {}\n\t},\n\t\"psFormat\": \"table {{.ID}}\",\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\"\n\t},\n\t\"currentContext\": \"default\"\n}";

#[test]
fn configure_docker_and_undo_leave_the_rest_of_the_file_unchanged() {
    let s = Sandbox::new();
    let path = s.path("home/.docker/config.json");
    write(&path, DOCKER_CONFIG);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    s.cmd().args(["configure", "docker"]).assert().success();
    let configured = read_json(&path);
    let mut expected: Value = serde_json::from_str(DOCKER_CONFIG).unwrap();
    expected["credsStore"] = json!("incus");
    assert_eq!(configured, expected);
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .ends_with("\n\t\"credsStore\": \"incus\"\n}")
    );
    let backup = s.path("home/.docker/config.json.docker-credential-incus.bak");
    assert_eq!(fs::read_to_string(&backup).unwrap(), DOCKER_CONFIG);
    assert_eq!(mode(&backup), 0o600);
    s.cmd()
        .args(["configure", "docker", "--registry", "docker.io"])
        .assert()
        .success();
    assert_eq!(
        read_json(&path)["credHelpers"]["https://index.docker.io/v1/"],
        "incus"
    );
    s.cmd()
        .args(["configure", "docker", "--undo"])
        .assert()
        .success();
    assert_eq!(fs::read_to_string(&path).unwrap(), DOCKER_CONFIG);
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn configure_refuses_to_replace_another_helper_without_force() {
    let s = Sandbox::new();
    let path = s.path("home/.docker/config.json");
    let original = "{\n\t\"credsStore\": \"pass\",\n\t\"x\": 1\n}\n";
    write(&path, original);
    s.cmd()
        .args(["configure", "docker"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("names another helper (\"pass\")"));
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
    s.cmd()
        .args(["configure", "docker", "--registry", "gcr.io"])
        .assert()
        .success();
    s.cmd()
        .args(["configure", "docker", "--force"])
        .assert()
        .success();
    assert_eq!(read_json(&path)["credsStore"], "incus");
    s.cmd()
        .args(["configure", "docker", "--undo"])
        .assert()
        .success();
    assert_eq!(read_json(&path), json!({"credsStore": "pass", "x": 1}));
}

#[test]
fn configure_containers_sets_cred_helpers_and_undo_removes_them() {
    let s = Sandbox::new();
    let path = s.path("config/containers/auth.json");
    let original = format!(
        "{{\n\t\"auths\": {{\n\t\t\"keep.example.test\": {{\n\t\t\t\"auth\": \"{}\"\n\t\t}}\n\t}}\n}}",
        STANDARD.encode("u:p")
    );
    write(&path, &original);
    s.cmd()
        .args([
            "configure",
            "containers",
            "--registry",
            "docker.io",
            "--registry",
            "https://127.0.0.1:5000/",
        ])
        .assert()
        .success();
    assert_eq!(
        read_json(&path)["credHelpers"],
        json!({"docker.io": "incus", "127.0.0.1:5000": "incus"})
    );
    assert_eq!(
        read_json(&path)["auths"],
        serde_json::from_str::<Value>(&original).unwrap()["auths"]
    );
    s.cmd()
        .args(["configure", "containers", "--undo"])
        .assert()
        .success();
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
    s.cmd()
        .args(["configure", "containers"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("ignore credsStore"));
}

#[test]
fn configure_incus_sets_the_remote_helper_and_undo_reverts_it() {
    let s = Sandbox::new();
    let path = s.path("home/.config/incus/config.yml");
    let original = "default-remote: local\nremotes:\n  gar:\n    addr: https://us-docker.pkg.dev\n    protocol: oci\n    public: true\n  images:\n    addr: https://images.linuxcontainers.org\n    protocol: simplestreams\n    public: true\naliases: {}\n";
    write(&path, original);
    s.cmd()
        .args(["configure", "incus", "gar"])
        .assert()
        .success();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        doc["remotes"]["gar"]["credentials_helper"].as_str(),
        Some("docker-credential-incus")
    );
    let mut expected: serde_yaml_ng::Value = serde_yaml_ng::from_str(original).unwrap();
    expected["remotes"]["gar"].as_mapping_mut().unwrap().insert(
        "credentials_helper".into(),
        "docker-credential-incus".into(),
    );
    assert_eq!(doc, expected);
    s.cmd()
        .args(["configure", "incus", "images"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("only for oci remotes"));
    s.cmd()
        .args(["configure", "incus", "gar", "--undo"])
        .assert()
        .success();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        doc,
        serde_yaml_ng::from_str::<serde_yaml_ng::Value>(original).unwrap()
    );
}

// ---------------------------------------------------------------- import

/// Our own store for import tests: the kernel keyring (no bus needed), with
/// registry names unique to this run, erased afterwards.
struct Keyring<'a> {
    sandbox: &'a Sandbox,
    hosts: Vec<String>,
}

impl<'a> Keyring<'a> {
    fn open(sandbox: &'a Sandbox) -> Option<Keyring<'a>> {
        let ok = sandbox
            .cmd()
            .env("DOCKER_CREDENTIAL_INCUS_STORE", "keyutils")
            .arg("list")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            assert!(
                std::env::var("CI").is_err(),
                "the kernel keyring is not usable here (seccomp?)"
            );
            eprintln!("skipped: the kernel keyring is not usable here");
            return None;
        }
        Some(Keyring {
            sandbox,
            hosts: Vec::new(),
        })
    }

    fn host(&mut self, name: &str) -> String {
        let host = format!(
            "{name}-{}-{}.import.example.test",
            std::process::id(),
            self.hosts.len()
        );
        self.hosts.push(host.clone());
        host
    }

    fn cmd(&self) -> Command {
        let mut cmd = self.sandbox.cmd();
        cmd.env("DOCKER_CREDENTIAL_INCUS_STORE", "keyutils");
        cmd
    }

    fn get(&self, server: &str) -> String {
        let out = self.cmd().arg("get").write_stdin(server).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Keyring<'_> {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = self.cmd().arg("erase").write_stdin(host.as_str()).output();
        }
    }
}

#[test]
fn import_moves_plaintext_auths_into_the_keyring_and_keeps_a_backup() {
    let s = Sandbox::new();
    let Some(mut keyring) = Keyring::open(&s) else {
        return;
    };
    let (a, b) = (keyring.host("plain"), keyring.host("token"));
    let path = s.path("home/.docker/config.json");
    let original = format!(
        "{{\n\t\"auths\": {{\n\t\t\"{a}\": {{\n\t\t\t\"auth\": \"{}\",\n\t\t\t\"email\": \"e@example.test\"\n\t\t}},\n\t\t\"https://{b}/v1/\": {{\n\t\t\t\"auth\": \"{}\",\n\t\t\t\"identitytoken\": \"rt-1\"\n\t\t}},\n\t\t\"marker.example.test\": {{}}\n\t}},\n\t\"credsStore\": \"incus\"\n}}",
        STANDARD.encode(format!("user1:{AWKWARD}")),
        STANDARD.encode("x:")
    );
    write(&path, &original);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    keyring
        .cmd()
        .arg("import")
        .assert()
        .success()
        .stderr(predicates::str::contains(format!(
            "imported {a} (user user1)"
        )));
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!(
            "{{\n\t\"auths\": {{\n\t\t\"{a}\": {{\n\t\t\t\"email\": \"e@example.test\"\n\t\t}},\n\t\t\"https://{b}/v1/\": {{}},\n\t\t\"marker.example.test\": {{}}\n\t}},\n\t\"credsStore\": \"incus\"\n}}"
        )
    );
    let backup = s.path("home/.docker/config.json.docker-credential-incus.bak");
    assert_eq!(fs::read_to_string(&backup).unwrap(), original);
    assert_eq!(mode(&backup), 0o600);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        keyring.get(&a),
        format!("{{\"ServerURL\":\"{a}\",\"Username\":\"user1\",\"Secret\":\"{AWKWARD}\"}}\n")
    );
    assert_eq!(
        keyring.get(&b),
        format!(
            "{{\"ServerURL\":\"{b}\",\"Username\":\"\\u003ctoken\\u003e\",\"Secret\":\"rt-1\"}}\n"
        )
    );
}

#[test]
fn import_from_a_helper_maps_secretservice_labels_back_to_urls() {
    let s = Sandbox::new();
    let Some(mut keyring) = Keyring::open(&s) else {
        return;
    };
    let host = keyring.host("label");
    fs::write(
        s.path("fake/list"),
        json!({format!("Registry credentials for https://{host}"): "u", "empty.example.test": ""})
            .to_string(),
    )
    .unwrap();
    s.answer(
        &format!("https://{host}"),
        &creds_json("u", "from-label"),
        0,
    );
    s.answer("empty.example.test", r#"{"Username":"","Secret":""}"#, 0);
    keyring
        .cmd()
        .args(["import", "--from", FAKE])
        .assert()
        .success()
        .stderr(predicates::str::contains("skipped empty.example.test"));
    assert_eq!(
        keyring.get(&host),
        format!("{{\"ServerURL\":\"{host}\",\"Username\":\"u\",\"Secret\":\"from-label\"}}\n")
    );
}

/// A throwaway GnuPG home and pass store, as docker-credential-pass needs.
struct PassStore {
    dir: TempDir,
}

impl PassStore {
    fn new() -> Option<PassStore> {
        for tool in ["gpg", "pass", "docker-credential-pass", "gpgconf"] {
            if !std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success()
            {
                assert!(std::env::var("CI").is_err(), "{tool} is missing");
                eprintln!("skipped: {tool} is missing");
                return None;
            }
        }
        // gpg-agent's socket path must stay short.
        let dir = tempfile::Builder::new()
            .prefix("dcip.")
            .tempdir_in("/tmp")
            .unwrap();
        let store = PassStore { dir };
        fs::create_dir(store.gnupg()).unwrap();
        fs::set_permissions(store.gnupg(), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(store.gnupg().join("gpg.conf"), "pinentry-mode loopback\n").unwrap();
        fs::write(
            store.gnupg().join("gpg-agent.conf"),
            "allow-loopback-pinentry\n",
        )
        .unwrap();
        let ok = store
            .command("gpg")
            .args([
                "--batch",
                "--passphrase",
                "",
                "--quick-generate-key",
                "dci test <t@example.test>",
                "future-default",
                "default",
                "never",
            ])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let keys = store
            .command("gpg")
            .args(["--batch", "--list-secret-keys", "--with-colons"])
            .output()
            .unwrap();
        let fpr = String::from_utf8(keys.stdout)
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .unwrap();
        let init = store.command("pass").args(["init", &fpr]).output().unwrap();
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        Some(store)
    }

    fn gnupg(&self) -> PathBuf {
        self.dir.path().join("g")
    }

    fn command(&self, program: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.env("GNUPGHOME", self.gnupg())
            .env("PASSWORD_STORE_DIR", self.dir.path().join("s"));
        cmd
    }
}

impl Drop for PassStore {
    fn drop(&mut self) {
        let _ = self.command("gpgconf").args(["--kill", "all"]).output();
    }
}

#[test]
fn import_from_pass_copies_every_listed_entry() {
    let s = Sandbox::new();
    let Some(mut keyring) = Keyring::open(&s) else {
        return;
    };
    let Some(pass) = PassStore::new() else { return };
    let hosts = [keyring.host("pass-a"), keyring.host("pass-b")];
    for (i, host) in hosts.iter().enumerate() {
        let mut store = pass.command("docker-credential-pass");
        let mut child = store.arg("store").stdin(Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(json!({"ServerURL": format!("https://{host}"), "Username": format!("u{i}"), "Secret": format!("{AWKWARD}{i}")}).to_string().as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
    keyring
        .cmd()
        .env("GNUPGHOME", pass.gnupg())
        .env("PASSWORD_STORE_DIR", pass.dir.path().join("s"))
        .args(["import", "--from", "pass"])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "copied 2 credential(s) from docker-credential-pass",
        ));
    for (i, host) in hosts.iter().enumerate() {
        assert_eq!(
            keyring.get(host),
            format!(
                "{{\"ServerURL\":\"{host}\",\"Username\":\"u{i}\",\"Secret\":\"{AWKWARD}{i}\"}}\n"
            )
        );
    }
}

// ---------------------------------------------------------------- man pages

#[test]
fn every_tooling_option_is_in_its_man_page() {
    use clap::CommandFactory;
    let cli = dci::cli::Cli::command();
    let mut checked = 0;
    for name in [
        "client",
        "resolve",
        "authfile",
        "url",
        "exec",
        "configure",
        "import",
    ] {
        let path = format!(
            "{}/man/docker-credential-incus-{name}.1",
            env!("CARGO_MANIFEST_DIR")
        );
        let page = fs::read_to_string(&path).unwrap().replace("\\-", "-");
        let sub = cli.find_subcommand(name).unwrap();
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long().filter(|l| *l != "help") {
                assert!(
                    page.contains(&format!("--{long}")),
                    "{path} does not document --{long}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 25, "only {checked} options were checked");
}

#[test]
fn import_from_the_real_secretservice_helper_on_a_private_bus() {
    let s = Sandbox::new();
    let Some(mut keyring) = Keyring::open(&s) else {
        return;
    };
    for tool in [
        "dbus-daemon",
        "gnome-keyring-daemon",
        "docker-credential-secretservice",
    ] {
        if !std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            assert!(std::env::var("CI").is_err(), "{tool} is missing");
            eprintln!("skipped: {tool} is missing");
            return;
        }
    }
    let host = keyring.host("secretservice");
    let request =
        json!({"ServerURL": format!("https://{host}"), "Username": "ss-user", "Secret": AWKWARD})
            .to_string();
    // Its own bus, so that only this test's item is listed.
    let script = r#"printf '%s' "$REQUEST" | docker-credential-secretservice store || exit 90
        "$BIN" import --from secretservice"#;
    let mut cmd =
        s.process(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/with-secret-service"));
    cmd.args(["sh", "-c", script])
        .env("REQUEST", &request)
        .env(
            "BIN",
            assert_cmd::cargo::cargo_bin("docker-credential-incus"),
        )
        .env("DOCKER_CREDENTIAL_INCUS_STORE", "keyutils");
    Command::from_std(cmd)
        .assert()
        .success()
        .stderr(predicates::str::contains(format!(
            "imported https://{host} (user ss-user)"
        )));
    assert_eq!(
        keyring.get(&host),
        format!("{{\"ServerURL\":\"{host}\",\"Username\":\"ss-user\",\"Secret\":\"{AWKWARD}\"}}\n")
    );
}

#[test]
fn route_takes_credentials_from_the_store_the_protocol_verbs_use() {
    let s = Sandbox::new();
    let Some(mut keyring) = Keyring::open(&s) else {
        return;
    };
    let host = keyring.host("route");
    keyring
        .cmd()
        .arg("store")
        .write_stdin(json!({"ServerURL": format!("https://{host}/"), "Username": "<token>", "Secret": "rt-route"}).to_string())
        .assert()
        .success();
    keyring
        .cmd()
        .args(["authfile", "--route", "--registry", &host, "-o", "-"])
        .assert()
        .success()
        .stdout(format!("{{\n\t\"auths\": {{\n\t\t\"{host}\": {{\n\t\t\t\"auth\": \"PHRva2VuPjo=\",\n\t\t\t\"identitytoken\": \"rt-route\"\n\t\t}}\n\t}}\n}}\n"));
    keyring
        .cmd()
        .args([
            "exec",
            "--route",
            "--registry",
            &host,
            "--",
            "sh",
            "-c",
            "grep -q rt-route \"$REGISTRY_AUTH_FILE\"",
        ])
        .assert()
        .success();
    keyring
        .cmd()
        .args(["url", "--route", &host])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("identity token"));
}
