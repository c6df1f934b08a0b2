//! The catalogue: one function per check, named after the behaviour it
//! expects, with the rule it enforces and where that rule comes from.
//!
//! Each source names the upstream code or issue the rule comes from;
//! docker-credential-helpers is abbreviated DCH.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde_json::Value;

use super::runner::{Ctx, GetOutcome, Observed, UNKNOWN_ACTION, seconds};
use super::{Applies, Check, Finding, Severity};
use crate::protocol::{self, Credentials, ERR_MISSING_SERVER_URL, ERR_NOT_FOUND, TOKEN_USERNAME};
use crate::registry::{DOCKER_HUB_LEGACY_URL, ServerUrl};
use crate::secret::Secret;

/// Size of the large secret: bigger than any registry token seen in the
/// field (ECR ~2 KiB, ACR refresh tokens ~2 KiB, JWTs with many claims ~8 KiB),
/// and under the 64 KiB line limit of Go helpers' stdin scanner.
pub const LARGE_SECRET_BYTES: usize = 16 * 1024;
/// Writers in the parallel-store check: two per server, three servers.
const PARALLEL_SERVERS: usize = 3;

macro_rules! check {
    ($id:ident, $group:literal, $sev:ident, $applies:ident, [$($need:literal),*], $desc:literal, $rule:literal, $source:literal) => {
        Check {
            id: stringify!($id),
            group: $group,
            severity: Severity::$sev,
            description: $desc,
            rule: $rule,
            source: $source,
            needs: &[$($need),*],
            applies: Applies::$applies,
            run: $id,
        }
    };
}

