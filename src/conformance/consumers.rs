//! What real consumers would make of the helper's answers: each consumer's
//! parsing and error rules, applied to the bytes the helper really printed.
//!
//! - docker CLI and containers/image (skopeo, podman) use the
//!   docker-credential-helpers Go client: exit ≠ 0 with the exact not-found
//!   text means "no credentials", stdout is decoded with `json.NewDecoder`
//!   (case-insensitive keys, text after the first value ignored).
//! - Incus (`shared/cliconfig/remote.go`) discards stdout on a non-zero exit,
//!   decodes stdout with `json.Unmarshal` into `map[string]string` and reads
//!   exactly `Username` and `Secret`; it has no identity-token support and
//!   percent-escapes the secret into skopeo's auth file (lxc/incus#3989).
//! - The Rust `docker_credential` crate (`src/helper.rs`) fails on any
//!   non-zero exit and decodes with `serde_json::from_slice` into a struct
//!   with exact PascalCase `Username` and `Secret`; trailing text is an error.
//! - oras-go (`registry/remote/credentials/native_store.go`) matches the
//!   not-found text like docker but decodes with `json.Unmarshal`, so
//!   trailing text is an error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::runner::{Ctx, Observed};
use crate::protocol::{self, ERR_NOT_FOUND, TOKEN_USERNAME};

/// Whether a consumer works with what the helper answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It works.
    Works,
    /// It fails because of the helper's answer.
    Fails,
    /// It fails by the consumer's own rule, whatever a helper answers
    /// (Incus and not-found, Incus and identity tokens…).
    Limited,
    /// The code does not say clearly what happens.
    Unclear,
}

impl Verdict {
    /// The word shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Works => "works",
            Verdict::Fails => "fails",
            Verdict::Limited => "limited",
            Verdict::Unclear => "unclear",
        }
    }
}

/// One consumer's verdict over every answer observed.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerReport {
    /// Display name.
    pub consumer: &'static str,
    /// Fails if any scenario fails, else limited, else works; unclear when
    /// nothing was observed.
    pub verdict: Verdict,
    /// One verdict per scenario observed.
    pub scenarios: Vec<ScenarioVerdict>,
}

/// A consumer's verdict on one kind of answer.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioVerdict {
    /// `credentials`, `not found`, `identity token` or `list`.
    pub scenario: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// What the consumer would do, and why. Never holds a secret.
    pub detail: String,
}

/// The consumers emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    /// docker CLI (docker-credential-helpers Go client).
    Docker,
    /// containers/image: skopeo, podman, buildah.
    ContainersImage,
    /// Incus `credentials_helper`.
    Incus,
    /// The Rust docker_credential crate.
    RustCrate,
    /// oras-go and the oras CLI.
    Oras,
}

impl Consumer {
    /// Every consumer, in report order.
    pub const ALL: [Consumer; 5] = [
        Consumer::Docker,
        Consumer::ContainersImage,
        Consumer::Incus,
        Consumer::RustCrate,
        Consumer::Oras,
    ];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Consumer::Docker => "docker CLI",
            Consumer::ContainersImage => "containers/image (skopeo, podman)",
            Consumer::Incus => "Incus",
            Consumer::RustCrate => "docker_credential (Rust crate)",
            Consumer::Oras => "oras (oras-go)",
        }
    }
}

/// What a consumer gets out of one `get` answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Reading {
    /// Credentials; `identity` when the username is `<token>` and the
    /// consumer treats it as an identity token.
    Credentials {
        /// Treated as an identity token.
        identity: bool,
        /// The username is the literal `<token>`.
        token_username: bool,
        /// Username and Secret are both empty.
        empty: bool,
        /// The secret or username holds characters Go's url.UserPassword escapes.
        needs_escaping: bool,
    },
    /// No credentials: the consumer goes anonymous.
    Anonymous(&'static str),
    /// An error the consumer reports.
    Error(String),
    /// No answer: the consumer has no deadline and hangs.
    Hang,
}

