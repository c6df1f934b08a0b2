//! The helper side at the process boundary: every verb and every error, with
//! the exact bytes clients depend on. Runs against the kernel keyring, which
//! needs no daemon; `keyring.rs` repeats the round trips on the Secret Service.

use assert_cmd::Command;
use predicates::prelude::*;

use crate::util;

/// Our binary on the kernel keyring.
fn incus() -> Command {
    util::helper_on("keyutils")
}

/// A registry host unique to this test and process, so parallel tests and
/// earlier runs never share a key in the per-user kernel keyring.
fn host(test: &str) -> String {
    format!("{test}-{}.protocol.test", std::process::id())
}

fn store(url: &str, user: &str, secret: &str) {
    let request =
        serde_json::json!({"ServerURL": url, "Username": user, "Secret": secret}).to_string();
    incus()
        .arg("store")
        .write_stdin(request)
        .assert()
        .success()
        .stdout("");
}

fn get(url: &str) -> assert_cmd::assert::Assert {
    incus().arg("get").write_stdin(url.to_string()).assert()
}

fn erase(url: &str) {
    incus()
        .arg("erase")
        .write_stdin(url.to_string())
        .assert()
        .success()
        .stdout("");
}

fn list() -> std::collections::BTreeMap<String, String> {
    util::list_with(incus())
}

const NOT_FOUND: &str = "credentials not found in native keychain\n";

#[test]
fn get_prints_one_compact_json_line_echoing_the_url_as_asked() {
    let h = host("get-echo");
    store(&format!("https://{h}"), "user1", "secret1");
    get(&format!("{h}\n"))
        .success()
        .stdout(format!(
            "{{\"ServerURL\":\"{h}\",\"Username\":\"user1\",\"Secret\":\"secret1\"}}\n"
        ))
        .stderr("");
    erase(&h);
}

#[test]
fn get_gives_the_same_answer_with_or_without_newline_crlf_and_spaces() {
    let h = host("framing");
    store(&h, "u", "s");
    let expected = format!("{{\"ServerURL\":\"{h}\",\"Username\":\"u\",\"Secret\":\"s\"}}\n");
    for input in [
        h.clone(),
        format!("{h}\n"),
        format!("{h}\r\n"),
        format!("  {h} \t\r\n"),
    ] {
        get(&input).success().stdout(expected.clone());
    }
    erase(&h);
}

#[test]
fn get_of_unknown_url_prints_the_not_found_line_on_stdout_and_exits_1() {
    get(&host("unknown")).code(1).stdout(NOT_FOUND).stderr("");
}

#[test]
fn get_with_empty_stdin_is_the_missing_url_error() {
    for input in ["", "\n", " \r\n"] {
        incus()
            .arg("get")
            .write_stdin(input)
            .assert()
            .code(1)
            .stdout("no credentials server URL\n");
    }
}

#[test]
fn erase_with_empty_stdin_is_the_missing_url_error() {
    incus()
        .arg("erase")
        .write_stdin("")
        .assert()
        .code(1)
        .stdout("no credentials server URL\n");
}

