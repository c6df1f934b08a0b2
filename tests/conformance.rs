//! The conformance tester, end to end: every broken fixture fails exactly the
//! checks it targets, our binary and `helpers/` pass, and the real
//! third-party helpers on the machine get the classification they deserve.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util;

const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-incus");

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// A component the test needs is absent: fail under CI, skip otherwise.
fn absent(what: &str) -> bool {
    !util::require_that(false, what)
}

fn on_path(program: &str) -> bool {
    util::find_program(program).is_some()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

fn conformance(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(BIN)
        .arg("conformance")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Check ids by status: `fail`, `warn`, `info`, `pass`, `skip`.
fn by_status(report: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in report["results"].as_array().unwrap() {
        map.entry(r["status"].as_str().unwrap().to_string())
            .or_default()
            .insert(r["id"].as_str().unwrap().to_string());
    }
    map
}

fn ids(report: &Value, status: &str) -> BTreeSet<String> {
    by_status(report).remove(status).unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn detail<'a>(report: &'a Value, id: &str) -> &'a str {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .and_then(|r| r["detail"].as_str())
        .unwrap_or_else(|| panic!("no result for {id}"))
}

fn consumer<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["consumer"].as_str().unwrap().starts_with(name))
        .unwrap()
}

/// Runs a fixture in a fresh state directory; checks that nothing is left.
fn run_fixture(name: &str, extra: &[&str]) -> (Run, Value) {
    let state = tempfile::tempdir().unwrap();
    let path = fixture(name);
    let mut args = vec![path.as_str(), "--format", "json"];
    args.extend_from_slice(extra);
    let run = conformance(
        &args,
        &[("DCI_FIXTURE_STATE", state.path().to_str().unwrap())],
    );
    let report = run.json();
    let left: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert!(left.is_empty(), "{name} left entries behind: {left:?}");
    assert_eq!(report["cleanup"], Value::Array(vec![]), "{name}");
    (run, report)
}

/// A fixture that must fail exactly `failed` (and warn exactly `warned`).
fn assert_fixture(name: &str, failed: &[&str], warned: &[&str]) -> Value {
    let (run, report) = run_fixture(name, &[]);
    assert_eq!(ids(&report, "fail"), set(failed), "{name}: {}", run.stdout);
    assert_eq!(ids(&report, "warn"), set(warned), "{name}: {}", run.stdout);
    assert_eq!(run.code, if failed.is_empty() { 0 } else { 1 }, "{name}");
    assert_eq!(report["mode"]["kind"], "writable", "{name}");
    report
}

#[test]
fn correct_fake_helper_passes_every_check() {
    let report = assert_fixture("good.sh", &[], &[]);
    assert!(
        ids(&report, "skip")
            .iter()
            .all(|id| id.starts_with("read_only_"))
    );
}

#[test]
fn not_found_on_stderr_fails_only_the_not_found_check() {
    let report = assert_fixture(
        "not-found-on-stderr.sh",
        &["get_unknown_server_reports_not_found"],
        &[],
    );
    assert!(detail(&report, "get_unknown_server_reports_not_found").contains("stderr"));
    assert_eq!(consumer(&report, "docker CLI")["verdict"], "fails");
}

#[test]
fn empty_credentials_for_unknown_server_fail_the_not_found_check() {
    let report = assert_fixture(
        "not-found-as-empty-credentials.sh",
        &["get_unknown_server_reports_not_found"],
        &[],
    );
    assert!(
        detail(&report, "get_unknown_server_reports_not_found")
            .starts_with("exit 0 with empty Username and Secret")
    );
}

#[test]
fn wrong_not_found_text_fails_only_the_not_found_check() {
    let report = assert_fixture(
        "wrong-not-found-text.sh",
        &["get_unknown_server_reports_not_found"],
        &[],
    );
    assert!(
        detail(&report, "get_unknown_server_reports_not_found").contains("`credential not found`")
    );
}