/// Reads a `get` answer the way `consumer` does.
pub fn read_get(consumer: Consumer, out: &Observed, helper: &str) -> Reading {
    if out.timed_out {
        return Reading::Hang;
    }
    let stdout = out.stdout.expose();
    let code = out.code.map_or("signal".to_string(), |c| c.to_string());
    if !out.success {
        let text = stdout.trim_ascii();
        return match consumer {
            Consumer::Docker | Consumer::ContainersImage if text == ERR_NOT_FOUND.as_bytes() => {
                Reading::Anonymous("the not-found text means no credentials")
            }
            Consumer::Oras if text == ERR_NOT_FOUND.as_bytes() => {
                Reading::Anonymous("the not-found text means no credentials")
            }
            Consumer::Docker | Consumer::ContainersImage => Reading::Error(format!(
                "`error getting credentials - err: exit status {code}, out: …`: any non-zero exit without the exact not-found text on stdout is an error"
            )),
            Consumer::Oras => Reading::Error(format!(
                "exit {code} without the exact not-found text on stdout is an error"
            )),
            Consumer::Incus => Reading::Error(format!(
                "`Failed to run: {helper} get: exit status {code}`: Incus treats every non-zero exit as an error and discards stdout"
            )),
            Consumer::RustCrate => Reading::Error(
                "HelperFailure: the crate treats every non-zero exit as an error, not-found included"
                    .into(),
            ),
        };
    }
    let decoded = match consumer {
        Consumer::Docker | Consumer::ContainersImage => go_decoder(stdout),
        Consumer::Oras => go_unmarshal(stdout),
        Consumer::Incus => incus_map(stdout),
        Consumer::RustCrate => rust_crate(stdout),
    };
    let (username, secret) = match decoded {
        Ok(pair) => pair,
        Err(e) => return Reading::Error(e),
    };
    let empty = username.is_empty() && secret.is_empty();
    let token_username = username == TOKEN_USERNAME;
    let needs_escaping = escaped_by_userinfo(&username) || escaped_by_userinfo(&secret);
    let mut secret = secret;
    zeroize::Zeroize::zeroize(&mut secret);
    if empty
        && matches!(
            consumer,
            Consumer::Docker | Consumer::ContainersImage | Consumer::Oras
        )
    {
        return Reading::Anonymous("empty Username and Secret mean no credentials");
    }
    Reading::Credentials {
        identity: token_username && consumer != Consumer::Incus,
        token_username,
        empty,
        needs_escaping,
    }
}

/// Go `json.NewDecoder(…).Decode(&creds)`: first value only, keys
/// case-insensitive, unknown keys ignored.
fn go_decoder(stdout: &[u8]) -> Result<(String, String), String> {
    let f = protocol::decode_credential_object(stdout)
        .map_err(|e| format!("the Go JSON decoder fails: {e}"))?;
    Ok((
        f.username.unwrap_or_default(),
        f.secret.map(|s| s.expose().clone()).unwrap_or_default(),
    ))
}

/// Go `json.Unmarshal` into a struct: like the decoder, but the whole input
/// must be one value.
fn go_unmarshal(stdout: &[u8]) -> Result<(String, String), String> {
    single_value(stdout)?;
    go_decoder(stdout)
}

fn single_value(stdout: &[u8]) -> Result<(), String> {
    let mut stream =
        serde_json::Deserializer::from_slice(stdout).into_iter::<serde::de::IgnoredAny>();
    match stream.next() {
        Some(Ok(_)) => {}
        Some(Err(e)) => {
            return Err(format!(
                "json.Unmarshal fails: invalid JSON at line {} column {}",
                e.line(),
                e.column()
            ));
        }
        None => return Err("json.Unmarshal fails: no JSON value".into()),
    }
    if stdout[stream.byte_offset()..].trim_ascii().is_empty() {
        Ok(())
    } else {
        Err("json.Unmarshal fails: invalid character after top-level value".into())
    }
}

