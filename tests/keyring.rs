//! The keyring stores for real: the Secret Service (a private gnome-keyring on
//! a private bus), the kernel keyring, and every way they fail: locked, no bus,
//! a bus that does not answer, keyutils blocked by seccomp, duplicate items,
//! size limits and many processes at once.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;
use predicates::prelude::*;

use crate::util;

const NOT_FOUND: &str = "credentials not found in native keychain\n";

fn bin() -> Command {
    util::helper()
}

fn on(store: &str) -> Command {
    util::helper_on(store)
}

fn host(test: &str) -> String {
    format!("{test}-{}.keyring.test", std::process::id())
}

fn project(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// True when a Secret Service answers; under CI its absence fails the test.
fn secret_service_present() -> bool {
    util::require_that(util::secret_service_present(), util::NEED_SECRET_SERVICE)
}

fn request(url: &str, user: &str, secret: &str) -> String {
    serde_json::json!({"ServerURL": url, "Username": user, "Secret": secret}).to_string()
}

/// The exact `get` answer: Go's key order; the values here need no escaping.
fn answer(url: &str, user: &str, secret: &str) -> String {
    format!("{{\"ServerURL\":\"{url}\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}\n")
}

#[test]
fn secret_service_round_trip_gives_the_exact_bytes() {
    if !secret_service_present() {
        return;
    }
    let h = host("ss-round-trip");
    on("secret-service")
        .arg("store")
        .write_stdin(request(&format!("https://{h}"), "user1", "secret1"))
        .assert()
        .success()
        .stdout("")
        .stderr("");
    on("secret-service")
        .arg("get")
        .write_stdin(h.clone())
        .assert()
        .success()
        .stdout(answer(&h, "user1", "secret1"))
        .stderr("");
    on("secret-service")
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "\"https://{h}\":\"user1\""
        )));
    on("secret-service")
        .arg("erase")
        .write_stdin(format!("http://{h}/"))
        .assert()
        .success()
        .stdout("");
    on("secret-service")
        .arg("get")
        .write_stdin(h)
        .assert()
        .code(1)
        .stdout(NOT_FOUND);
}

#[test]
fn secret_service_round_trips_a_one_mebibyte_unicode_secret() {
    if !secret_service_present() {
        return;
    }
    let h = host("ss-large");
    let secret: String = "é😀\"\\\u{1}<&>".repeat(1024 * 1024 / 12 + 1);
    assert!(secret.len() > 1024 * 1024);
    on("secret-service")
        .arg("store")
        .write_stdin(request(&h, "u", &secret))
        .assert()
        .success();
    let out = on("secret-service")
        .arg("get")
        .write_stdin(h.clone())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(
        got["Secret"] == secret.as_str(),
        "the large secret did not come back byte for byte"
    );
    on("secret-service")
        .arg("erase")
        .write_stdin(h)
        .assert()
        .success();
}

#[test]
fn kernel_keyring_refuses_a_record_over_its_limit_and_keeps_the_old_one() {
    let h = host("ku-limit");
    on("keyutils")
        .arg("store")
        .write_stdin(request(&h, "u", "old"))
        .assert()
        .success();
    let big = "x".repeat(40 * 1024);
    on("keyutils")
        .arg("store")
        .write_stdin(request(&h, "u", &big))
        .assert()
        .code(1)
        .stdout(
            predicate::str::starts_with(
                "the kernel keyring holds at most 32767 bytes per credential",
            )
            .and(predicate::str::ends_with("\n")),
        )
        .stdout(predicate::str::contains("nothing was stored"));
    on("keyutils")
        .arg("get")
        .write_stdin(h.clone())
        .assert()
        .success()
        .stdout(answer(&h, "u", "old"));
    on("keyutils")
        .arg("erase")
        .write_stdin(h)
        .assert()
        .success();
}

#[test]
fn locked_collection_is_a_clear_error_for_every_verb() {
    if !secret_service_present() {
        return;
    }
    // A private Secret Service of its own: locking the shared one would break
    // the tests running beside this one.
    let script = format!(
        r#"B={bin}
export DOCKER_CREDENTIAL_INCUS_STORE=secret-service
printf '%s' '{req}' | "$B" store || exit 90
dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
  org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/collection/login >/dev/null || exit 91
for verb in get erase; do printf locked.test | "$B" $verb; echo "rc=$?"; done
printf '%s' '{req}' | "$B" store; echo "rc=$?"
"$B" list; echo "rc=$?"
"#,
        bin = util::helper_path().display(),
        req = request("locked.test", "u", "s"),
    );
    let out = std::process::Command::new(project("scripts/with-secret-service"))
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "{text}");
    for pair in lines.chunks(2) {
        assert!(pair[0].starts_with("the Secret Service is locked and cannot prompt for a password: unlock the login keyring"), "{text}");
        assert_eq!(pair[1], "rc=1");
    }
}