/// Every check, in the order it runs and is reported.
pub static CATALOGUE: &[Check] = &[
    check!(
        version_prints_a_line,
        "argv",
        Warn,
        Always,
        [],
        "`version` exits 0 and prints one line",
        "`version` prints a version line on stdout and exits 0",
        "DCH credentials/credentials.go Serve"
    ),
    check!(
        missing_action_fails,
        "argv",
        Warn,
        Always,
        [],
        "no argument at all exits non-zero",
        "argv is exactly `<helper> <action>`; any other count prints usage and exits 1",
        "DCH credentials/credentials.go Serve"
    ),
    check!(
        extra_argument_fails,
        "argv",
        Warn,
        Always,
        [],
        "`get extra` exits non-zero",
        "argv is exactly `<helper> <action>`; any other count prints usage and exits 1",
        "DCH credentials/credentials.go Serve"
    ),
    check!(
        unknown_action_fails,
        "argv",
        Warn,
        Always,
        [],
        "an unknown action exits non-zero",
        "an unknown action prints `unknown action` and exits 1; success would hide typos and version skew",
        "DCH credentials/credentials.go Serve"
    ),
    check!(
        get_accepts_trailing_newline,
        "framing",
        Fail,
        Always,
        [],
        "`get` answers `URL\\n` as it answers `URL`",
        "get reads stdin to EOF and trims surrounding whitespace (Go strings.TrimSpace)",
        "DCH credentials/credentials.go Get (strings.TrimSpace); DCH#185"
    ),
    check!(
        get_accepts_crlf,
        "framing",
        Warn,
        Always,
        [],
        "`get` answers `URL\\r\\n` as it answers `URL`",
        "get trims surrounding whitespace, CR included",
        "DCH credentials/credentials.go Get (strings.TrimSpace)"
    ),
    check!(
        get_accepts_surrounding_spaces,
        "framing",
        Warn,
        Always,
        [],
        "`get` answers `  URL  ` as it answers `URL`",
        "get trims surrounding whitespace",
        "DCH credentials/credentials.go Get (strings.TrimSpace)"
    ),
    check!(
        get_empty_stdin_reports_missing_url,
        "framing",
        Fail,
        Always,
        [],
        "`get` with empty stdin exits non-zero with `no credentials server URL`",
        "empty input is an error with the exact text `no credentials server URL` on stdout, never credentials",
        "DCH credentials/error.go, credentials/credentials.go Get"
    ),
    check!(
        get_unknown_server_reports_not_found,
        "not-found",
        Fail,
        Always,
        [],
        "`get` of a server with no entry exits non-zero with the not-found text on stdout",
        "exit != 0 and trimmed stdout exactly `credentials not found in native keychain`; not on stderr, and never exit 0 with empty credentials",
        "DCH client/client.go; DCH#220, DCH#101"
    ),
    check!(
        store_then_get_returns_the_credential,
        "round-trip",
        Fail,
        Writable,
        [],
        "`store` exits 0 and `get` then returns the same Username and Secret",
        "a store that exits 0 has kept the credential",
        "DCH#327"
    ),
    check!(
        list_shows_stored_urls_that_resolve,
        "round-trip",
        Fail,
        Writable,
        ["store_then_get_returns_the_credential"],
        "`list` shows the stored ServerURL with its Username, and each of this run's keys resolves with `get`",
        "list prints {ServerURL: Username} with keys exactly as stored; docker's GetAll calls get for every key",
        "DCH credentials/credentials.go List; docker/cli GetAll; oras-project/oras-py#222; DCH#143"
    ),
    check!(
        store_overwrites_existing,
        "round-trip",
        Fail,
        Writable,
        ["store_then_get_returns_the_credential"],
        "a second `store` for the same server replaces the first",
        "store is an upsert: every store exits 0 and get returns the last values",
        "DCH#37"
    ),
    check!(
        get_after_erase_returns_nothing,
        "round-trip",
        Fail,
        Writable,
        ["store_then_get_returns_the_credential"],
        "`erase` exits 0, then `get` returns no credentials and `list` no longer shows the server",
        "erase deletes the credential",
        "DCH credentials/credentials.go Erase"
    ),
    check!(
        erase_twice_is_harmless,
        "round-trip",
        Warn,
        Writable,
        ["store_then_get_returns_the_credential"],
        "erasing an entry that is already gone exits 0 (or answers not-found)",
        "erase of an absent entry succeeds; clients treat not-found as success, anything else makes `docker logout` complain",
        "docker/cli#204, DCH#59"
    ),
    check!(
        identity_token_round_trips,
        "round-trip",
        Fail,
        Writable,
        ["store_then_get_returns_the_credential"],
        "a `<token>` username (identity token) comes back unchanged",
        "Username `<token>` marks an identity token and round-trips unchanged",
        "docker/cli cli/config/credentials/native_store.go; containers/image#1340"
    ),
    check!(
        special_secrets_round_trip,
        "round-trip",
        Fail,
        Writable,
        ["store_then_get_returns_the_credential"],
        "secrets with JSON-special, shell-special and non-ASCII characters come back byte for byte",
        "the Secret is opaque: stored and returned verbatim, surrounding whitespace included",
        "DCH#107, DCH#111"
    ),
    check!(
        large_secret_is_accepted,
        "round-trip",
        Warn,
        Writable,
        ["store_then_get_returns_the_credential"],
        "a 16 KiB secret is stored",
        "helpers hold the largest tokens registries issue",
        "registry token sizes (ECR, ACR, OIDC JWTs)"
    ),
    check!(
        large_secret_round_trips_intact,
        "round-trip",
        Fail,
        Writable,
        ["store_then_get_returns_the_credential"],
        "a stored 16 KiB secret comes back intact",
        "a store that exits 0 keeps the whole secret, never a truncated one",
        "DCH#327"
    ),
    check!(
        parallel_stores_succeed,
        "round-trip",
        Fail,
        Writable,
        ["store_then_get_returns_the_credential"],
        "parallel stores all exit 0 and each server ends with one of the values written",
        "concurrent logins never fail with `already exists` and never leave a mixed record",
        "DCH#333"
    ),
    check!(
        url_variants_resolve,
        "url-variants",
        Info,
        Always,
        [],
        "which spellings of a stored server (scheme, trailing slash, port, path, case) `get` resolves",
        "informative: helpers legitimately differ; clients send host[:port], docker also http(s)://host at logout",
        "DCH#71, lxc/incus#2876, hashicorp/nomad#3818"
    ),
    check!(
        docker_hub_spellings_resolve,
        "url-variants",
        Info,
        Writable,
        ["store_then_get_returns_the_credential"],
        "which Docker Hub spellings resolve a credential stored as https://index.docker.io/v1/",
        "informative: docker uses https://index.docker.io/v1/, skopeo and podman docker.io; probed only when the store holds no Docker Hub entry",
        "docker/cli cli/config/configfile/file.go; oras-project/oras-py#222, containerd/nerdctl#1263"
    ),
    check!(
        get_output_starts_with_json,
        "output",
        Fail,
        Always,
        [],
        "successful `get` output starts with the JSON object",
        "stdout on success is one JSON object; text before it breaks every consumer",
        "DCH client/client.go (json.NewDecoder); testcontainers/testcontainers-java#8006"
    ),
    check!(
        get_output_has_nothing_after_json,
        "output",
        Fail,
        Always,
        [],
        "nothing but whitespace follows the JSON object",
        "trailing text fails Incus (json.Unmarshal), oras (json.Unmarshal) and the Rust docker_credential crate (serde_json::from_slice)",
        "lxc/incus shared/cliconfig/remote.go; oras-go registry/remote/credentials/native_store.go; keirlawson/docker_credential src/helper.rs"
    ),
    check!(
        get_output_has_username_and_secret,
        "output",
        Fail,
        Always,
        [],
        "the object has string keys exactly `Username` and `Secret`",
        "Incus reads res[\"Username\"]/res[\"Secret\"] and the Rust crate needs PascalCase keys; only Go matches keys case-insensitively",
        "lxc/incus shared/cliconfig/remote.go; keirlawson/docker_credential src/helper.rs"
    ),
    check!(
        get_output_values_are_strings,
        "output",
        Fail,
        Always,
        [],
        "every value in the object is a string",
        "Incus decodes the answer as map[string]string, so a numeric or boolean field (an expiry, say) is an error",
        "lxc/incus shared/cliconfig/remote.go"
    ),
    check!(
        get_output_echoes_server_url,
        "output",
        Warn,
        Always,
        [],
        "the answer's ServerURL echoes the server asked for",
        "ServerURL echoes the trimmed query; clients that read it otherwise use a wrong or default registry",
        "DCH credentials/credentials.go Get; testcontainers/testcontainers-java#9055"
    ),
    check!(
        get_output_is_one_line,
        "output",
        Info,
        Always,
        [],
        "the answer is one line",
        "informative: docker-credential-helpers print compact JSON; pretty-printed output breaks line-based readers",
        "gcloud auth docker-helper; fabric8io/docker-maven-plugin#930"
    ),
    check!(
        read_only_store_refuses_clearly,
        "read-only",
        Warn,
        ReadOnly,
        [],
        "`store` on a read-only helper exits non-zero with one line on stdout",
        "a helper that cannot store says so; a silent exit 0 makes `docker login` report success with nothing stored",
        "awslabs/amazon-ecr-credential-helper#574, GoogleCloudPlatform/docker-credential-gcr#17"
    ),
    check!(
        read_only_erase_behaviour,
        "read-only",
        Info,
        ReadOnly,
        [],
        "what `erase` does on a read-only helper",
        "informative: error, silent exit 0 or no-op",
        "gcloud, ecr-login, gcr, acr-env behaviour"
    ),
    check!(
        read_only_list_behaviour,
        "read-only",
        Info,
        ReadOnly,
        [],
        "what `list` does on a read-only helper",
        "informative: error, `{}`, or the registries it serves",
        "gcloud, ecr-login, gcr, acr-env behaviour"
    ),
    check!(
        calls_finish_within_deadline,
        "run",
        Fail,
        Always,
        [],
        "every call answers before the deadline, with stdin closed",
        "a helper never waits on a terminal, a prompt or a lock; callers have no deadline and hang with it",
        "DCH#355, DCH#185, GoogleCloudPlatform/docker-credential-gcr#15, #75"
    ),
    check!(
        stored_secrets_never_leak,
        "run",
        Fail,
        Always,
        [],
        "no secret this run stored appears on stderr or in error output",
        "stderr and error text are shown to users and logged; clients pass stderr through",
        "google/go-containerregistry#309, containers/skopeo#434"
    ),
    check!(
        action_timing,
        "run",
        Info,
        Always,
        [],
        "median and worst time per action",
        "informative: docker runs get on every pull and build",
        "GoogleCloudPlatform/docker-credential-gcr#11, docker/cli#1591"
    ),
];

// ---------------------------------------------------------------- argv

fn version_prints_a_line(ctx: &mut Ctx) -> Finding {
    let out = ctx.call(&["version"], b"");
    if out.no_answer() {
        return skip_no_answer(ctx, &out);
    }
    let text = out.stdout_trimmed();
    if out.success && !text.is_empty() && !text.contains(&b'\n') {
        Finding::Pass(format!("exit 0: {}", ctx.quote(&out)))
    } else if out.success && text.is_empty() {
        Finding::Broken("exit 0 with nothing on stdout".into())
    } else {
        Finding::Broken(ctx.describe(&out))
    }
}

fn missing_action_fails(ctx: &mut Ctx) -> Finding {
    exits_nonzero(ctx, &[], b"", "with no argument")
}

fn extra_argument_fails(ctx: &mut Ctx) -> Finding {
    let url = baseline_url(ctx);
    exits_nonzero(ctx, &["get", "extra"], url.as_bytes(), "with `get extra`")
}