#[test]
fn text_before_the_json_fails_only_the_leading_text_check() {
    let report = assert_fixture("junk-before-json.sh", &["get_output_starts_with_json"], &[]);
    for c in report["consumers"].as_array().unwrap() {
        assert_eq!(c["verdict"], "fails", "{c}");
    }
}

#[test]
fn text_after_the_json_fails_only_the_trailing_text_check() {
    let report = assert_fixture(
        "trailing-text.sh",
        &["get_output_has_nothing_after_json"],
        &[],
    );
    assert_eq!(consumer(&report, "docker CLI")["verdict"], "works");
    assert_eq!(consumer(&report, "containers/image")["verdict"], "works");
    assert_eq!(consumer(&report, "Incus")["verdict"], "fails");
    assert_eq!(consumer(&report, "docker_credential")["verdict"], "fails");
    assert_eq!(consumer(&report, "oras")["verdict"], "fails");
}

#[test]
fn numeric_field_fails_only_the_string_values_check() {
    let report = assert_fixture(
        "non-string-value.sh",
        &["get_output_values_are_strings"],
        &[],
    );
    assert_eq!(consumer(&report, "Incus")["verdict"], "fails");
    assert_eq!(consumer(&report, "docker CLI")["verdict"], "works");
}

#[test]
fn lowercase_keys_fail_only_the_exact_keys_check() {
    let report = assert_fixture(
        "lowercase-keys.sh",
        &["get_output_has_username_and_secret"],
        &[],
    );
    assert_eq!(consumer(&report, "docker_credential")["verdict"], "fails");
    assert_eq!(consumer(&report, "oras")["verdict"], "works");
}

#[test]
fn untrimmed_stdin_fails_the_trailing_newline_check() {
    assert_fixture(
        "no-trim.sh",
        &["get_accepts_trailing_newline"],
        &["get_accepts_crlf", "get_accepts_surrounding_spaces"],
    );
}

#[test]
fn secret_on_stderr_fails_only_the_leak_check() {
    let report = assert_fixture(
        "leaks-secret-on-stderr.sh",
        &["stored_secrets_never_leak"],
        &[],
    );
    assert!(detail(&report, "stored_secrets_never_leak").contains("stderr of `store`"));
}

#[test]
fn store_that_keeps_nothing_fails_the_round_trip_and_skips_what_needs_it() {
    let report = assert_fixture(
        "store-forgets.sh",
        &["store_then_get_returns_the_credential"],
        &[],
    );
    let skipped = ids(&report, "skip");
    for id in [
        "list_shows_stored_urls_that_resolve",
        "identity_token_round_trips",
    ] {
        assert!(skipped.contains(id), "{id} not skipped");
    }
}

#[test]
fn list_keys_that_are_labels_fail_only_the_list_check() {
    let report = assert_fixture(
        "list-keys-unresolvable.sh",
        &["list_shows_stored_urls_that_resolve"],
        &[],
    );
    assert!(
        detail(&report, "list_shows_stored_urls_that_resolve").contains("Registry credentials for")
    );
}

#[test]
fn missing_server_url_only_warns() {
    assert_fixture("no-server-url.sh", &[], &["get_output_echoes_server_url"]);
}

#[test]
fn multi_line_answer_is_only_noted() {
    let report = assert_fixture("multi-line.sh", &[], &[]);
    assert!(ids(&report, "info").contains("get_output_is_one_line"));
    assert!(detail(&report, "get_output_is_one_line").contains("spans 3 lines"));
}

