//! The docker credential-helper wire format: actions, the exact error texts,
//! request parsing and response writing.
//!
//! This is the only module that writes protocol output. It is byte-compatible
//! with docker-credential-helpers: compact JSON in Go's key order and with Go's
//! HTML escaping (`<token>` is written `\u003ctoken\u003e`), one line per answer,
//! errors as one line on stdout. It also holds the client half (encoding a
//! `store` request, decoding a `get` answer by Go's rules) so the helper side
//! and the code that calls other helpers agree on every byte.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use crate::secret::Secret;

/// The text clients string-match to mean "no credentials for this server".
pub const ERR_NOT_FOUND: &str = "credentials not found in native keychain";
/// The text for an empty server URL.
pub const ERR_MISSING_SERVER_URL: &str = "no credentials server URL";
/// The text for a `store` request without a username.
pub const ERR_MISSING_USERNAME: &str = "no credentials username";
/// The username that marks the secret as an identity (refresh) token.
pub const TOKEN_USERNAME: &str = "<token>";
/// The largest request read from stdin. A store request holding a 1 MiB secret
/// of characters that JSON must escape as `\uXXXX` is about 6 MiB; this leaves room.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// The five protocol actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read a server URL, print its credentials.
    Get,
    /// Read a credentials object, save it.
    Store,
    /// Read a server URL, delete its credentials.
    Erase,
    /// Print every server URL with its username.
    List,
    /// Print the version line.
    Version,
}

impl Action {
    /// Every action, in the order of the usage line.
    pub const ALL: [Action; 5] = [
        Action::Store,
        Action::Get,
        Action::Erase,
        Action::List,
        Action::Version,
    ];

    /// The action named on the command line, if it is one.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Get => "get",
            Action::Store => "store",
            Action::Erase => "erase",
            Action::List => "list",
            Action::Version => "version",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One credential as it crosses the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The server URL, as the client spelled it.
    pub server_url: String,
    /// The username; [`TOKEN_USERNAME`] for an identity token.
    pub username: String,
    /// The password or token.
    pub secret: Secret<String>,
}

impl Credentials {
    /// Builds a credential.
    pub fn new(
        server_url: impl Into<String>,
        username: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Credentials {
            server_url: server_url.into(),
            username: username.into(),
            secret: Secret::new(secret.into()),
        }
    }

    /// True when the username marks an identity token.
    pub fn is_identity_token(&self) -> bool {
        self.username == TOKEN_USERNAME
    }
}

/// A request that could not be read. The messages never quote the input,
/// because the input may hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Empty server URL, or a store request without one.
    #[error("{ERR_MISSING_SERVER_URL}")]
    MissingServerUrl,
    /// A store request without a username.
    #[error("{ERR_MISSING_USERNAME}")]
    MissingUsername,
    /// More than [`MAX_INPUT_BYTES`] on stdin.
    #[error("request on stdin is larger than the {} MiB limit", MAX_INPUT_BYTES / (1024 * 1024))]
    TooLarge,
    /// stdin is not UTF-8.
    #[error("request on stdin is not valid UTF-8")]
    NotUtf8,
    /// stdin could not be read.
    #[error("cannot read the request from stdin: {0}")]
    Read(io::ErrorKind),
    /// Empty stdin where a JSON object was expected.
    #[error(
        "store request is empty: expected {{\"ServerURL\":…,\"Username\":…,\"Secret\":…}} on stdin"
    )]
    EmptyStore,
    /// The store request is not a JSON object of strings.
    #[error("store request is not valid: {0}")]
    BadStore(String),
}

/// Reads stdin to EOF, refusing more than [`MAX_INPUT_BYTES`].
pub fn read_request(input: &mut dyn Read) -> Result<Vec<u8>, RequestError> {
    let mut buf = Vec::new();
    input
        .take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| RequestError::Read(e.kind()))?;
    if buf.len() > MAX_INPUT_BYTES {
        return Err(RequestError::TooLarge);
    }
    Ok(buf)
}