/// Incus: `json.Unmarshal` into `map[string]string`, then `res["Username"]`
/// and `res["Secret"]`, exact keys.
fn incus_map(stdout: &[u8]) -> Result<(String, String), String> {
    single_value(stdout)?;
    let mut map: serde_json::Map<String, Value> = serde_json::from_slice(stdout).map_err(|_| {
        "json.Unmarshal into map[string]string fails: not a JSON object".to_string()
    })?;
    let mut bad = None;
    for (key, value) in &map {
        if !(value.is_string() || value.is_null()) {
            bad = Some(key.clone());
        }
    }
    let take = |map: &mut serde_json::Map<String, Value>, k: &str| match map.remove(k) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let username = take(&mut map, "Username");
    let secret = take(&mut map, "Secret");
    for v in map.values_mut() {
        if let Value::String(s) = v {
            zeroize::Zeroize::zeroize(s);
        }
    }
    if let Some(key) = bad {
        let mut secret = secret;
        zeroize::Zeroize::zeroize(&mut secret);
        return Err(format!(
            "json.Unmarshal into map[string]string fails: `{key}` is not a string"
        ));
    }
    Ok((username, secret))
}

/// The crate's `HelperResponse`: exact PascalCase keys, both required.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RustCrateResponse {
    username: String,
    secret: String,
}

fn rust_crate(stdout: &[u8]) -> Result<(String, String), String> {
    let r: RustCrateResponse = serde_json::from_slice(stdout).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => {
                "MalformedHelperResponse: no exact `Username` and `Secret` strings".to_string()
            }
            _ => format!(
                "MalformedHelperResponse: serde_json::from_slice fails at line {} column {}",
                e.line(),
                e.column()
            ),
        }
    })?;
    Ok((r.username, r.secret))
}

/// True when Go's `url.UserPassword(…).String()` would percent-escape a
/// character of `s` (everything but unreserved characters and `$&+,;=`).
fn escaped_by_userinfo(s: &str) -> bool {
    s.chars()
        .any(|c| !(c.is_ascii_alphanumeric() || "-_.~$&+,;=".contains(c)))
}

/// Judges every consumer on the answers the run saw.
pub fn evaluate(ctx: &Ctx) -> Vec<ConsumerReport> {
    let helper = ctx.helper().name().to_string();
    let found = found_answer(ctx);
    Consumer::ALL
        .iter()
        .map(|&consumer| {
            let mut scenarios = Vec::new();
            if let Some(out) = &found {
                scenarios.push(credentials_scenario(consumer, out, &helper));
            }
            if let Some(out) = &ctx.facts.unknown_get
                && out.not_run.is_none()
                && !(ctx.mode.is_read_only() && out.credentials().is_some())
            {
                scenarios.push(not_found_scenario(consumer, out, &helper));
            }
            if let Some(out) = &ctx.facts.token_get
                && out.not_run.is_none()
            {
                scenarios.push(token_scenario(consumer, out, &helper));
            }
            if let Some(v) = list_scenario(consumer, ctx) {
                scenarios.push(v);
            }
            let has = |v: Verdict| scenarios.iter().any(|s| s.verdict == v);
            let verdict = [Verdict::Fails, Verdict::Limited, Verdict::Works]
                .into_iter()
                .find(|v| has(*v))
                .unwrap_or(Verdict::Unclear);
            ConsumerReport {
                consumer: consumer.name(),
                verdict,
                scenarios,
            }
        })
        .collect()
}

/// The answer that carried credentials: the baseline get, else the get
/// right after the first store.
fn found_answer(ctx: &Ctx) -> Option<std::rc::Rc<Observed>> {
    [&ctx.facts.baseline, &ctx.facts.probe_get]
        .into_iter()
        .flatten()
        .find(|o| {
            o.not_run.is_none()
                && o.credentials().is_some_and(|f| {
                    !f.username.as_deref().unwrap_or("").is_empty()
                        || f.secret.as_ref().is_some_and(|s| !s.is_empty())
                })
        })
        .cloned()
}