fn unknown_action_fails(ctx: &mut Ctx) -> Finding {
    let out = match ctx.facts.unknown_action.clone() {
        Some(out) => out,
        None => ctx.call(&[UNKNOWN_ACTION], b""),
    };
    judge_nonzero(ctx, &out, &format!("with the action `{UNKNOWN_ACTION}`"))
}

fn exits_nonzero(ctx: &mut Ctx, args: &[&str], input: &[u8], what: &str) -> Finding {
    let out = ctx.call(args, input);
    judge_nonzero(ctx, &out, what)
}

fn judge_nonzero(ctx: &Ctx, out: &Observed, what: &str) -> Finding {
    if out.no_answer() {
        return skip_no_answer(ctx, out);
    }
    if out.success {
        Finding::Broken(format!("{what} it exits 0, as if the call had worked"))
    } else {
        Finding::Pass(ctx.describe(out))
    }
}

// ---------------------------------------------------------------- framing

/// The URL the get checks ask for: `--server-url`, else the credential this
/// run stored, else a server with no entry (the answers must still agree).
fn baseline_url(ctx: &Ctx) -> String {
    if let Some(url) = &ctx.opts.server_url {
        return url.trim().to_string();
    }
    let stored = ctx
        .facts
        .probe_get
        .as_ref()
        .and_then(|g| g.credentials())
        .is_some_and(|f| ctx.is_ours(&f));
    if stored && !ctx.mode.is_read_only() {
        ctx.sandbox.main()
    } else {
        ctx.sandbox.host("absent")
    }
}

fn baseline(ctx: &mut Ctx) -> Rc<Observed> {
    if let Some(b) = &ctx.facts.baseline {
        return b.clone();
    }
    let url = baseline_url(ctx);
    let out = ctx.get(&url);
    ctx.facts.baseline = Some(out.clone());
    out
}

fn get_accepts_trailing_newline(ctx: &mut Ctx) -> Finding {
    same_answer(ctx, |u| format!("{u}\n"))
}

fn get_accepts_crlf(ctx: &mut Ctx) -> Finding {
    same_answer(ctx, |u| format!("{u}\r\n"))
}

fn get_accepts_surrounding_spaces(ctx: &mut Ctx) -> Finding {
    same_answer(ctx, |u| format!("  {u}  "))
}

fn same_answer(ctx: &mut Ctx, frame: fn(&str) -> String) -> Finding {
    let url = baseline_url(ctx);
    let plain = baseline(ctx);
    if plain.no_answer() {
        return skip_no_answer(ctx, &plain);
    }
    let input = frame(&url);
    let framed = ctx.get_raw(&input);
    if framed.not_run.is_some() {
        return skip_no_answer(ctx, &framed);
    }
    if plain.answer_key() == framed.answer_key() {
        return Finding::Pass(format!("both answered {}", summarize(ctx, &plain)));
    }
    Finding::Broken(format!(
        "{:?} answered {}, but {input:?} answered {}",
        url,
        summarize(ctx, &plain),
        summarize_against(ctx, &framed, &plain)
    ))
}

fn get_empty_stdin_reports_missing_url(ctx: &mut Ctx) -> Finding {
    let out = ctx.get_raw("");
    if out.not_run.is_some() {
        return skip_no_answer(ctx, &out);
    }
    if out.timed_out {
        return Finding::Broken(
            "it waited for more input after stdin was closed, until the deadline".into(),
        );
    }
    if !out.success && out.stdout_trimmed() == ERR_MISSING_SERVER_URL.as_bytes() {
        return Finding::Pass(ctx.describe(&out));
    }
    if out.success {
        return Finding::Broken(format!(
            "{}: an empty server URL must be an error",
            summarize(ctx, &out)
        ));
    }
    let mut detail = format!(
        "{}; expected `{ERR_MISSING_SERVER_URL}` on stdout",
        ctx.describe(&out)
    );
    if contains(&out.stderr, ERR_MISSING_SERVER_URL.as_bytes()) {
        detail.push_str(" (the text went to stderr)");
    }
    Finding::Broken(detail)
}

// ---------------------------------------------------------------- not-found

fn get_unknown_server_reports_not_found(ctx: &mut Ctx) -> Finding {
    let url = ctx.sandbox.host("absent");
    let out = ctx.get(&url);
    ctx.facts.unknown_get = Some(out.clone());
    match out.outcome() {
        GetOutcome::NotRun(_) | GetOutcome::Hung => skip_no_answer(ctx, &out),
        GetOutcome::NotFound => Finding::Pass(ctx.describe(&out)),
        GetOutcome::Empty => Finding::Broken(
            "exit 0 with empty Username and Secret: docker, skopeo and oras go anonymous, but \
             Incus, the Rust docker_credential crate and anything that trusts exit 0 send them \
             on as credentials"
                .into(),
        ),
        GetOutcome::Credentials(_) if ctx.mode.is_read_only() => Finding::Skip(
            "it answers a server nothing was stored for with credentials (it ignores the URL \
             or accepts any registry), so not-found cannot be provoked"
                .into(),
        ),
        GetOutcome::Credentials(_) => {
            Finding::Broken("exit 0 with credentials for a server nothing was stored for".into())
        }
        GetOutcome::Garbage => Finding::Broken("exit 0 without a credential object".into()),
        GetOutcome::Failed => {
            if contains(&out.stderr, ERR_NOT_FOUND.as_bytes()) {
                Finding::Broken(format!(
                    "the not-found text went to stderr ({}); clients read stdout only, \
                     so docker and skopeo fail hard instead of going anonymous",
                    ctx.describe(&out)
                ))
            } else {
                Finding::Broken(format!(
                    "{}; clients match exactly `{ERR_NOT_FOUND}` on stdout, and anything else \
                     is a hard error that stops `docker pull`",
                    ctx.describe(&out)
                ))
            }
        }
    }
}

// ---------------------------------------------------------------- round trip

/// Checks that `out` returned exactly `username` and `secret`.
fn returned(ctx: &Ctx, out: &Observed, username: &str, secret: &str) -> Result<(), String> {
    match out.outcome() {
        GetOutcome::Credentials(f) => {
            let mut wrong = Vec::new();
            if f.username.as_deref() != Some(username) {
                wrong.push("Username");
            }
            if f.secret.as_ref().map(|s| s.expose().as_str()) != Some(secret) {
                wrong.push("Secret");
            }
            if wrong.is_empty() {
                Ok(())
            } else {
                let how = match (&f.secret, wrong.contains(&"Secret")) {
                    (Some(s), true) => format!(
                        " (a secret of {} characters instead of {})",
                        s.expose().chars().count(),
                        secret.chars().count()
                    ),
                    _ => String::new(),
                };
                Err(format!(
                    "get returned a different {}{how}",
                    wrong.join(" and ")
                ))
            }
        }
        _ => Err(format!("get answered {}", summarize(ctx, out))),
    }
}