/// The server URL of a `get` or `erase` request: surrounding whitespace
/// (a trailing `\n` or `\r\n`, spaces) is trimmed, as Go's `TrimSpace` does.
pub fn parse_server_url(request: &[u8]) -> Result<String, RequestError> {
    let text = std::str::from_utf8(request).map_err(|_| RequestError::NotUtf8)?;
    let url = text.trim();
    if url.is_empty() {
        return Err(RequestError::MissingServerUrl);
    }
    Ok(url.to_string())
}

/// A `store` request. Key names match case-insensitively and unknown fields
/// are ignored, as Go's `encoding/json` does; only the first JSON value is read.
/// An empty secret is allowed, as in docker-credential-helpers.
pub fn parse_store_request(request: &[u8]) -> Result<Credentials, RequestError> {
    if request.iter().all(u8::is_ascii_whitespace) {
        return Err(RequestError::EmptyStore);
    }
    let fields = decode_credential_object(request).map_err(RequestError::BadStore)?;
    let server_url = fields.server_url.unwrap_or_default();
    let username = fields.username.unwrap_or_default();
    if server_url.trim().is_empty() {
        return Err(RequestError::MissingServerUrl);
    }
    if username.is_empty() {
        return Err(RequestError::MissingUsername);
    }
    Ok(Credentials {
        server_url,
        username,
        secret: fields.secret.unwrap_or_default(),
    })
}

/// The three fields of a credential object, each absent if the JSON lacked it.
#[derive(Debug, Default)]
pub struct CredentialFields {
    /// `ServerURL`, in any letter case.
    pub server_url: Option<String>,
    /// `Username`, in any letter case.
    pub username: Option<String>,
    /// `Secret`, in any letter case.
    pub secret: Option<Secret<String>>,
}

/// Decodes the first JSON value of `bytes` as a credential object, with Go's
/// rules: case-insensitive keys, last duplicate wins, unknown keys ignored,
/// `null` leaves a field empty, text after the first value ignored.
/// The error text never quotes a value.
pub fn decode_credential_object(bytes: &[u8]) -> Result<CredentialFields, String> {
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<GoCredentials>();
    match stream.next() {
        Some(Ok(GoCredentials(fields))) => Ok(fields),
        Some(Err(e)) => Err(describe_json_error(&e)),
        None => Err("no JSON value".to_string()),
    }
}

/// Describes a serde_json error by its position only: serde's own message can
/// quote the offending value, which may be a secret.
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "invalid JSON",
        Category::Data => {
            // Our visitor's own messages hold no values; pass them through.
            let msg = e.to_string();
            if let Some(ours) = msg.strip_prefix(OWN_ERROR_MARK) {
                return ours.split(" at line ").next().unwrap_or(ours).to_string();
            }
            "unexpected JSON shape"
        }
        Category::Eof => "truncated JSON",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

const OWN_ERROR_MARK: &str = "\u{1}";

struct GoCredentials(CredentialFields);

impl<'de> serde::Deserialize<'de> for GoCredentials {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CredVisitor;
        impl<'de> Visitor<'de> for CredVisitor {
            type Value = GoCredentials;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GoCredentials, A::Error> {
                let mut fields = CredentialFields::default();
                while let Some(key) = map.next_key::<String>()? {
                    let value: Value = map.next_value()?;
                    let slot = if key.eq_ignore_ascii_case("ServerURL") {
                        "ServerURL"
                    } else if key.eq_ignore_ascii_case("Username") {
                        "Username"
                    } else if key.eq_ignore_ascii_case("Secret") {
                        "Secret"
                    } else {
                        continue;
                    };
                    let text = match value {
                        Value::String(s) => Some(s),
                        Value::Null => None,
                        _ => {
                            return Err(de::Error::custom(format!(
                                "{OWN_ERROR_MARK}field {slot} must be a string"
                            )));
                        }
                    };
                    match slot {
                        "ServerURL" => fields.server_url = text,
                        "Username" => fields.username = text,
                        _ => fields.secret = text.map(Secret::new),
                    }
                }
                Ok(GoCredentials(fields))
            }
        }
        deserializer.deserialize_map(CredVisitor)
    }
}

