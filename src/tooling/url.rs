//! `url`: put a credential into a registry URL as userinfo, and take it out.
//!
//! Incus hands credentials to skopeo as `https://user:pass@host`, and Go's
//! `url.UserPassword` leaves `$&+,;=` unescaped while consumers decode in
//! different ways (protocol.md §5, §7). Here every byte outside RFC 3986
//! "unreserved" is percent-encoded, so any decoder gives back the exact bytes.
//! What basic auth cannot carry is refused: an identity token (`<token>`) and
//! a username with `:`.

use std::time::Duration;

use clap::Args;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};

use super::client::{Format, print_credentials};
use super::{Source, Streams, ToolError};
use crate::protocol::{self, Credentials, TOKEN_USERNAME};
use crate::registry::ServerUrl;
use crate::secret::Secret;

/// Everything but RFC 3986 unreserved characters (ALPHA DIGIT `-` `.` `_` `~`).
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Arguments of `url`.
#[derive(Debug, Args)]
pub struct UrlArgs {
    /// The registry URL to add userinfo to; `https://` is added when it has no scheme.
    #[arg(value_name = "URL", required_unless_present = "decode")]
    pub url: Option<String>,
    /// The inverse: read a URL with userinfo from stdin and print its credential.
    #[arg(long, conflicts_with_all = ["url", "helper", "route", "username"])]
    pub decode: bool,
    /// Take the credential from this helper (name or path).
    #[arg(long, value_name = "HELPER", conflicts_with = "route")]
    pub helper: Option<String>,
    /// Take the credential from the store the protocol verbs use.
    #[arg(long)]
    pub route: bool,
    /// The username; stdin then holds the secret alone. Without it and without
    /// --helper/--route, stdin holds a credential object such as `get` prints.
    #[arg(long, value_name = "USER", conflicts_with_all = ["helper", "route"])]
    pub username: Option<String>,
    /// Output of --decode: json, env, username or secret.
    #[arg(long, value_enum, default_value_t = Format::Json, requires = "decode")]
    pub format: Format,
    /// Seconds a helper may take.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

/// Runs `url`.
pub fn run(args: UrlArgs, io: &mut Streams) -> Result<(), ToolError> {
    if args.decode {
        let request =
            protocol::read_request(io.stdin).map_err(|e| ToolError::Usage(e.to_string()))?;
        let text =
            Secret::new(String::from_utf8(request).map_err(|_| {
                ToolError::Usage("the URL on stdin is not valid UTF-8".to_string())
            })?);
        let creds = decode(text.expose().trim())?;
        return print_credentials(&creds, args.format, io.stdout);
    }
    let url = args.url.unwrap_or_default();
    let registry = ServerUrl::parse(&url).map_err(|e| ToolError::Usage(e.to_string()))?;
    let creds = match (
        Source::from_flags(args.helper.as_deref(), args.route)?,
        args.username,
    ) {
        (Some(source), _) => {
            let store = source.open(Duration::from_secs(args.timeout.max(1)))?;
            super::fetch(
                store.as_ref(),
                &super::RegistrySpec {
                    url: registry,
                    source,
                },
            )?
        }
        (None, Some(username)) => Credentials {
            server_url: url.clone(),
            username,
            secret: super::read_secret(io.stdin)?,
        },
        (None, None) => {
            let request =
                protocol::read_request(io.stdin).map_err(|e| ToolError::Usage(e.to_string()))?;
            let fields = protocol::decode_credential_object(&request).map_err(|e| {
                ToolError::Usage(format!(
                    "stdin holds no credential object ({e}); pipe in what `get` prints, or use --username"
                ))
            })?;
            let (Some(username), Some(secret)) = (fields.username, fields.secret) else {
                return Err(ToolError::Usage(
                    "the credential object on stdin has no Username or Secret".to_string(),
                ));
            };
            Credentials {
                server_url: url.clone(),
                username,
                secret,
            }
        }
    };
    let mut line = encode(&url, &creds.username, creds.secret.expose())?;
    line.push('\n');
    let line = Secret::new(line);
    io.stdout
        .write_all(line.expose().as_bytes())
        .and_then(|()| io.stdout.flush())
        .map_err(|e| ToolError::Failed(format!("cannot write to stdout: {e}")))
}

/// `url` with `username:secret@` added, both percent-encoded.
pub fn encode(url: &str, username: &str, secret: &str) -> Result<String, ToolError> {
    check_basic_auth_username(username)?;
    let url = url.trim();
    let (scheme, rest) = match url.find("://") {
        Some(at) => (&url[..at], &url[at + 3..]),
        None => ("https", url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(ToolError::Usage(
            "the URL already holds user information; give it without user@".to_string(),
        ));
    }
    if authority.is_empty() {
        return Err(ToolError::Usage("the URL has no host".to_string()));
    }
    Ok(format!(
        "{scheme}://{}:{}@{authority}{tail}",
        utf8_percent_encode(username, USERINFO),
        utf8_percent_encode(secret, USERINFO)
    ))
}

/// Refuses what HTTP basic auth cannot carry.
pub fn check_basic_auth_username(username: &str) -> Result<(), ToolError> {
    if username == TOKEN_USERNAME {
        return Err(ToolError::Usage(
            "the credential is an identity token (username <token>), which basic auth cannot carry; use `authfile` or `exec`, which write it as an identitytoken".to_string(),
        ));
    }
    if username.contains(':') {
        return Err(ToolError::Usage(
            "the username contains ':', which basic auth cannot carry (user:password splits at the first ':')".to_string(),
        ));
    }
    if username.is_empty() {
        return Err(ToolError::Usage(protocol::ERR_MISSING_USERNAME.to_string()));
    }
    Ok(())
}

/// The credential in a URL's userinfo; ServerURL is the URL without it.
/// Errors never quote the URL, which holds a secret.
pub fn decode(url: &str) -> Result<Credentials, ToolError> {
    let (prefix, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some(at) = authority.rfind('@') else {
        return Err(ToolError::NotFound(
            "the URL on stdin holds no user information".to_string(),
        ));
    };
    let (userinfo, host) = (&authority[..at], &authority[at + 1..]);
    let (user, secret) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let username = percent_decode_strict(user, "username")?;
    let secret = Secret::new(percent_decode_strict(secret, "password")?);
    if host.is_empty() {
        return Err(ToolError::Usage("the URL on stdin has no host".to_string()));
    }
    Ok(Credentials {
        server_url: format!("{prefix}{host}{tail}"),
        username,
        secret: Secret::new(secret.expose().clone()),
    })
}

/// Percent-decodes, refusing a `%` not followed by two hex digits and
/// results that are not UTF-8. `+` stays `+`: this is not a form.
fn percent_decode_strict(text: &str, what: &str) -> Result<String, ToolError> {
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit())
        {
            return Err(ToolError::Usage(format!(
                "the {what} in the URL has a '%' at byte {} that starts no %XX escape",
                i + 1
            )));
        }
    }
    String::from_utf8(percent_decode(bytes).collect())
        .map_err(|_| ToolError::Usage(format!("the {what} in the URL does not decode to UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWKWARD: [&str; 8] = [
        "p+a/s=s@w:o%rd with space",
        "+/=@:% ",
        "%41%",
        "grüße-密码-🔑",
        "a\u{0}b\tc\n",
        "$&,;'\"<>?#[]",
        "",
        "~-._",
    ];

    #[test]
    fn userinfo_round_trips_byte_for_byte() {
        for secret in AWKWARD {
            for user in ["u", "us er+@/=%", "ümlaut"] {
                let url = encode("https://r.example.test:5000/v2/", user, secret).unwrap();
                let creds = decode(&url).unwrap();
                assert_eq!(creds.username.as_bytes(), user.as_bytes(), "{url}");
                assert_eq!(creds.secret.expose().as_bytes(), secret.as_bytes(), "{url}");
                assert_eq!(creds.server_url, "https://r.example.test:5000/v2/");
                // An independent decoder agrees.
                let userinfo = url
                    .strip_prefix("https://")
                    .and_then(|r| r.rsplit_once('@'))
                    .map(|(u, _)| u)
                    .unwrap();
                let (u, p) = userinfo.split_once(':').unwrap();
                assert_eq!(
                    percent_decode(u.as_bytes()).collect::<Vec<u8>>(),
                    user.as_bytes()
                );
                assert_eq!(
                    percent_decode(p.as_bytes()).collect::<Vec<u8>>(),
                    secret.as_bytes()
                );
            }
        }
    }

    #[test]
    fn only_unreserved_characters_stay_literal() {
        assert_eq!(
            encode("r.example.test", "u", "+/=@:% é").unwrap(),
            "https://u:%2B%2F%3D%40%3A%25%20%C3%A9@r.example.test"
        );
        assert_eq!(
            encode("http://127.0.0.1:5000/x?y", "a-b_c.d~", "s").unwrap(),
            "http://a-b_c.d~:s@127.0.0.1:5000/x?y"
        );
    }

    #[test]
    fn what_basic_auth_cannot_carry_is_refused() {
        for user in ["<token>", "a:b", ""] {
            assert!(
                matches!(encode("h", user, "s"), Err(ToolError::Usage(_))),
                "{user}"
            );
        }
        assert!(matches!(
            encode("https://x@h", "u", "s"),
            Err(ToolError::Usage(_))
        ));
    }

    #[test]
    fn bad_escapes_are_refused_without_quoting_the_secret() {
        let err = decode("https://u:hunter%2@h").unwrap_err().to_string();
        assert!(!err.contains("hunter"), "{err}");
        assert!(matches!(
            decode("https://u:%zz@h"),
            Err(ToolError::Usage(_))
        ));
        assert!(matches!(
            decode("https://u:%ff@h"),
            Err(ToolError::Usage(_))
        ));
        assert!(matches!(decode("https://h/x"), Err(ToolError::NotFound(_))));
    }

    #[test]
    fn plus_is_not_a_space() {
        let creds = decode("https://u:a+b@h").unwrap();
        assert_eq!(creds.secret.expose(), "a+b");
    }
}