fn store_then_get_returns_the_credential(ctx: &mut Ctx) -> Finding {
    let (Some(stored), got) = (ctx.facts.probe_store.clone(), ctx.facts.probe_get.clone()) else {
        return Finding::Skip("store was not probed".into());
    };
    if stored.no_answer() {
        return skip_no_answer(ctx, &stored);
    }
    if !stored.success {
        return Finding::Broken(format!("store failed: {}", ctx.describe(&stored)));
    }
    let Some(got) = got else {
        return Finding::Skip("get was not called".into());
    };
    if got.no_answer() {
        return skip_no_answer(ctx, &got);
    }
    let ours = got.credentials().is_some_and(|f| ctx.is_ours(&f));
    let user_ok = got
        .credentials()
        .is_some_and(|f| f.username.as_deref() == Some("dci-user"));
    if ours && user_ok {
        Finding::Pass("store exited 0 and get returned the same Username and Secret".into())
    } else if ours {
        Finding::Broken("get returned the secret with a different Username".into())
    } else {
        Finding::Broken(format!(
            "store exited 0, but get then answered {}: the credential was not kept",
            summarize(ctx, &got)
        ))
    }
}

fn list_map(ctx: &Ctx, out: &Observed) -> Result<BTreeMap<String, String>, String> {
    if out.no_answer() || !out.success {
        return Err(format!("list: {}", ctx.describe(out)));
    }
    protocol::decode_list(out.stdout.expose())
        .map_err(|e| format!("list printed no JSON object of strings: {e}"))
}

fn list_shows_stored_urls_that_resolve(ctx: &mut Ctx) -> Finding {
    let out = ctx.list();
    if out.no_answer() {
        return skip_no_answer(ctx, &out);
    }
    let map = match list_map(ctx, &out) {
        Ok(m) => m,
        Err(e) => return Finding::Broken(e),
    };
    let main = ctx.sandbox.main();
    let ours: Vec<String> = map
        .keys()
        .filter(|k| ctx.sandbox.owns(k))
        .cloned()
        .collect();
    let mut unresolved = Vec::new();
    for key in &ours {
        let got = ctx.get(key);
        if !got.credentials().is_some_and(|f| ctx.is_ours(&f)) {
            unresolved.push(key.clone());
        }
    }
    ctx.facts.list_unresolved = Some(unresolved.clone());
    match map.get(&main) {
        None => {
            return Finding::Broken(if ours.is_empty() {
                format!("list has no key `{main}` and nothing else of this run")
            } else {
                format!("list has no key `{main}`; this run's keys are {ours:?}")
            });
        }
        Some(user) if user != "dci-user" => {
            return Finding::Broken(format!("list maps `{main}` to `{user}`, not `dci-user`"));
        }
        Some(_) => {}
    }
    if !unresolved.is_empty() {
        return Finding::Broken(format!(
            "list keys that get does not resolve: {unresolved:?} (docker's GetAll calls get for each)"
        ));
    }
    Finding::Pass(format!(
        "list shows `{main}` → `dci-user`; {} key(s) of this run, each resolves with get",
        ours.len()
    ))
}

fn store_overwrites_existing(ctx: &mut Ctx) -> Finding {
    let url = ctx.sandbox.main();
    let secret = ctx.secret("-second");
    let stored = ctx.store(&Credentials::new(url.clone(), "dci-user-2", secret.clone()));
    if stored.no_answer() {
        return skip_no_answer(ctx, &stored);
    }
    if !stored.success {
        return Finding::Broken(format!(
            "the second store failed: {}",
            ctx.describe(&stored)
        ));
    }
    let got = ctx.get(&url);
    if let Err(e) = returned(ctx, &got, "dci-user-2", &secret) {
        return Finding::Broken(format!("after the second store, {e}"));
    }
    // List keys are the list check's business; when list works, it must
    // show the new username.
    if ctx.result_of("list_shows_stored_urls_that_resolve") != Some(super::Status::Pass) {
        return Finding::Pass("the second store exited 0; get returns the new values".into());
    }
    let listed = ctx.list();
    match list_map(ctx, &listed) {
        Ok(map) => match map.get(&url) {
            Some(user) if user == "dci-user-2" => {}
            Some(user) => {
                return Finding::Broken(format!("list still maps `{url}` to `{user}`"));
            }
            None => return Finding::Broken(format!("list no longer shows `{url}`")),
        },
        Err(e) => return Finding::Broken(e),
    }
    Finding::Pass("the second store exited 0; get and list show the new values".into())
}

fn get_after_erase_returns_nothing(ctx: &mut Ctx) -> Finding {
    let url = ctx.sandbox.main();
    let erased = ctx.erase(&url);
    if erased.no_answer() {
        return skip_no_answer(ctx, &erased);
    }
    if !erased.success {
        return Finding::Broken(format!(
            "erase of a stored credential failed: {}",
            ctx.describe(&erased)
        ));
    }
    let got = ctx.get(&url);
    if got.no_answer() {
        return skip_no_answer(ctx, &got);
    }
    if !got.outcome().returns_nothing() {
        return Finding::Broken("get still returns credentials after erase".into());
    }
    let listed = ctx.list();
    match list_map(ctx, &listed) {
        Ok(map) if map.contains_key(&url) => {
            Finding::Broken(format!("list still shows `{url}` after erase"))
        }
        Ok(_) => Finding::Pass(format!(
            "erase exited 0; get then answered {}; list no longer shows it",
            summarize(ctx, &got)
        )),
        Err(e) => Finding::Broken(e),
    }
}

fn erase_twice_is_harmless(ctx: &mut Ctx) -> Finding {
    let url = ctx.sandbox.main();
    let first = ctx.erase(&url);
    let second = ctx.erase(&url);
    if first.no_answer() || second.no_answer() {
        return skip_no_answer(ctx, if first.no_answer() { &first } else { &second });
    }
    if second.success {
        Finding::Pass("erasing an absent entry exits 0".into())
    } else if second.is_not_found() {
        Finding::Pass(format!(
            "{}; clients treat not-found from erase as success",
            ctx.describe(&second)
        ))
    } else {
        Finding::Broken(format!(
            "{}: `docker logout` reports an error for a credential that is already gone",
            ctx.describe(&second)
        ))
    }
}