#[test]
fn store_keys_match_case_insensitively_and_unknown_fields_are_ignored() {
    let h = host("casing");
    let request = format!(r#"{{"serverurl":"{h}","USERNAME":"u","secret":"s","Extra":{{"x":1}}}}"#);
    incus()
        .arg("store")
        .write_stdin(request)
        .assert()
        .success()
        .stdout("");
    get(&h).success().stdout(format!(
        "{{\"ServerURL\":\"{h}\",\"Username\":\"u\",\"Secret\":\"s\"}}\n"
    ));
    erase(&h);
}

#[test]
fn store_reads_the_request_with_a_trailing_newline_as_go_clients_send_it() {
    let h = host("encoder-newline");
    let request = format!("{{\"ServerURL\":\"{h}\",\"Username\":\"u\",\"Secret\":\"s\"}}\n");
    incus().arg("store").write_stdin(request).assert().success();
    get(&h).success();
    erase(&h);
}

#[test]
fn second_store_to_the_same_key_replaces_the_first() {
    let h = host("upsert");
    store(&h, "user1", "secret1");
    store(&h, "user1", "secret2");
    store(&format!("https://{h}/"), "user9", "secret9");
    get(&h).success().stdout(format!(
        "{{\"ServerURL\":\"{h}\",\"Username\":\"user9\",\"Secret\":\"secret9\"}}\n"
    ));
    let entries = list();
    let ours: Vec<_> = entries.keys().filter(|k| k.contains(&h)).collect();
    assert_eq!(ours, [&h], "one entry, under the ServerURL as first stored");
    erase(&h);
}

#[test]
fn store_without_server_url_is_the_missing_url_error_and_stores_nothing() {
    incus()
        .arg("store")
        .write_stdin(r#"{"ServerURL":"","Username":"user1","Secret":"secret1"}"#)
        .assert()
        .code(1)
        .stdout("no credentials server URL\n");
    assert!(!list().contains_key(""));
}

#[test]
fn store_without_username_is_the_missing_username_error_and_stores_nothing() {
    let h = host("no-user");
    incus()
        .arg("store")
        .write_stdin(format!(
            r#"{{"ServerURL":"{h}","Username":"","Secret":"secret1"}}"#
        ))
        .assert()
        .code(1)
        .stdout("no credentials username\n");
    get(&h).code(1).stdout(NOT_FOUND);
}

#[test]
fn store_of_broken_json_is_one_clear_line_that_never_quotes_the_input() {
    for request in [
        "{",
        "not json",
        r#"{"ServerURL":"h","Username":"u","Secret":"hunter2"#,
        r#"{"ServerURL":"h","Username":"u","Secret":1234}"#,
    ] {
        let out = incus()
            .arg("store")
            .write_stdin(request)
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
        assert!(text.starts_with("store request is not valid"), "{text:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("1234"),
            "{text:?}"
        );
    }
}

#[test]
fn store_of_empty_stdin_is_a_clear_error() {
    incus()
        .arg("store")
        .write_stdin("")
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with("store request is empty"));
}

#[test]
fn erase_of_an_absent_entry_succeeds_twice() {
    let h = host("erase-absent");
    erase(&h);
    erase(&h);
}

#[test]
fn erase_then_get_is_not_found() {
    let h = host("erase");
    store(&h, "u", "s");
    erase(&format!("http://{h}"));
    get(&h).code(1).stdout(NOT_FOUND);
}

#[test]
fn list_shows_the_server_url_as_stored_with_its_username() {
    let h = host("list");
    store(&format!("https://{h}/"), "lister", "s");
    assert_eq!(
        list().get(&format!("https://{h}/")).map(String::as_str),
        Some("lister")
    );
    erase(&h);
    assert!(!list().keys().any(|k| k.contains(&h)));
}

#[test]
fn list_ignores_stdin() {
    incus()
        .arg("list")
        .write_stdin("unused")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("{"));
}

#[test]
fn identity_token_username_round_trips_unchanged() {
    let h = host("token");
    store(&h, "<token>", "rt-placeholder");
    get(&h).success().stdout(format!(
        "{{\"ServerURL\":\"{h}\",\"Username\":\"\\u003ctoken\\u003e\",\"Secret\":\"rt-placeholder\"}}\n"
    ));
    erase(&h);
}

#[test]
fn secrets_keep_every_byte_including_surrounding_whitespace() {
    let h = host("whitespace");
    for secret in [
        "  sp ace\t",
        "line1\nline2\r\n",
        "\"quoted\" \\ back/slash",
        "ünïcødé €😀",
        "$(rm -rf /) `x` '$HOME'",
    ] {
        store(&h, "u", secret);
        let out = get(&h).success().get_output().stdout.clone();
        let answer: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(answer["Secret"], secret);
    }
    erase(&h);
}

#[test]
fn every_spelling_of_a_registry_finds_replaces_and_erases_one_entry() {
    let h = host("spellings");
    store(&format!("{h}:5000"), "u1", "s1");
    for spelling in [
        format!("{h}:5000"),
        format!("https://{h}:5000"),
        format!("http://{h}:5000/"),
        format!("HTTPS://{}:5000//", h.to_uppercase()),
    ] {
        get(&spelling)
            .success()
            .stdout(predicate::str::contains("\"Secret\":\"s1\""));
    }
    store(&format!("https://{h}:5000/"), "u2", "s2");
    get(&format!("{h}:5000"))
        .success()
        .stdout(predicate::str::contains("\"Secret\":\"s2\""));
    erase(&format!("https://{h}:5000"));
    get(&format!("{h}:5000")).code(1).stdout(NOT_FOUND);
}

#[test]
fn ports_are_different_registries() {
    let h = host("ports");
    store(&format!("{h}:5000"), "u", "s");
    get(&format!("{h}:5001")).code(1).stdout(NOT_FOUND);
    get(&h).code(1).stdout(NOT_FOUND);
    erase(&format!("{h}:5000"));
}