#[test]
fn bus_that_does_not_answer_is_a_clean_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bus");
    // Accepts connections and never says a word, like a wedged dbus-daemon.
    let listener = UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(8).collect();
        std::thread::sleep(std::time::Duration::from_secs(30));
        drop(held);
    });
    for verb in ["get", "list", "store"] {
        let input = if verb == "store" {
            request("slow.test", "u", "s")
        } else {
            "slow.test".to_string()
        };
        on("secret-service")
            .arg(verb)
            .env("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}", socket.display()))
            .env("DOCKER_CREDENTIAL_INCUS_TIMEOUT", "1")
            .write_stdin(input)
            .assert()
            .code(1)
            .stdout("the Secret Service did not answer within 1s; is it waiting for a prompt? Set DOCKER_CREDENTIAL_INCUS_TIMEOUT to wait longer\n");
    }
}

#[test]
fn forced_secret_service_without_a_bus_says_so_and_never_not_found() {
    for verb in ["get", "list", "erase"] {
        on("secret-service")
            .arg(verb)
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
            .write_stdin("registry.example.test")
            .assert()
            .code(1)
            .stdout(predicate::str::starts_with(
                "the Secret Service is unavailable: cannot reach it on the session bus",
            ))
            .stdout(predicate::str::contains("not found in native keychain").not());
    }
}

#[test]
fn no_bus_stores_in_the_kernel_keyring_with_one_reboot_notice() {
    let runtime = tempfile::tempdir().unwrap();
    let h = host("no-bus");
    let headless = |verb: &str| {
        let mut cmd = bin();
        cmd.arg(verb)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("DOCKER_CREDENTIAL_INCUS_STORE")
            .env("XDG_RUNTIME_DIR", runtime.path());
        cmd
    };
    headless("store").write_stdin(request(&h, "u", "s")).assert().success().stdout("").stderr(
        "docker-credential-incus: no Secret Service on a session bus, so credentials are kept in the kernel keyring, which does not survive a reboot\n",
    );
    headless("get")
        .write_stdin(h.clone())
        .assert()
        .success()
        .stdout(answer(&h, "u", "s"))
        .stderr("");
    on("keyutils")
        .arg("get")
        .write_stdin(h.clone())
        .assert()
        .success();
    headless("erase").write_stdin(h.clone()).assert().success();
    on("keyutils")
        .arg("get")
        .write_stdin(h)
        .assert()
        .code(1)
        .stdout(NOT_FOUND);
}

#[test]
fn a_bus_without_a_secret_service_falls_back_to_the_kernel_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path={}/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let daemon = KillOnDrop(
        std::process::Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian package dbus) is needed"),
    );
    let socket = dir.path().join("bus");
    for _ in 0..200 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let h = host("bus-no-ss");
    let on_plain_bus = |verb: &str| {
        let mut cmd = bin();
        cmd.arg(verb)
            .env_remove("DOCKER_CREDENTIAL_INCUS_STORE")
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}", socket.display()),
            );
        cmd
    };
    on_plain_bus("store")
        .write_stdin(request(&h, "u", "s"))
        .assert()
        .success()
        .stderr(predicate::str::contains("kernel keyring"));
    on_plain_bus("get")
        .write_stdin(h.clone())
        .assert()
        .success()
        .stdout(answer(&h, "u", "s"));
    on_plain_bus("erase")
        .write_stdin(h.clone())
        .assert()
        .success();
    drop(daemon);
}

/// Kills and reaps a child when the test ends, also when it fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kernel_keyring_blocked_by_seccomp_is_a_clear_error() {
    for (verb, input) in [
        ("get", "h.test".to_string()),
        ("store", request("h.test", "u", "s")),
        ("list", String::new()),
    ] {
        let out = std::process::Command::new(project("tests/fixtures/without-keyutils"))
            .arg(util::helper_path())
            .arg(verb)
            .env("DOCKER_CREDENTIAL_INCUS_STORE", "keyutils")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                // `list` exits without reading stdin; a broken pipe is fine.
                let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
                child.wait_with_output()
            })
            .expect("python3-seccomp (Debian) runs the without-keyutils fixture");
        assert_eq!(out.status.code(), Some(1), "{verb}: {out:?}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "the kernel keyring is unavailable: the kernel refused keyutils calls (PermissionDenied); container seccomp profiles such as Docker's default block them. Run with a Secret Service session bus, or allow add_key and keyctl\n",
            "{verb}"
        );
    }
}