fn identity_token_round_trips(ctx: &mut Ctx) -> Finding {
    let url = ctx.sandbox.host("token");
    let secret = ctx.secret("-refresh-token");
    let stored = ctx.store(&Credentials::new(
        url.clone(),
        TOKEN_USERNAME,
        secret.clone(),
    ));
    if stored.no_answer() {
        return skip_no_answer(ctx, &stored);
    }
    if !stored.success {
        return Finding::Broken(format!("store failed: {}", ctx.describe(&stored)));
    }
    let got = ctx.get(&url);
    ctx.facts.token_get = Some(got.clone());
    match returned(ctx, &got, TOKEN_USERNAME, &secret) {
        Ok(()) => Finding::Pass("Username `<token>` and its secret came back unchanged".into()),
        Err(e) => match got.credentials().and_then(|f| f.username) {
            Some(user) if user != TOKEN_USERNAME => Finding::Broken(format!(
                "get returned Username {user:?} instead of `<token>`"
            )),
            _ => Finding::Broken(e),
        },
    }
}

fn special_secrets_round_trip(ctx: &mut Ctx) -> Finding {
    let classes: [(&str, &str, String); 3] = [
        (
            "JSON-special",
            "json",
            ctx.secret("\"q\" \\b/s \u{8}\u{c}\n\r\t\u{1} <token>&amp; \u{2028}\u{2029}"),
        ),
        (
            "shell-special",
            "shell",
            format!(
                "  {} $(echo hi) `id` ${{HOME}} ;|&*?~!#% 'q' \"d\" \\ {{a,b}} [x] <>\t ",
                ctx.secret("")
            ),
        ),
        (
            "non-ASCII",
            "unicode",
            ctx.secret(" ünïcödé €uro 日本語 😀 \u{202e}rtl \u{a0}nbsp"),
        ),
    ];
    let mut broken = Vec::new();
    for (name, label, secret) in &classes {
        let url = ctx.sandbox.host(label);
        let stored = ctx.store(&Credentials::new(url.clone(), "dci-user", secret.clone()));
        if stored.no_answer() {
            return skip_no_answer(ctx, &stored);
        }
        if !stored.success {
            broken.push(format!("{name}: store failed: {}", ctx.describe(&stored)));
            continue;
        }
        let got = ctx.get(&url);
        if got.not_run.is_some() {
            return skip_no_answer(ctx, &got);
        }
        if let Err(e) = returned(ctx, &got, "dci-user", secret) {
            broken.push(format!("{name}: {e}"));
        }
    }
    if broken.is_empty() {
        Finding::Pass(
            "JSON-special, shell-special and non-ASCII secrets came back byte for byte".into(),
        )
    } else {
        Finding::Broken(broken.join("; "))
    }
}

fn large_secret_is_accepted(ctx: &mut Ctx) -> Finding {
    let url = ctx.sandbox.host("large");
    let head = ctx.secret("");
    let mut secret = head;
    let filler = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    while secret.len() < LARGE_SECRET_BYTES {
        secret.push_str(filler);
    }
    secret.truncate(LARGE_SECRET_BYTES);
    let stored = ctx.store(&Credentials::new(url, "dci-user", secret.clone()));
    if stored.no_answer() {
        return skip_no_answer(ctx, &stored);
    }
    if stored.success {
        ctx.facts.large = Some(Secret::new(secret));
        Finding::Pass(format!("a {LARGE_SECRET_BYTES}-byte secret was stored"))
    } else {
        Finding::Broken(format!(
            "a {LARGE_SECRET_BYTES}-byte secret was refused: {}",
            ctx.describe(&stored)
        ))
    }
}

fn large_secret_round_trips_intact(ctx: &mut Ctx) -> Finding {
    let Some(secret) = ctx.facts.large.take() else {
        return Finding::Skip(
            "the large secret was not stored; see large_secret_is_accepted".into(),
        );
    };
    let url = ctx.sandbox.host("large");
    let got = ctx.get(&url);
    if got.no_answer() {
        return skip_no_answer(ctx, &got);
    }
    match returned(ctx, &got, "dci-user", secret.expose()) {
        Ok(()) => Finding::Pass(format!("all {LARGE_SECRET_BYTES} bytes came back")),
        Err(e) => Finding::Broken(e),
    }
}

fn parallel_stores_succeed(ctx: &mut Ctx) -> Finding {
    let mut jobs = Vec::new();
    for server in 0..PARALLEL_SERVERS {
        let url = ctx.sandbox.host(&format!("parallel{server}"));
        for writer in 0..2 {
            let secret = ctx.secret(&format!("-writer{writer}"));
            jobs.push(Credentials::new(
                url.clone(),
                format!("dci-writer{writer}"),
                secret,
            ));
        }
    }
    let outs = ctx.store_parallel(&jobs);
    let failed: Vec<String> = outs
        .iter()
        .zip(&jobs)
        .filter(|(o, _)| !o.success)
        .map(|(o, j)| format!("{}: {}", j.server_url, ctx.describe(o)))
        .collect();
    if !failed.is_empty() {
        return Finding::Broken(format!(
            "{} of {} parallel stores failed: {}",
            failed.len(),
            jobs.len(),
            failed.join("; ")
        ));
    }
    let mut wrong = Vec::new();
    for pair in jobs.chunks(2) {
        let url = &pair[0].server_url;
        let got = ctx.get(url);
        if got.not_run.is_some() {
            return skip_no_answer(ctx, &got);
        }
        let ok = pair
            .iter()
            .any(|c| returned(ctx, &got, &c.username, c.secret.expose()).is_ok());
        if !ok {
            wrong.push(format!("{url}: {}", summarize(ctx, &got)));
        }
    }
    if wrong.is_empty() {
        Finding::Pass(format!(
            "{} parallel stores to {PARALLEL_SERVERS} servers exited 0; each server holds one of the values written",
            jobs.len()
        ))
    } else {
        Finding::Broken(format!(
            "after parallel stores, get did not return any value written: {}",
            wrong.join("; ")
        ))
    }
}

// ---------------------------------------------------------------- URL variants