#[test]
fn ipv6_literals_with_ports_work() {
    // A unique port stands in for a unique host: the address is fixed.
    let port = 10000 + std::process::id() % 50000;
    let url = format!("[2001:db8::10]:{port}");
    store(&url, "user1", "secret1");
    get(&format!("https://[2001:DB8::10]:{port}/"))
        .success()
        .stdout(format!("{{\"ServerURL\":\"https://[2001:DB8::10]:{port}/\",\"Username\":\"user1\",\"Secret\":\"secret1\"}}\n"));
    erase(&url);
}

#[test]
fn a_repository_path_falls_back_to_the_registry_credential() {
    let h = host("paths");
    store(&h, "host-user", "s");
    get(&format!("{h}/team1/app:1.0"))
        .success()
        .stdout(predicate::str::contains("host-user"));
    store(&format!("{h}/team1"), "team-user", "s");
    get(&format!("{h}/team1/app"))
        .success()
        .stdout(predicate::str::contains("team-user"));
    get(&format!("{h}/team2/app"))
        .success()
        .stdout(predicate::str::contains("host-user"));
    erase(&format!("{h}/team1"));
    erase(&h);
}

#[test]
fn docker_hub_spellings_share_one_entry() {
    // The Hub key is one per user, so this test owns it: save and restore.
    let saved = get("docker.io").get_output().stdout.clone();
    store("https://index.docker.io/v1/", "hubuser", "hubsecret");
    for spelling in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "https://index.docker.io/v1/",
        "docker.io/library/alpine",
    ] {
        get(spelling)
            .success()
            .stdout(predicate::str::contains("\"Username\":\"hubuser\""));
    }
    erase("docker.io");
    get("https://index.docker.io/v1/").code(1).stdout(NOT_FOUND);
    if let Ok(old) = serde_json::from_slice::<serde_json::Value>(&saved) {
        store(
            "https://index.docker.io/v1/",
            old["Username"].as_str().unwrap(),
            old["Secret"].as_str().unwrap(),
        );
    }
}

#[test]
fn an_unusable_server_url_is_its_own_error_not_not_found() {
    for (input, start) in [
        ("oci://h", "unsupported scheme"),
        ("user:pw@h", "server URL must not contain user information"),
        ("h:99999", "server URL has an invalid port"),
    ] {
        let out = get(input).code(1).get_output().stdout.clone();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(start), "{input}: {text}");
        assert!(!text.contains("pw"), "{text}");
    }
}

#[test]
fn stdin_larger_than_the_limit_is_refused() {
    let big = vec![b'a'; 16 * 1024 * 1024 + 1];
    incus()
        .arg("get")
        .write_stdin(big)
        .assert()
        .code(1)
        .stdout("request on stdin is larger than the 16 MiB limit\n");
}

#[test]
fn stdin_that_is_not_utf8_is_refused() {
    incus()
        .arg("get")
        .write_stdin(vec![0xff, 0xfe, b'h'])
        .assert()
        .code(1)
        .stdout("request on stdin is not valid UTF-8\n");
}

#[test]
fn version_prints_one_line() {
    let expected = format!(
        "docker-credential-incus (docker-credential-incus) v{}\n",
        env!("CARGO_PKG_VERSION")
    );
    incus()
        .arg("version")
        .assert()
        .success()
        .stdout(expected.clone())
        .stderr("");
    incus()
        .arg("--version")
        .assert()
        .success()
        .stdout(expected.clone());
    incus().arg("-v").assert().success().stdout(expected);
}

#[test]
fn no_action_prints_the_usage_line_on_stdout_and_exits_1() {
    incus()
        .assert()
        .code(1)
        .stdout("Usage: docker-credential-incus <store|get|erase|list|version>\n")
        .stderr("");
}

#[test]
fn extra_arguments_print_the_usage_line_and_exit_1() {
    incus()
        .args(["get", "extra"])
        .assert()
        .code(1)
        .stdout("Usage: docker-credential-incus <store|get|erase|list|version>\n");
}

#[test]
fn unknown_action_is_named_on_stdout_and_exits_1() {
    incus()
        .arg("frobnicate")
        .assert()
        .code(1)
        .stdout("docker-credential-incus: unknown action: frobnicate\n")
        .stderr("");
}

#[test]
fn help_lists_the_protocol_verbs_and_exits_0() {
    incus().arg("--help").assert().success().stdout(
        predicate::str::contains("get")
            .and(predicate::str::contains("store"))
            .and(predicate::str::contains("DOCKER_CREDENTIAL_INCUS_STORE")),
    );
}