#[test]
fn the_same_item_twice_is_a_clear_error_and_erase_removes_both() {
    if !secret_service_present() {
        return;
    }
    let h = host("ss-duplicate");
    on("secret-service")
        .arg("store")
        .write_stdin(request(&h, "u", "s"))
        .assert()
        .success();
    // A second item with our attributes, in another collection.
    let status = std::process::Command::new("secret-tool")
        .args([
            "store",
            "--label=duplicate",
            "--collection=/org/freedesktop/secrets/collection/session",
            "service",
            "docker-credential-incus",
            "username",
            &h,
        ])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(br#"{"ServerURL":"x","Username":"x","Secret":"x"}"#)?;
            child.wait()
        })
        .expect("secret-tool (Debian libsecret-tools) is needed");
    assert!(status.success());
    let expected = format!(
        "the Secret Service holds 2 items for {h}; run `docker-credential-incus erase` for it to remove them all, then store it again\n"
    );
    on("secret-service")
        .arg("get")
        .write_stdin(h.clone())
        .assert()
        .code(1)
        .stdout(expected.clone());
    on("secret-service")
        .arg("store")
        .write_stdin(request(&h, "u", "s2"))
        .assert()
        .code(1)
        .stdout(expected);
    on("secret-service")
        .arg("erase")
        .write_stdin(h.clone())
        .assert()
        .success();
    on("secret-service")
        .arg("get")
        .write_stdin(h)
        .assert()
        .code(1)
        .stdout(NOT_FOUND);
}

#[test]
fn items_of_other_programs_are_never_listed_read_or_erased() {
    if !secret_service_present() {
        return;
    }
    let h = host("ss-foreign");
    let foreign = |args: &[&str], input: Option<&str>| {
        let mut child = std::process::Command::new("secret-tool")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("secret-tool (Debian libsecret-tools) is needed");
        if let Some(input) = input {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.stdin.take();
        child.wait_with_output().unwrap()
    };
    assert!(
        foreign(
            &[
                "store",
                "--label=other app",
                "service",
                &h,
                "username",
                "user1"
            ],
            Some("other-app-secret")
        )
        .status
        .success()
    );
    on("secret-service")
        .arg("get")
        .write_stdin(h.clone())
        .assert()
        .code(1)
        .stdout(NOT_FOUND);
    on("secret-service")
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains(h.as_str()).not());
    on("secret-service")
        .arg("store")
        .write_stdin(request(&h, "user1", "ours"))
        .assert()
        .success();
    on("secret-service")
        .arg("erase")
        .write_stdin(h.clone())
        .assert()
        .success();
    let theirs = foreign(&["lookup", "service", &h, "username", "user1"], None);
    assert_eq!(theirs.stdout, b"other-app-secret");
    foreign(&["clear", "service", &h, "username", "user1"], None);
}

#[test]
fn get_looks_in_the_kernel_keyring_when_the_secret_service_has_nothing() {
    if !secret_service_present() {
        return;
    }
    let h = host("both-stores");
    on("keyutils")
        .arg("store")
        .write_stdin(request(&h, "u", "from-keyutils"))
        .assert()
        .success();
    let mut auto = bin();
    auto.env_remove("DOCKER_CREDENTIAL_INCUS_STORE");
    auto.arg("get")
        .write_stdin(h.clone())
        .assert()
        .success()
        .stdout(answer(&h, "u", "from-keyutils"));
    bin()
        .env_remove("DOCKER_CREDENTIAL_INCUS_STORE")
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains(h.as_str()));
    bin()
        .env_remove("DOCKER_CREDENTIAL_INCUS_STORE")
        .arg("erase")
        .write_stdin(h.clone())
        .assert()
        .success();
    on("keyutils")
        .arg("get")
        .write_stdin(h)
        .assert()
        .code(1)
        .stdout(NOT_FOUND);
}

/// Runs `count` stores at once, with `get`s racing them, and returns the
/// exit codes of the stores and every answer a `get` saw.
fn parallel_stores(
    store: &str,
    urls: &[String],
    secrets: &[String],
) -> (Vec<Option<i32>>, Vec<Vec<u8>>) {
    let bin = util::helper_path();
    let spawn = |verb: &str, input: String| {
        let mut child = std::process::Command::new(bin)
            .arg(verb)
            .env("DOCKER_CREDENTIAL_INCUS_STORE", store)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child
    };
    let stores: Vec<_> = urls
        .iter()
        .zip(secrets)
        .map(|(u, s)| spawn("store", request(u, "user1", s)))
        .collect();
    let gets: Vec<_> = urls.iter().map(|u| spawn("get", u.clone())).collect();
    let codes = stores
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code())
        .collect();
    let seen = gets
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .filter(|o| o.status.success())
        .map(|o| o.stdout)
        .collect();
    (codes, seen)
}