fn url_variants_resolve(ctx: &mut Ctx) -> Finding {
    if ctx.mode.is_read_only() {
        let Some(url) = ctx.opts.server_url.clone() else {
            return Finding::Skip(
                "read-only helper without --server-url: nothing to look up".into(),
            );
        };
        let Ok(parsed) = ServerUrl::parse(&url) else {
            return Finding::Skip(format!("--server-url {url:?} does not parse as a registry"));
        };
        let h = parsed.registry();
        let queries = [
            h.clone(),
            format!("https://{h}"),
            format!("https://{h}/"),
            format!("http://{h}"),
            h.to_uppercase(),
        ];
        let line = probe_variants(ctx, &url, &h, &queries, |c, out| {
            let _ = c;
            matches!(out.outcome(), GetOutcome::Credentials(_))
        });
        return Finding::Observed(line);
    }
    if ctx.result_of("store_then_get_returns_the_credential") == Some(super::Status::Fail) {
        return Finding::Skip(
            "needs store_then_get_returns_the_credential, which did not pass".into(),
        );
    }
    let mut lines = Vec::new();
    let h = ctx.sandbox.host("variants");
    let hs = ctx.sandbox.host("variants-https");
    let hp = format!("{}:5000", ctx.sandbox.host("variants-port"));
    let hp_host = ctx.sandbox.host("variants-port");
    let plans: [(String, String, Vec<String>); 3] = [
        (
            h.clone(),
            h.clone(),
            vec![
                h.clone(),
                format!("https://{h}"),
                format!("http://{h}"),
                format!("https://{h}/"),
                format!("{h}/"),
                format!("{h}:443"),
                h.to_uppercase(),
                format!("https://{h}/v1/"),
                format!("{h}/team/app"),
            ],
        ),
        (
            format!("https://{hs}"),
            hs.clone(),
            vec![
                hs.clone(),
                format!("https://{hs}/"),
                format!("https://{hs}"),
            ],
        ),
        (
            hp.clone(),
            hp_host.clone(),
            vec![
                hp.clone(),
                format!("https://{hp}"),
                hp_host.clone(),
                format!("{hp_host}:5001"),
            ],
        ),
    ];
    for (stored_as, host, queries) in plans {
        let secret = ctx.secret("");
        let stored = ctx.store(&Credentials::new(stored_as.clone(), "dci-user", secret));
        if !stored.success {
            lines.push(format!(
                "store as {} failed: {}",
                placeholder(&stored_as, &host),
                ctx.describe(&stored)
            ));
            continue;
        }
        lines.push(probe_variants(
            ctx,
            &stored_as,
            &host,
            &queries,
            |c, out| out.credentials().is_some_and(|f| c.is_ours(&f)),
        ));
    }
    Finding::Observed(lines.join("; "))
}

/// Asks each query, and says which resolved, with the host written as H.
fn probe_variants(
    ctx: &mut Ctx,
    stored_as: &str,
    host: &str,
    queries: &[String],
    resolves: fn(&Ctx, &Observed) -> bool,
) -> String {
    let mut yes = Vec::new();
    let mut no = Vec::new();
    for q in queries {
        let out = ctx.get(q);
        if resolves(ctx, &out) {
            yes.push(placeholder(q, host));
        } else {
            no.push(placeholder(q, host));
        }
    }
    let how = if ctx.mode.is_read_only() {
        "served as"
    } else {
        "stored as"
    };
    let mut line = format!(
        "{how} {}: resolves {}",
        placeholder(stored_as, host),
        list_or_none(&yes)
    );
    if !no.is_empty() {
        line.push_str(&format!("; not {}", no.join(" ")));
    }
    line
}

fn placeholder(url: &str, host: &str) -> String {
    url.replace(host, "H")
        .replace(&host.to_uppercase(), "UPPERCASE-H")
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(" ")
    }
}

const HUB_SPELLINGS: [&str; 6] = [
    DOCKER_HUB_LEGACY_URL,
    "https://index.docker.io/v1",
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "https://registry-1.docker.io",
];