/// Writes a `get` answer: `{"ServerURL":…,"Username":…,"Secret":…}` and `\n`.
pub fn write_credentials(out: &mut dyn Write, creds: &Credentials) -> io::Result<()> {
    let mut buf = Vec::with_capacity(64 + creds.secret.expose().len());
    {
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, GoFormatter);
        let mut map = ser.serialize_map(Some(3)).map_err(io::Error::other)?;
        map.serialize_entry("ServerURL", &creds.server_url)
            .map_err(io::Error::other)?;
        map.serialize_entry("Username", &creds.username)
            .map_err(io::Error::other)?;
        map.serialize_entry("Secret", creds.secret.expose())
            .map_err(io::Error::other)?;
        map.end().map_err(io::Error::other)?;
    }
    buf.push(b'\n');
    let result = out.write_all(&buf).and_then(|()| out.flush());
    zeroize::Zeroize::zeroize(&mut buf);
    result
}

/// Encodes a `store` request as Go's `json.Encoder` does: compact, then `\n`.
pub fn encode_store_request(creds: &Credentials) -> Secret<Vec<u8>> {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_credentials(&mut buf, creds);
    Secret::new(buf)
}

/// Writes a `list` answer: `{"<ServerURL>":"<Username>",…}` sorted by key, or `{}`.
pub fn write_list(out: &mut dyn Write, entries: &BTreeMap<String, String>) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, GoFormatter);
    serde::Serialize::serialize(entries, &mut ser).map_err(io::Error::other)?;
    buf.push(b'\n');
    out.write_all(&buf)?;
    out.flush()
}

/// Writes an error: one line on the protocol stream.
pub fn write_error(out: &mut dyn Write, message: &str) -> io::Result<()> {
    // A message must stay one line, or clients' exact-match would break.
    let one_line: String = message
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    writeln!(out, "{}", one_line.trim_end())?;
    out.flush()
}

/// The version line.
pub fn version_line() -> String {
    format!(
        "docker-credential-incus ({}) v{}",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION")
    )
}

/// Writes the version line.
pub fn write_version(out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", version_line())?;
    out.flush()
}

/// The usage line docker-credential-helpers prints for a wrong argument count.
pub fn usage_line() -> &'static str {
    "Usage: docker-credential-incus <store|get|erase|list|version>"
}

/// serde_json formatter that escapes like Go's `encoding/json`: `<`, `>`, `&`,
/// U+2028 and U+2029 become `\u` escapes.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// The map of a `list` answer, decoded strictly: an object of strings.
pub fn decode_list(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let mut stream =
        serde_json::Deserializer::from_slice(bytes).into_iter::<BTreeMap<String, Value>>();
    let map = match stream.next() {
        Some(Ok(map)) => map,
        Some(Err(e)) => return Err(describe_json_error(&e)),
        None => return Err("no JSON value".to_string()),
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err(format!("value for {k:?} is not a string")),
        })
        .collect()
}