#[test]
fn hanging_get_fails_the_deadline_check_and_its_process_group_is_killed() {
    let state = tempfile::tempdir().unwrap();
    let path = fixture("hangs-on-get.sh");
    let run = conformance(
        &[&path, "--format", "json", "--timeout", "2"],
        &[("DCI_FIXTURE_STATE", state.path().to_str().unwrap())],
    );
    let report = run.json();
    assert_eq!(
        ids(&report, "fail"),
        set(&["calls_finish_within_deadline"]),
        "{}",
        run.stdout
    );
    assert_eq!(run.code, 1);
    // The helper's child (`sleep`) was in its process group: it must be dead
    // (gone, or a zombie waiting for init to reap it).
    let pid = std::fs::read_to_string(state.path().join("hang.pid")).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let alive = std::fs::read_to_string(&stat)
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .map(|r| r.trim_start().starts_with(|c| c != 'Z'))
            })
            .unwrap_or(false);
        if !alive {
            break;
        }
        assert!(
            Instant::now() < until,
            "the hung helper's child {pid} survived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = std::fs::read_dir(state.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json")
        })
        .count();
    assert_eq!(left, 0, "cleanup left entries behind");
}

#[test]
fn read_only_fixture_is_detected_and_its_write_checks_skipped() {
    let (run, report) = run_fixture("read-only.sh", &["--server-url", "ro-registry.invalid"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(report["mode"]["kind"], "read-only");
    assert!(ids(&report, "fail").is_empty());
    assert!(ids(&report, "pass").contains("read_only_store_refuses_clearly"));
    assert!(ids(&report, "pass").contains("get_output_echoes_server_url"));
    assert!(ids(&report, "skip").contains("store_then_get_returns_the_credential"));
    assert_eq!(
        detail(&report, "read_only_erase_behaviour"),
        "erase fails: exit 1: `not implemented`"
    );
    // The real credential it served never reaches the report.
    assert!(!run.stdout.contains("ro-secret-1"));
}

#[test]
fn report_never_prints_a_stored_secret() {
    let token = |text: &str| {
        text.match_indices("dciS").any(|(i, _)| {
            text[i + 4..]
                .chars()
                .take(16)
                .filter(char::is_ascii_alphanumeric)
                .count()
                == 16
        })
    };
    for name in [
        "leaks-secret-on-stderr.sh",
        "junk-before-json.sh",
        "trailing-text.sh",
    ] {
        for format in ["table", "json", "tap", "junit"] {
            let state = tempfile::tempdir().unwrap();
            let path = fixture(name);
            let run = conformance(
                &[&path, "--format", format, "--color", "always"],
                &[("DCI_FIXTURE_STATE", state.path().to_str().unwrap())],
            );
            assert!(
                !token(&run.stdout) && !token(&run.stderr),
                "{name} --format {format} printed a secret:\n{}",
                run.stdout
            );
        }
    }
}

#[test]
fn ci_formats_mark_failures() {
    let state = tempfile::tempdir().unwrap();
    let path = fixture("trailing-text.sh");
    let env = [("DCI_FIXTURE_STATE", state.path().to_str().unwrap())];
    let tap = conformance(&[&path, "--format", "tap"], &env);
    assert_eq!(tap.code, 1);
    assert!(tap.stdout.starts_with("TAP version 14\n"));
    assert!(tap.stdout.contains("\nnot ok "));
    assert!(
        tap.stdout
            .contains(" - get_output_has_nothing_after_json\n")
    );
    let junit = conformance(&[&path, "--format", "junit"], &env);
    assert_eq!(junit.code, 1);
    assert!(junit.stdout.contains("<testsuites"));
    assert!(
        junit
            .stdout
            .contains("name=\"get_output_has_nothing_after_json\"")
    );
    assert!(junit.stdout.contains("<failure"));
}

#[test]
fn only_and_skip_select_checks_by_id() {
    let state = tempfile::tempdir().unwrap();
    let path = fixture("good.sh");
    let env = [("DCI_FIXTURE_STATE", state.path().to_str().unwrap())];
    let run = conformance(
        &[
            &path,
            "--format",
            "json",
            "--only",
            "version_prints_a_line,missing_action_fails",
            "--skip",
            "missing_action_fails",
        ],
        &env,
    );
    let report = run.json();
    let all: BTreeSet<String> = by_status(&report).into_values().flatten().collect();
    assert_eq!(all, set(&["version_prints_a_line"]));
}

#[test]
fn usage_errors_exit_2() {
    let unknown = conformance(&[&fixture("good.sh"), "--only", "no_such_check"], &[]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown
            .stderr
            .contains("unknown check id \"no_such_check\""),
        "{}",
        unknown.stderr
    );
    let missing = conformance(&["surely-not-a-helper-xyz"], &[]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("docker-credential-surely-not-a-helper-xyz not found in PATH")
    );
    assert_eq!(conformance(&[], &[]).code, 2);
    assert_eq!(conformance(&["x", "--timeout", "0"], &[]).code, 2);
}

#[test]
fn list_checks_prints_the_catalogue() {
    let run = conformance(&["--list-checks", "--format", "json"], &[]);
    assert_eq!(run.code, 0);
    let entries = run.json();
    let first = &entries[0];
    assert_eq!(first["id"], "version_prints_a_line");
    for key in ["severity", "description", "rule", "source"] {
        assert!(first[key].is_string(), "{key}");
    }
}

#[cfg(unix)]
#[test]
fn interrupt_erases_what_the_run_stored() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let state = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .args([
            "conformance",
            &fixture("hangs-on-get.sh"),
            "--timeout",
            "5",
            "--format",
            "json",
        ])
        .env("DCI_FIXTURE_STATE", state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run has stored its first credential (get then hangs).
    let until = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_dir(state.path())
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".json"))
    {
        assert!(Instant::now() < until, "nothing was stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["interrupted"], true);
    let left = std::fs::read_dir(state.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json")
        })
        .count();
    assert_eq!(left, 0, "the interrupted run left its credential behind");
}

// ------------------------------------------------------------ our binary

fn assert_no_failures(run: &Run, what: &str) -> Value {
    let report = run.json();
    assert!(ids(&report, "fail").is_empty(), "{what}: {}", run.stdout);
    assert_eq!(run.code, 0, "{what}: {}", run.stderr);
    assert_eq!(report["mode"]["kind"], "writable", "{what}");
    report
}

#[test]
fn our_binary_passes_on_the_kernel_keyring() {
    if !util::require_that(
        util::keyutils_present(),
        "the kernel keyring (keyctl is blocked)",
    ) {
        return;
    }
    let run = conformance(
        &[BIN, "--format", "json"],
        &[("DOCKER_CREDENTIAL_INCUS_STORE", "keyutils")],
    );
    let report = assert_no_failures(&run, "keyutils");
    assert!(ids(&report, "warn").is_empty(), "{}", run.stdout);
}

#[test]
fn our_binary_passes_on_the_secret_service() {
    if !util::secret_service_present() && absent(util::NEED_SECRET_SERVICE) {
        return;
    }
    let run = conformance(
        &[BIN, "--format", "json"],
        &[("DOCKER_CREDENTIAL_INCUS_STORE", "secret-service")],
    );
    let report = assert_no_failures(&run, "secret-service");
    assert!(ids(&report, "warn").is_empty(), "{}", run.stdout);
}

/// How to configure a helper of `helpers/` so that it serves one registry;
/// helpers not listed here run as they are.
fn helper_setup(name: &str, dir: &Path) -> (Vec<(String, String)>, Option<&'static str>) {
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    match name {
        "docker-credential-static" => (
            env(&[
                ("DOCKER_CREDENTIAL_STATIC_USERNAME", "robot"),
                ("DOCKER_CREDENTIAL_STATIC_SECRET", "static-secret-1"),
                (
                    "DOCKER_CREDENTIAL_STATIC_REGISTRIES",
                    "static-registry.invalid",
                ),
            ]),
            Some("static-registry.invalid"),
        ),
        "docker-credential-script-template" => {
            let command = dir.join("secret-command");
            std::fs::write(
                &command,
                "#!/bin/sh\n[ \"$DOCKER_CREDENTIAL_REGISTRY\" = script-registry.invalid ] || exit 3\nprintf 'script-secret-1\\n'\n",
            )
            .unwrap();
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&command, std::fs::Permissions::from_mode(0o700)).unwrap();
            }
            (
                vec![(
                    "DOCKER_CREDENTIAL_SCRIPT_COMMAND".to_string(),
                    command.display().to_string(),
                )],
                Some("script-registry.invalid"),
            )
        }
        _ => (Vec::new(), None),
    }
}