fn credentials_scenario(consumer: Consumer, out: &Observed, helper: &str) -> ScenarioVerdict {
    let (works, detail) = match read_get(consumer, out, helper) {
        Reading::Credentials {
            token_username: true,
            identity: false,
            ..
        } => (
            Verdict::Limited,
            "sends `<token>` as a Basic-auth username: Incus has no identity-token support".into(),
        ),
        Reading::Credentials {
            needs_escaping: true,
            ..
        } if consumer == Consumer::Incus => (
            Verdict::Limited,
            "the secret holds characters that Incus percent-escapes into skopeo's auth file, so the registry sees a different password (lxc/incus#3989, code-read)".into(),
        ),
        Reading::Credentials { .. } => (Verdict::Works, "uses the credentials".into()),
        Reading::Anonymous(why) => (Verdict::Fails, format!("goes anonymous: {why}")),
        Reading::Error(e) => (Verdict::Fails, e),
        Reading::Hang => (Verdict::Fails, "has no deadline and hangs".into()),
    };
    ScenarioVerdict {
        scenario: "credentials",
        verdict: works,
        detail,
    }
}

fn not_found_scenario(consumer: Consumer, out: &Observed, helper: &str) -> ScenarioVerdict {
    let (works, detail) = match read_get(consumer, out, helper) {
        Reading::Anonymous(why) => (Verdict::Works, format!("goes anonymous: {why}")),
        Reading::Error(e) if matches!(consumer, Consumer::Incus | Consumer::RustCrate) => (
            Verdict::Limited,
            format!("{e}; a registry the helper has no entry for cannot be used"),
        ),
        Reading::Error(e) => (Verdict::Fails, e),
        Reading::Credentials { empty: true, .. } => (
            Verdict::Unclear,
            "takes the empty Username and Secret as credentials and sends them".into(),
        ),
        Reading::Credentials { .. } => (
            Verdict::Fails,
            "uses credentials the helper returned for a server it has no entry for".into(),
        ),
        Reading::Hang => (Verdict::Fails, "has no deadline and hangs".into()),
    };
    ScenarioVerdict {
        scenario: "not found",
        verdict: works,
        detail,
    }
}

fn token_scenario(consumer: Consumer, out: &Observed, helper: &str) -> ScenarioVerdict {
    let (works, detail) = match read_get(consumer, out, helper) {
        Reading::Credentials { identity: true, .. } => (
            Verdict::Works,
            "uses the secret as an identity (refresh) token".into(),
        ),
        Reading::Credentials {
            token_username: true,
            ..
        } => (
            Verdict::Limited,
            "sends `<token>` as a Basic-auth username: Incus has no identity-token support".into(),
        ),
        Reading::Credentials { .. } => (
            Verdict::Fails,
            "the answer lost the `<token>` username, so the token is sent as a password".into(),
        ),
        Reading::Anonymous(why) => (Verdict::Fails, format!("goes anonymous: {why}")),
        Reading::Error(e) => (Verdict::Fails, e),
        Reading::Hang => (Verdict::Fails, "has no deadline and hangs".into()),
    };
    ScenarioVerdict {
        scenario: "identity token",
        verdict: works,
        detail,
    }
}