fn check_parallel_stores_to_one_url(store: &str) {
    let h = host(&format!("parallel-one-{store}"));
    let urls = vec![h.clone(); 32];
    let secrets: Vec<String> = (0..32)
        .map(|i| format!("secret-{i}-{}", "x".repeat(i * 10)))
        .collect();
    let (codes, seen) = parallel_stores(store, &urls, &secrets);
    assert!(codes.iter().all(|c| *c == Some(0)), "{store}: {codes:?}");
    let is_one_input = |bytes: &[u8]| {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).expect("a get saw a half-written record");
        secrets.iter().any(|s| v["Secret"] == s.as_str()) && v["Username"] == "user1"
    };
    assert!(
        seen.iter().all(|b| is_one_input(b)),
        "{store}: a get saw a value that was never stored"
    );
    let last = on(store)
        .arg("get")
        .write_stdin(h.clone())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(is_one_input(&last));
    let listed = util::list_with(on(store));
    assert_eq!(
        listed.keys().filter(|k| k.contains(h.as_str())).count(),
        1,
        "{store}: one entry"
    );
    on(store).arg("erase").write_stdin(h).assert().success();
}

fn check_parallel_stores_to_many_urls(store: &str) {
    let urls: Vec<String> = (0..32)
        .map(|i| host(&format!("parallel-many-{store}-{i}")))
        .collect();
    let secrets: Vec<String> = (0..32).map(|i| format!("secret-{i}")).collect();
    let (codes, _) = parallel_stores(store, &urls, &secrets);
    assert!(codes.iter().all(|c| *c == Some(0)), "{store}: {codes:?}");
    let listed = util::list_with(on(store));
    for (url, secret) in urls.iter().zip(&secrets) {
        assert!(listed.contains_key(url), "{store}: {url} lost");
        on(store)
            .arg("get")
            .write_stdin(url.clone())
            .assert()
            .success()
            .stdout(answer(url, "user1", secret));
        on(store)
            .arg("erase")
            .write_stdin(url.clone())
            .assert()
            .success();
    }
}

#[test]
fn parallel_stores_to_one_url_all_succeed_on_the_kernel_keyring() {
    check_parallel_stores_to_one_url("keyutils");
}

#[test]
fn parallel_stores_to_many_urls_lose_nothing_on_the_kernel_keyring() {
    check_parallel_stores_to_many_urls("keyutils");
}

#[test]
fn parallel_stores_to_one_url_all_succeed_on_the_secret_service() {
    if secret_service_present() {
        check_parallel_stores_to_one_url("secret-service");
    }
}

#[test]
fn parallel_stores_to_many_urls_lose_nothing_on_the_secret_service() {
    if secret_service_present() {
        check_parallel_stores_to_many_urls("secret-service");
    }
}

#[test]
fn list_skips_a_broken_entry_and_get_of_it_says_what_to_do() {
    let good = host("list-good");
    let broken = host("list-broken");
    on("keyutils")
        .arg("store")
        .write_stdin(request(&good, "user1", "secret1"))
        .assert()
        .success();
    // An entry under our service name that is not our record, as a damaged
    // or foreign write would leave it.
    let status = std::process::Command::new("keyctl")
        .args(["session", "-", "sh", "-c"])
        .arg(format!(r#"keyctl add user 'keyring:{broken}@docker-credential-incus' 'not json' "$(keyctl get_persistent @s)" >/dev/null"#))
        .status()
        .expect("keyctl (Debian keyutils) is needed");
    assert!(status.success());
    let listed = String::from_utf8(
        on("keyutils")
            .arg("list")
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    assert!(
        listed.contains(&format!("\"{good}\":\"user1\"")),
        "{listed}"
    );
    assert!(!listed.contains(&broken), "{listed}");
    on("keyutils").arg("get").write_stdin(broken.clone()).assert().code(1).stdout(format!(
        "the kernel keyring entry for {broken} is not a docker-credential-incus record; erase it and store it again\n"
    ));
    on("keyutils")
        .arg("erase")
        .write_stdin(broken.clone())
        .assert()
        .success();
    on("keyutils")
        .arg("get")
        .write_stdin(broken)
        .assert()
        .code(1)
        .stdout(NOT_FOUND);
    on("keyutils")
        .arg("erase")
        .write_stdin(good)
        .assert()
        .success();
}