#[test]
fn every_helper_in_helpers_dir_passes() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("helpers");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skip: no helpers/ directory yet");
        return;
    };
    let mut checked = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let executable = {
            use std::os::unix::fs::PermissionsExt;
            path.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        if !name.starts_with("docker-credential-") || !executable {
            continue;
        }
        let scratch = tempfile::tempdir().unwrap();
        let (env, server) = helper_setup(&name, scratch.path());
        let mut args = vec![path.to_str().unwrap(), "--format", "json"];
        if let Some(server) = server {
            args.extend(["--server-url", server]);
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let run = conformance(&args, &env);
        let report = run.json();
        assert!(ids(&report, "fail").is_empty(), "{name}: {}", run.stdout);
        assert_eq!(run.code, 0, "{name}");
        if server.is_some() {
            // The configured registry was really asked, so the output checks ran.
            assert!(
                ids(&report, "pass").contains("get_output_has_username_and_secret"),
                "{name}: {}",
                run.stdout
            );
        }
        checked += 1;
    }
    assert!(
        checked > 0,
        "helpers/ holds no executable docker-credential-* helper"
    );
}

// ------------------------------------------------------------ real helpers

#[test]
fn secretservice_helper_is_writable_and_only_overwrite_may_fail() {
    if !on_path("docker-credential-secretservice") && absent("docker-credential-secretservice") {
        return;
    }
    if !util::secret_service_present() && absent(util::NEED_SECRET_SERVICE) {
        return;
    }
    let run = conformance(
        &[
            "secretservice",
            "--format",
            "json",
            "--skip",
            "docker_hub_spellings_resolve",
        ],
        &[],
    );
    let report = run.json();
    assert_eq!(report["mode"]["kind"], "writable");
    // 0.6.4 keeps a second item when the username changes and returns either
    // one, so the overwrite check fails on some runs and not on others.
    let failed = ids(&report, "fail");
    assert!(
        failed.is_subset(&set(&["store_overwrites_existing"])),
        "{}",
        run.stdout
    );
    assert!(ids(&report, "warn").is_empty(), "{}", run.stdout);
    assert!(
        detail(&report, "url_variants_resolve")
            .starts_with("stored as H: resolves H; not https://H")
    );
    assert_eq!(report["cleanup"], Value::Array(vec![]));
}