fn docker_hub_spellings_resolve(ctx: &mut Ctx) -> Finding {
    for spelling in HUB_SPELLINGS {
        let out = ctx.get(spelling);
        match out.outcome() {
            GetOutcome::NotFound | GetOutcome::Empty => {}
            GetOutcome::Credentials(_) => {
                return Finding::Skip(
                    "the store holds a Docker Hub credential; it is left untouched, so the spellings were not probed"
                        .into(),
                );
            }
            _ => {
                return Finding::Skip(format!(
                    "could not tell whether the store holds a Docker Hub credential (get {spelling}: {}); not probed",
                    ctx.describe(&out)
                ));
            }
        }
    }
    let secret = ctx.secret("-hub");
    let stored = ctx.store(&Credentials::new(DOCKER_HUB_LEGACY_URL, "dci-user", secret));
    if !stored.success {
        return Finding::Observed(format!(
            "store as {DOCKER_HUB_LEGACY_URL} failed: {}",
            ctx.describe(&stored)
        ));
    }
    let mut yes = Vec::new();
    let mut no = Vec::new();
    for spelling in HUB_SPELLINGS {
        let out = ctx.get(spelling);
        if out.credentials().is_some_and(|f| ctx.is_ours(&f)) {
            yes.push(spelling);
        } else {
            no.push(spelling);
        }
    }
    // Leave no fake Docker Hub login behind for a moment longer than needed;
    // erase only if what is there is still ours.
    let now = ctx.get(DOCKER_HUB_LEGACY_URL);
    if now.credentials().is_some_and(|f| ctx.is_ours(&f)) {
        ctx.erase(DOCKER_HUB_LEGACY_URL);
    }
    let mut line = format!(
        "stored as {DOCKER_HUB_LEGACY_URL}: resolves {}",
        list_or_none(&yes.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    );
    if !no.is_empty() {
        line.push_str(&format!("; not {}", no.join(" ")));
    }
    Finding::Observed(line)
}

// ---------------------------------------------------------------- output shape

/// The first JSON value of a get answer, found after any leading text.
struct Shape {
    /// Bytes before the value, after leading whitespace.
    leading: Vec<u8>,
    /// The value, or why it did not parse.
    value: Result<Value, String>,
    /// Non-whitespace bytes after it.
    trailing: Vec<u8>,
    /// Lines the value itself spans.
    lines: usize,
}

impl Drop for Shape {
    fn drop(&mut self) {
        if let Ok(v) = &mut self.value {
            scrub(v);
        }
    }
}

/// Wipes every string in a parsed answer (it holds the secret).
fn scrub(v: &mut Value) {
    match v {
        Value::String(s) => zeroize::Zeroize::zeroize(s),
        Value::Array(a) => a.iter_mut().for_each(scrub),
        Value::Object(o) => o.values_mut().for_each(scrub),
        _ => {}
    }
}

fn shape(out: &Observed) -> Shape {
    let bytes = out.stdout.expose();
    let body = bytes.trim_ascii();
    let start = body.iter().position(|&b| b == b'{').unwrap_or(body.len());
    let leading = body[..start].to_vec();
    let mut stream = serde_json::Deserializer::from_slice(&body[start..]).into_iter::<Value>();
    let value = match stream.next() {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(format!(
            "invalid JSON at line {} column {}",
            e.line(),
            e.column()
        )),
        None => Err("no JSON object".into()),
    };
    let offset = start + stream.byte_offset();
    let trailing = if value.is_ok() {
        body[offset..].trim_ascii().to_vec()
    } else {
        Vec::new()
    };
    let lines = 1 + body[start..offset].iter().filter(|&&b| b == b'\n').count();
    Shape {
        leading,
        value,
        trailing,
        lines,
    }
}

/// Every successful get answer of the run, with the URL that was asked.
fn answers(ctx: &Ctx) -> Vec<Rc<Observed>> {
    ctx.calls()
        .iter()
        .filter(|c| c.action() == "get" && c.args.len() == 1 && c.success && !c.no_answer())
        .filter(|c| !c.query.as_deref().unwrap_or("").is_empty())
        .cloned()
        .collect()
}

fn over_answers(
    ctx: &mut Ctx,
    judge: impl Fn(&Ctx, &Observed, &Shape) -> Option<String>,
    pass: &str,
) -> Finding {
    let mut all = answers(ctx);
    if all.is_empty() {
        // Make sure there is at least the baseline answer to look at.
        baseline(ctx);
        all = answers(ctx);
    }
    if all.is_empty() {
        let hint = if ctx.mode.is_read_only() && ctx.opts.server_url.is_none() {
            "; pass --server-url with a registry it serves"
        } else {
            ""
        };
        return Finding::Skip(format!("no get returned credentials{hint}"));
    }
    let mut bad = Vec::new();
    for out in &all {
        let s = shape(out);
        if let Some(why) = judge(ctx, out, &s) {
            bad.push(why);
        }
    }
    if bad.is_empty() {
        Finding::Pass(format!("{pass} ({} answer(s))", all.len()))
    } else {
        Finding::Broken(format!(
            "{} of {} answers: {}",
            bad.len(),
            all.len(),
            bad[0]
        ))
    }
}

/// Quotes a fragment of helper output, masked like every other quote.
fn quote_fragment(ctx: &Ctx, bytes: &[u8]) -> String {
    let fake = Observed {
        args: vec!["(fragment)".into()],
        query: None,
        code: None,
        success: false,
        stdout: Secret::new(bytes.to_vec()),
        stderr: Vec::new(),
        elapsed: Duration::ZERO,
        timed_out: false,
        not_run: None,
    };
    ctx.quote(&fake)
}

fn get_output_starts_with_json(ctx: &mut Ctx) -> Finding {
    over_answers(
        ctx,
        |c, _, s| {
            if !s.leading.is_empty() {
                Some(format!(
                    "text before the JSON: {}; every consumer's decoder fails on it",
                    quote_fragment(c, &s.leading)
                ))
            } else {
                s.value.as_ref().err().map(|e| format!("exit 0 but {e}"))
            }
        },
        "stdout starts with the JSON object",
    )
}

fn get_output_has_nothing_after_json(ctx: &mut Ctx) -> Finding {
    over_answers(
        ctx,
        |c, _, s| {
            (!s.trailing.is_empty()).then(|| {
                format!(
                    "text after the JSON: {}; Incus, oras and the Rust docker_credential crate reject it",
                    quote_fragment(c, &s.trailing)
                )
            })
        },
        "nothing follows the JSON object",
    )
}

fn get_output_has_username_and_secret(ctx: &mut Ctx) -> Finding {
    over_answers(
        ctx,
        |_, _, s| {
            let Ok(value) = &s.value else { return None };
            let Some(obj) = value.as_object() else {
                return Some("the JSON value is not an object".into());
            };
            let mut missing = Vec::new();
            for key in ["Username", "Secret"] {
                match obj.get(key) {
                    Some(Value::String(_)) => {}
                    Some(other) => {
                        return Some(format!("`{key}` is {}, not a string", kind(other)));
                    }
                    None => missing.push(key),
                }
            }
            (!missing.is_empty()).then(|| {
                let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
                format!(
                    "no exact `{}` key (keys are {keys:?}); Incus and the Rust crate need exact PascalCase",
                    missing.join("`, `")
                )
            })
        },
        "`Username` and `Secret` are present as strings",
    )
}

fn get_output_values_are_strings(ctx: &mut Ctx) -> Finding {
    over_answers(
        ctx,
        |_, _, s| {
            let obj = s.value.as_ref().ok()?.as_object()?;
            let odd: Vec<String> = obj
                .iter()
                .filter(|(_, v)| !v.is_string())
                .map(|(k, v)| format!("`{k}` is {}", kind(v)))
                .collect();
            (!odd.is_empty()).then(|| {
                format!(
                    "{}; Incus decodes the answer as a map of strings and fails",
                    odd.join(", ")
                )
            })
        },
        "every value is a string",
    )
}

fn get_output_echoes_server_url(ctx: &mut Ctx) -> Finding {
    over_answers(
        ctx,
        |_, out, s| {
            let obj = s.value.as_ref().ok()?.as_object()?;
            let asked = out.query.clone().unwrap_or_default();
            let echoed = obj
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("ServerURL"))
                .map(|(_, v)| v);
            match echoed {
                None => Some(
                    "no ServerURL: docker and skopeo fill in the query, other clients may use a default registry"
                        .into(),
                ),
                Some(Value::String(url)) if *url == asked => None,
                Some(Value::String(url)) => {
                    Some(format!("ServerURL {url:?} for the query {asked:?}"))
                }
                Some(other) => Some(format!("ServerURL is {}", kind(other))),
            }
        },
        "ServerURL echoes the query",
    )
}