/// Writes any JSON value with the Go escaping rules (used by tooling that
/// prints maps of strings).
pub fn write_json_line<T: serde::Serialize>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, GoFormatter);
    value.serialize(&mut ser).map_err(io::Error::other)?;
    buf.push(b'\n');
    out.write_all(&buf)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(creds: &Credentials) -> String {
        let mut out = Vec::new();
        write_credentials(&mut out, creds).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn get_answer_is_one_compact_line_in_go_key_order() {
        let c = Credentials::new("https://r.example.test", "u", "s");
        assert_eq!(
            written(&c),
            "{\"ServerURL\":\"https://r.example.test\",\"Username\":\"u\",\"Secret\":\"s\"}\n"
        );
    }

    #[test]
    fn identity_token_username_is_escaped_like_go() {
        let c = Credentials::new("h", "<token>", "a&b\u{2028}");
        assert_eq!(
            written(&c),
            "{\"ServerURL\":\"h\",\"Username\":\"\\u003ctoken\\u003e\",\"Secret\":\"a\\u0026b\\u2028\"}\n"
        );
    }

    #[test]
    fn json_special_characters_round_trip() {
        let secret = "\"\\/\n\t\u{0}ü€😀";
        let c = Credentials::new("h", "u", secret);
        let back = decode_credential_object(written(&c).as_bytes()).unwrap();
        assert_eq!(back.secret.unwrap().expose(), secret);
    }

    #[test]
    fn server_url_is_trimmed_of_newlines_and_spaces() {
        for input in ["h", "h\n", "h\r\n", "  h \t\n"] {
            assert_eq!(parse_server_url(input.as_bytes()).unwrap(), "h");
        }
    }

    #[test]
    fn empty_server_url_is_the_missing_url_error() {
        for input in ["", "\n", "  \r\n"] {
            let err = parse_server_url(input.as_bytes()).unwrap_err();
            assert_eq!(err.to_string(), ERR_MISSING_SERVER_URL);
        }
    }

    #[test]
    fn store_request_keys_match_case_insensitively() {
        let c = parse_store_request(br#"{"serverurl":"h","USERNAME":"u","secret":"s","Extra":1}"#)
            .unwrap();
        assert_eq!(
            (
                c.server_url.as_str(),
                c.username.as_str(),
                c.secret.expose().as_str()
            ),
            ("h", "u", "s")
        );
    }

    #[test]
    fn store_request_reads_only_the_first_value() {
        let c = parse_store_request(
            b"{\"ServerURL\":\"h\",\"Username\":\"u\",\"Secret\":\"s\"}\n{garbage",
        )
        .unwrap();
        assert_eq!(c.username, "u");
    }

    #[test]
    fn store_request_last_duplicate_wins() {
        let c =
            parse_store_request(br#"{"ServerURL":"h","Username":"a","username":"b","Secret":""}"#)
                .unwrap();
        assert_eq!(c.username, "b");
        assert!(c.secret.is_empty());
    }

    #[test]
    fn store_request_without_fields_gives_the_exact_texts() {
        let err =
            parse_store_request(br#"{"ServerURL":"","Username":"u","Secret":"s"}"#).unwrap_err();
        assert_eq!(err.to_string(), ERR_MISSING_SERVER_URL);
        let err = parse_store_request(br#"{"ServerURL":"h","Secret":"s"}"#).unwrap_err();
        assert_eq!(err.to_string(), ERR_MISSING_USERNAME);
    }

    #[test]
    fn store_request_errors_never_quote_values() {
        let err = parse_store_request(br#"{"ServerURL":"h","Username":"u","Secret":12345678}"#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "store request is not valid: field Secret must be a string"
        );
        let err = parse_store_request(br#"{"ServerURL":"h","Username":"u","Secret":"hunter2"#)
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = parse_store_request(b"[\"hunter2\"]").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(matches!(
            parse_store_request(b" \n"),
            Err(RequestError::EmptyStore)
        ));
    }

    #[test]
    fn list_answer_is_sorted_compact_json() {
        let mut m = BTreeMap::new();
        m.insert("b.test".to_string(), "u2".to_string());
        m.insert("a.test".to_string(), "<token>".to_string());
        let mut out = Vec::new();
        write_list(&mut out, &m).unwrap();
        assert_eq!(
            out,
            b"{\"a.test\":\"\\u003ctoken\\u003e\",\"b.test\":\"u2\"}\n"
        );
        let mut out = Vec::new();
        write_list(&mut out, &BTreeMap::new()).unwrap();
        assert_eq!(out, b"{}\n");
    }

    #[test]
    fn errors_are_one_line() {
        let mut out = Vec::new();
        write_error(&mut out, "a\nb\r\n").unwrap();
        assert_eq!(out, b"a b\n");
    }

    #[test]
    fn oversized_request_is_refused() {
        let big = vec![b'a'; MAX_INPUT_BYTES + 1];
        assert!(matches!(
            read_request(&mut big.as_slice()),
            Err(RequestError::TooLarge)
        ));
        let ok = vec![b'a'; 10];
        assert_eq!(read_request(&mut ok.as_slice()).unwrap().len(), 10);
    }
}