#[test]
fn pass_helper_fails_not_found_and_warns_on_second_erase() {
    let ready = on_path("docker-credential-pass")
        && on_path("pass")
        && std::env::var_os("PASSWORD_STORE_DIR").is_some()
        && std::env::var_os("GNUPGHOME").is_some();
    if !ready
        && absent(
            "docker-credential-pass with an initialised pass store (PASSWORD_STORE_DIR, GNUPGHOME)",
        )
    {
        return;
    }
    let run = conformance(
        &[
            "pass",
            "--format",
            "json",
            "--skip",
            "docker_hub_spellings_resolve",
        ],
        &[],
    );
    let report = run.json();
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(report["mode"]["kind"], "writable");
    assert_eq!(
        ids(&report, "fail"),
        set(&["get_unknown_server_reports_not_found"]),
        "{}",
        run.stdout
    );
    assert_eq!(
        ids(&report, "warn"),
        set(&["erase_twice_is_harmless"]),
        "{}",
        run.stdout
    );
    assert!(
        detail(&report, "get_unknown_server_reports_not_found")
            .starts_with("exit 0 with empty Username and Secret")
    );
    assert!(detail(&report, "erase_twice_is_harmless").contains("is not in the password store"));
    assert_eq!(consumer(&report, "docker CLI")["verdict"], "works");
}