fn list_scenario(consumer: Consumer, ctx: &Ctx) -> Option<ScenarioVerdict> {
    if !matches!(consumer, Consumer::Docker | Consumer::ContainersImage) {
        return None;
    }
    let out = ctx.facts.list.as_ref().filter(|o| o.not_run.is_none())?;
    let verdict = |verdict: Verdict, detail: String| {
        Some(ScenarioVerdict {
            scenario: "list",
            verdict,
            detail,
        })
    };
    if out.timed_out {
        return verdict(Verdict::Fails, "has no deadline and hangs".into());
    }
    if !out.success {
        return verdict(
            Verdict::Fails,
            format!(
                "`error listing credentials`: list exits {}",
                out.code.map_or("on a signal".into(), |c| c.to_string())
            ),
        );
    }
    let map = match protocol::decode_list(out.stdout.expose()) {
        Ok(m) => m,
        Err(e) => return verdict(Verdict::Fails, format!("cannot decode the list: {e}")),
    };
    match consumer {
        Consumer::Docker => match &ctx.facts.list_unresolved {
            Some(keys) if !keys.is_empty() => verdict(
                Verdict::Fails,
                format!(
                    "GetAll calls get for each key, and {} of this run's keys do not resolve",
                    keys.len()
                ),
            ),
            _ => verdict(Verdict::Works, "GetAll can read the list".into()),
        },
        _ => {
            // Judge only keys the helper itself owns: this run's, or all of a
            // read-only helper's (a writable store may hold the user's own).
            let schemed: Vec<&String> = map
                .keys()
                .filter(|k| ctx.mode.is_read_only() || ctx.sandbox.owns(k))
                .filter(|k| {
                    let k = k.to_ascii_lowercase();
                    k.starts_with("http://") || k.starts_with("https://")
                })
                .collect();
            match schemed.first() {
                Some(k) => verdict(
                    Verdict::Fails,
                    format!("GetAllCredentials rejects keys with an http(s):// prefix, e.g. `{k}`"),
                ),
                None => verdict(Verdict::Works, "GetAllCredentials can read the list".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use std::time::Duration;

    fn answer(code: i32, stdout: &str) -> Observed {
        Observed {
            args: vec!["get".into()],
            query: Some("h".into()),
            code: Some(code),
            success: code == 0,
            stdout: Secret::new(stdout.as_bytes().to_vec()),
            stderr: Vec::new(),
            elapsed: Duration::ZERO,
            timed_out: false,
            not_run: None,
        }
    }

    fn works(consumer: Consumer, out: &Observed) -> bool {
        matches!(
            read_get(consumer, out, "h"),
            Reading::Credentials { empty: false, .. }
        )
    }

    #[test]
    fn trailing_text_breaks_only_the_strict_decoders() {
        let out = answer(0, "{\"Username\":\"u\",\"Secret\":\"s\"}\nnotice\n");
        assert!(works(Consumer::Docker, &out));
        assert!(works(Consumer::ContainersImage, &out));
        assert!(!works(Consumer::Incus, &out));
        assert!(!works(Consumer::RustCrate, &out));
        assert!(!works(Consumer::Oras, &out));
    }

    #[test]
    fn lowercase_keys_work_only_for_go_struct_decoding() {
        let out = answer(0, "{\"username\":\"u\",\"secret\":\"s\"}");
        assert!(works(Consumer::Docker, &out));
        assert!(works(Consumer::Oras, &out));
        assert!(!works(Consumer::RustCrate, &out));
        // Incus finds no exact key and ends up with empty credentials.
        assert!(matches!(
            read_get(Consumer::Incus, &out, "h"),
            Reading::Credentials { empty: true, .. }
        ));
    }

    #[test]
    fn a_numeric_field_breaks_only_incus() {
        let out = answer(0, "{\"Username\":\"u\",\"Secret\":\"s\",\"ExpiresAt\":17}");
        assert!(works(Consumer::Docker, &out));
        assert!(works(Consumer::RustCrate, &out));
        assert!(!works(Consumer::Incus, &out));
    }

    #[test]
    fn not_found_is_anonymous_for_go_clients_and_an_error_elsewhere() {
        let out = answer(1, "credentials not found in native keychain\n");
        for c in [Consumer::Docker, Consumer::ContainersImage, Consumer::Oras] {
            assert!(matches!(read_get(c, &out, "h"), Reading::Anonymous(_)));
        }
        for c in [Consumer::Incus, Consumer::RustCrate] {
            assert!(matches!(read_get(c, &out, "h"), Reading::Error(_)));
        }
    }

    #[test]
    fn identity_tokens_are_honoured_except_by_incus() {
        let out = answer(
            0,
            "{\"Username\":\"\\u003ctoken\\u003e\",\"Secret\":\"rt\"}",
        );
        assert!(matches!(
            read_get(Consumer::RustCrate, &out, "h"),
            Reading::Credentials { identity: true, .. }
        ));
        assert!(matches!(
            read_get(Consumer::Incus, &out, "h"),
            Reading::Credentials {
                identity: false,
                token_username: true,
                ..
            }
        ));
    }

    #[test]
    fn userinfo_escaping_follows_go() {
        assert!(!escaped_by_userinfo("AbC-_.~$&+,;=9"));
        for s in ["a/b", "a:b", "a@b", "a?b", "a%b", "a b", "ü"] {
            assert!(escaped_by_userinfo(s), "{s}");
        }
    }
}