fn get_output_is_one_line(ctx: &mut Ctx) -> Finding {
    over_answers(
        ctx,
        |_, _, s| {
            let lines = s.lines;
            (lines > 1).then(|| {
                format!(
                    "the answer spans {lines} lines: JSON decoders accept it, line-based readers do not"
                )
            })
        },
        "one line",
    )
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------- read-only

fn read_only_probe(ctx: &mut Ctx) -> (String, Rc<Observed>) {
    if let Some(stored) = ctx.facts.probe_store.clone() {
        return (ctx.sandbox.main(), stored);
    }
    let url = ctx.sandbox.host("read-only");
    let secret = ctx.secret("");
    let stored = ctx.store(&Credentials::new(url.clone(), "dci-user", secret));
    ctx.facts.probe_store = Some(stored.clone());
    (url, stored)
}

fn read_only_store_refuses_clearly(ctx: &mut Ctx) -> Finding {
    let (url, stored) = read_only_probe(ctx);
    if stored.no_answer() {
        return skip_no_answer(ctx, &stored);
    }
    if !stored.success {
        let text = stored.stdout_trimmed();
        return if !text.is_empty() && !text.contains(&b'\n') {
            Finding::Pass(format!("store refused: {}", ctx.describe(&stored)))
        } else if text.is_empty() {
            Finding::Broken(format!(
                "store exits {} with nothing on stdout, so `docker login` can only say `exit status`",
                stored.code.map_or("on a signal".into(), |c| c.to_string())
            ))
        } else {
            Finding::Broken(format!(
                "store refused with several lines: {}",
                ctx.describe(&stored)
            ))
        };
    }
    let got = ctx.get(&url);
    if got.credentials().is_some_and(|f| ctx.is_ours(&f)) {
        return Finding::Broken(
            "store kept the credential: this helper is writable; run without --read-only".into(),
        );
    }
    Finding::Broken(format!(
        "store {}, and keeps nothing: `docker login` reports success and the next pull has no credentials",
        if stored.stdout_trimmed().is_empty() {
            "exits 0 silently".to_string()
        } else {
            format!("exits 0 ({})", ctx.describe(&stored))
        }
    ))
}

fn read_only_erase_behaviour(ctx: &mut Ctx) -> Finding {
    let (url, _) = read_only_probe(ctx);
    let out = ctx.erase(&url);
    if out.not_run.is_some() {
        return skip_no_answer(ctx, &out);
    }
    Finding::Observed(if out.success && out.stdout_trimmed().is_empty() {
        "erase exits 0 silently (no-op)".into()
    } else if out.success {
        format!("erase exits 0 and prints {}", ctx.quote(&out))
    } else {
        format!("erase fails: {}", ctx.describe(&out))
    })
}

fn read_only_list_behaviour(ctx: &mut Ctx) -> Finding {
    let out = ctx.list();
    if out.not_run.is_some() {
        return skip_no_answer(ctx, &out);
    }
    if !out.success || out.timed_out {
        return Finding::Observed(format!("list fails: {}", ctx.describe(&out)));
    }
    if out.stdout_trimmed().is_empty() {
        return Finding::Observed("list exits 0 silently, with no JSON".into());
    }
    Finding::Observed(match protocol::decode_list(out.stdout.expose()) {
        Ok(map) if map.is_empty() => "list exits 0 with {} (no entries)".into(),
        Ok(map) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).take(3).collect();
            format!(
                "list exits 0 with {} entr{} (e.g. {})",
                map.len(),
                if map.len() == 1 { "y" } else { "ies" },
                keys.join(", ")
            )
        }
        Err(e) => format!("list exits 0 but prints no JSON object of strings: {e}"),
    })
}

// ---------------------------------------------------------------- run

fn calls_finish_within_deadline(ctx: &mut Ctx) -> Finding {
    let hung: Vec<String> = ctx
        .calls()
        .iter()
        .filter(|c| c.timed_out)
        .map(|c| {
            let input = match &c.query {
                Some(q) if q.is_empty() => " (empty stdin)".to_string(),
                Some(q) => format!(" {q}"),
                None => String::new(),
            };
            format!("`{}`{input}", c.args.join(" "))
        })
        .collect();
    let ran = ctx.calls().iter().filter(|c| c.not_run.is_none()).count();
    if hung.is_empty() {
        return Finding::Pass(format!(
            "{ran} calls, each answered within {}",
            seconds(ctx.opts.deadline)
        ));
    }
    let skipped = ctx
        .calls()
        .iter()
        .filter(|c| c.not_run.as_deref().is_some_and(|w| w.contains("deadline")))
        .count();
    Finding::Broken(format!(
        "{} call(s) gave no answer within {} with stdin closed, and their process groups were killed: {}{}",
        hung.len(),
        seconds(ctx.opts.deadline),
        hung.join(", "),
        if skipped > 0 {
            format!("; {skipped} later call(s) of the same action were not made")
        } else {
            String::new()
        }
    ))
}

fn stored_secrets_never_leak(ctx: &mut Ctx) -> Finding {
    if ctx.tokens().is_empty() {
        return Finding::Skip("this run stored no secret".into());
    }
    let mut places = Vec::new();
    for call in ctx.calls() {
        let leaked = |bytes: &[u8]| ctx.tokens().iter().any(|t| contains(bytes, t.as_bytes()));
        let action = call.args.join(" ");
        if leaked(&call.stderr) {
            places.push(format!("stderr of `{action}`"));
        }
        let answer = call.action() == "get" && call.success;
        if !answer && leaked(call.stdout.expose()) {
            places.push(format!(
                "stdout of `{action}` (exit {})",
                call.code.unwrap_or(-1)
            ));
        }
    }
    places.dedup();
    if places.is_empty() {
        Finding::Pass(format!(
            "none of the {} secrets stored appeared on stderr or in error output of {} calls",
            ctx.tokens().len(),
            ctx.calls().len()
        ))
    } else {
        Finding::Broken(format!(
            "a secret this run stored appeared on {}",
            places.join(", ")
        ))
    }
}

fn action_timing(ctx: &mut Ctx) -> Finding {
    let timings = super::runner::timings(ctx);
    if timings.is_empty() {
        return Finding::Skip("no call finished".into());
    }
    let mut parts: Vec<String> = timings
        .iter()
        .map(|t| {
            format!(
                "{} median {} worst {} ({} calls)",
                t.action,
                millis(t.median),
                millis(t.worst),
                t.calls
            )
        })
        .collect();
    let slow = ctx
        .calls()
        .iter()
        .filter(|c| !c.timed_out && c.elapsed > Duration::from_secs(1))
        .count();
    if slow > 0 {
        parts.push(format!(
            "{slow} call(s) over 1 s: docker runs get on every pull and build"
        ));
    }
    Finding::Observed(parts.join("; "))
}

fn millis(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

// ---------------------------------------------------------------- shared

fn skip_no_answer(ctx: &Ctx, out: &Observed) -> Finding {
    match &out.not_run {
        Some(why) => Finding::Skip(format!("`{}` {why}", out.args.join(" "))),
        None => Finding::Skip(format!(
            "`{}` {}; see calls_finish_within_deadline",
            out.args.join(" "),
            ctx.describe(out)
        )),
    }
}

/// A get answer in words, without any secret.
fn summarize(ctx: &Ctx, out: &Observed) -> String {
    match out.outcome() {
        GetOutcome::Credentials(f) if ctx.is_ours(&f) => "the stored credential".into(),
        GetOutcome::Credentials(_) => "credentials".into(),
        GetOutcome::Empty => "exit 0 with empty Username and Secret".into(),
        GetOutcome::NotFound => "not-found".into(),
        GetOutcome::Garbage => "exit 0 without a credential object".into(),
        GetOutcome::Failed | GetOutcome::Hung | GetOutcome::NotRun(_) => ctx.describe(out),
    }
}

/// Like [`summarize`], naming the fields that differ from `reference`.
fn summarize_against(ctx: &Ctx, out: &Observed, reference: &Observed) -> String {
    if let (Some(a), Some(b)) = (out.credentials(), reference.credentials()) {
        let mut differ = Vec::new();
        if a.server_url != b.server_url {
            differ.push("ServerURL");
        }
        if a.username != b.username {
            differ.push("Username");
        }
        if a.secret != b.secret {
            differ.push("Secret");
        }
        if !differ.is_empty() {
            return format!("credentials with a different {}", differ.join(", "));
        }
    }
    summarize(ctx, out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