#[test]
fn ecr_login_helper_is_read_only_and_passes() {
    if !on_path("docker-credential-ecr-login") && absent("docker-credential-ecr-login") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let run = conformance(
        &["ecr-login", "--format", "json"],
        &[
            ("HOME", home.path().to_str().unwrap()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let report = run.json();
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(report["mode"]["kind"], "read-only");
    assert_eq!(
        report["mode"]["reason"],
        "store answered exit 1: `not implemented`"
    );
    assert!(
        ids(&report, "fail").is_empty() && ids(&report, "warn").is_empty(),
        "{}",
        run.stdout
    );
    assert!(ids(&report, "pass").contains("get_unknown_server_reports_not_found"));
    assert!(ids(&report, "pass").contains("read_only_store_refuses_clearly"));
    assert_eq!(
        detail(&report, "read_only_erase_behaviour"),
        "erase fails: exit 1: `not implemented`"
    );
    assert_eq!(
        detail(&report, "read_only_list_behaviour"),
        "list exits 0 with {} (no entries)"
    );
}

#[test]
fn gcloud_helper_offline_is_read_only_multi_line_without_server_url() {
    if !(on_path("docker-credential-gcloud") && on_path("gcloud"))
        && absent("docker-credential-gcloud and gcloud")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "ya29.offline-conformance-token").unwrap();
    let config = dir.path().join("gcloud");
    let config = config.to_str().unwrap();
    for (key, value) in [
        ("auth/access_token_file", token.to_str().unwrap()),
        ("artifacts/allow_unrecognized_registry", "true"),
    ] {
        let ok = Command::new("gcloud")
            .args(["config", "set", key, value])
            .env("CLOUDSDK_CONFIG", config)
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "gcloud config set {key}");
    }
    let run = conformance(
        &["gcloud", "--format", "json"],
        &[("CLOUDSDK_CONFIG", config)],
    );
    let report = run.json();
    assert_eq!(report["mode"]["kind"], "read-only", "{}", run.stdout);
    // It answers any server, an empty one included, with its token.
    assert_eq!(
        ids(&report, "fail"),
        set(&["get_empty_stdin_reports_missing_url"]),
        "{}",
        run.stdout
    );
    assert_eq!(
        ids(&report, "warn"),
        set(&[
            "version_prints_a_line",
            "unknown_action_fails",
            "get_output_echoes_server_url",
            "read_only_store_refuses_clearly",
        ]),
        "{}",
        run.stdout
    );
    assert!(ids(&report, "info").contains("get_output_is_one_line"));
    assert!(detail(&report, "get_output_echoes_server_url").contains("no ServerURL"));
    assert!(
        detail(&report, "read_only_store_refuses_clearly").starts_with("store exits 0 silently")
    );
    assert_eq!(
        detail(&report, "read_only_erase_behaviour"),
        "erase exits 0 silently (no-op)"
    );
    assert_eq!(consumer(&report, "containers/image")["verdict"], "fails");
    assert!(!run.stdout.contains("ya29.offline-conformance-token"));
}

#[test]
fn man_page_lists_every_check_and_option() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("man/docker-credential-incus-conformance.1"),
    )
    .unwrap();
    let catalogue = conformance(&["--list-checks", "--format", "json"], &[]).json();
    for entry in catalogue.as_array().unwrap() {
        let id = entry["id"].as_str().unwrap();
        assert!(page.contains(&format!(".B {id}\n")), "man page lacks {id}");
    }
    for option in [
        "read\\-only",
        "server\\-url",
        "timeout",
        "format",
        "only",
        "skip",
        "color",
        "list\\-checks",
    ] {
        assert!(
            page.contains(&format!("\\-\\-{option}")),
            "man page lacks --{option}"
        );
    }
}
