//! Server-URL parsing and canonical registry keys.
//!
//! Clients spell one registry many ways: docker sends `https://index.docker.io/v1/`
//! for Docker Hub and `host[:port]` elsewhere (and `http://host`, `https://host` at
//! logout), skopeo and podman send `host[:port]` with Hub as `docker.io`, and Incus
//! before 6.22 sent `https://host`. One stored credential answers all of them: the
//! key is the lowercased host, the port if one was given, and the path without
//! trailing slashes; the scheme is dropped and the Hub family shares one key.

use std::fmt;

/// The hosts that all mean Docker Hub.
const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];
/// The key that every Docker Hub spelling maps to.
pub const DOCKER_HUB_KEY: &str = "docker.io";
/// The server URL the docker CLI uses for Docker Hub (its `credsStore` key).
pub const DOCKER_HUB_LEGACY_URL: &str = "https://index.docker.io/v1/";
/// The longest server URL accepted. Registry URLs are far shorter, and the
/// kernel keyring refuses key names over about 4 KiB.
pub const MAX_SERVER_URL_BYTES: usize = 2048;

fn quote_scheme(scheme: &str) -> String {
    let looks_like_scheme = scheme.len() <= 16
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if looks_like_scheme {
        format!(" {scheme:?}")
    } else {
        String::new()
    }
}

/// Why a server URL could not be turned into a registry key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidServerUrl {
    /// Only http and https make sense for a registry. The scheme is quoted
    /// only when it looks like one: the input may be a misdirected secret.
    #[error("unsupported scheme{} in server URL: use host[:port] or https://host[:port]", quote_scheme(.0))]
    Scheme(String),
    /// Longer than any registry URL; keyrings limit their key names.
    #[error("server URL is longer than {MAX_SERVER_URL_BYTES} bytes")]
    TooLong,
    /// There is nothing before the first `/`.
    #[error("server URL has no host: use host[:port] or https://host[:port]")]
    NoHost,
    /// Whitespace or control characters inside the URL.
    #[error("server URL contains whitespace or a control character")]
    BadCharacter,
    /// A `user:pass@` part would end up in the key (and in `list`).
    #[error(
        "server URL must not contain user information (user@host); pass credentials in the store request"
    )]
    UserInfo,
    /// The port is not a number from 1 to 65535. Never quoted: a store
    /// request sent to `get` by mistake would put the secret here.
    #[error("server URL has an invalid port: use a number from 1 to 65535")]
    Port(String),
    /// An IPv6 literal without its closing bracket.
    #[error("server URL has an unterminated IPv6 literal: use [addr]:port")]
    Ipv6,
    /// A character that no host name can hold. Never quoted, as for ports.
    #[error(
        "server URL has an invalid host: use letters, digits, '-', '.', '_' or an [IPv6] literal"
    )]
    Host(String),
}

/// A parsed server URL: host, optional port and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    host: String,
    port: Option<u16>,
    /// Empty, or `/seg/seg` without a trailing slash.
    path: String,
}

impl ServerUrl {
    /// Parses a server URL the way clients send it: with or without a scheme,
    /// trailing slashes, a port, a path, or an IPv6 literal in brackets.
    pub fn parse(input: &str) -> Result<ServerUrl, InvalidServerUrl> {
        let input = input.trim();
        if input.len() > MAX_SERVER_URL_BYTES {
            return Err(InvalidServerUrl::TooLong);
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidServerUrl::BadCharacter);
        }
        let rest = match input.find("://") {
            Some(at) => {
                let scheme = &input[..at];
                if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
                    return Err(InvalidServerUrl::Scheme(scheme.to_string()));
                }
                &input[at + 3..]
            }
            None => input,
        };
        // Query and fragment never name a registry.
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(InvalidServerUrl::UserInfo);
        }
        let (host, port) = split_host_port(authority)?;
        if host.is_empty() {
            return Err(InvalidServerUrl::NoHost);
        }
        let mut host = host.to_ascii_lowercase();
        let mut path = normalize_path(path);
        if port.is_none() && DOCKER_HUB_HOSTS.contains(&host.as_str()) {
            host = DOCKER_HUB_KEY.to_string();
            // `https://index.docker.io/v1/` is the API root, not a namespace.
            if path == "/v1" || path == "/v2" {
                path.clear();
            }
        }
        Ok(ServerUrl { host, port, path })
    }

    /// The canonical key: `host[:port][/path]`.
    pub fn key(&self) -> String {
        let mut key = self.registry();
        key.push_str(&self.path);
        key
    }

    /// `host[:port]` alone, as skopeo, podman and Incus send it.
    pub fn registry(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The host without the port.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, if one was given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The path, empty or starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// True for the Docker Hub family.
    pub fn is_docker_hub(&self) -> bool {
        self.host == DOCKER_HUB_KEY && self.port.is_none()
    }

    /// The keys a lookup tries, most specific first: `host/a/b`, `host/a`, `host`.
    pub fn lookup_keys(&self) -> Vec<String> {
        let registry = self.registry();
        let mut keys = Vec::new();
        let mut path = self.path.as_str();
        loop {
            keys.push(format!("{registry}{path}"));
            match path.rfind('/') {
                Some(at) if !path.is_empty() => path = &path[..at],
                _ => break,
            }
        }
        keys
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// The canonical key for a server URL (see the module docs).
pub fn canonical_key(server_url: &str) -> Result<String, InvalidServerUrl> {
    ServerUrl::parse(server_url).map(|url| url.key())
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), InvalidServerUrl> {
    if let Some(inner) = authority.strip_prefix('[') {
        let close = inner.find(']').ok_or(InvalidServerUrl::Ipv6)?;
        let host = &authority[..close + 2];
        if !inner[..close]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(InvalidServerUrl::Host(host.to_string()));
        }
        let after = &inner[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => parse_port(port)?,
            None if after.is_empty() => None,
            None => return Err(InvalidServerUrl::Host(authority.to_string())),
        };
        return Ok((host, port));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, parse_port(port)?),
        None => (authority, None),
    };
    if host.contains(':') {
        return Err(InvalidServerUrl::Ipv6);
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(InvalidServerUrl::Host(host.to_string()));
    }
    Ok((host, port))
}

fn parse_port(port: &str) -> Result<Option<u16>, InvalidServerUrl> {
    if port.is_empty() {
        return Ok(None);
    }
    match port.parse::<u16>() {
        Ok(n) if n > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
        _ => Err(InvalidServerUrl::Port(port.to_string())),
    }
}

/// Drops empty segments, so `//a///b/` becomes `/a/b`.
fn normalize_path(path: &str) -> String {
    let mut out = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(segment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        canonical_key(s).unwrap()
    }

    #[test]
    fn scheme_and_trailing_slash_do_not_change_the_key() {
        for spelling in [
            "registry.example.test",
            "https://registry.example.test",
            "http://registry.example.test",
            "https://registry.example.test/",
            "HTTPS://Registry.Example.Test//",
            "  registry.example.test\r\n",
        ] {
            assert_eq!(key(spelling), "registry.example.test", "{spelling}");
        }
    }

    #[test]
    fn docker_hub_family_shares_one_key() {
        for spelling in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
            "https://registry-1.docker.io/v2/",
            "https://docker.io",
        ] {
            assert_eq!(key(spelling), DOCKER_HUB_KEY, "{spelling}");
        }
        assert_eq!(key("docker.io/library"), "docker.io/library");
        assert_eq!(key("docker.io:5000"), "docker.io:5000");
    }

    #[test]
    fn ports_are_part_of_the_key() {
        assert_eq!(key("localhost:5000"), "localhost:5000");
        assert_eq!(key("https://192.0.2.10:5000/"), "192.0.2.10:5000");
        assert_ne!(key("h:5000"), key("h:5001"));
        assert_ne!(key("h"), key("h:443"));
    }

    #[test]
    fn ipv6_literals_keep_their_brackets() {
        assert_eq!(key("[2001:DB8::10]:5000"), "[2001:db8::10]:5000");
        assert_eq!(key("https://[::1]/"), "[::1]");
        assert_eq!(
            ServerUrl::parse("[::1]:5000").unwrap().registry(),
            "[::1]:5000"
        );
        assert_eq!(
            ServerUrl::parse("[::1").unwrap_err(),
            InvalidServerUrl::Ipv6
        );
        assert_eq!(ServerUrl::parse("::1").unwrap_err(), InvalidServerUrl::Ipv6);
    }

    #[test]
    fn lookup_falls_back_from_path_to_host() {
        let url = ServerUrl::parse("https://r.example.test:5000/a/b/").unwrap();
        assert_eq!(
            url.lookup_keys(),
            [
                "r.example.test:5000/a/b",
                "r.example.test:5000/a",
                "r.example.test:5000"
            ]
        );
        assert_eq!(ServerUrl::parse("h").unwrap().lookup_keys(), ["h"]);
    }

    #[test]
    fn query_and_fragment_are_ignored() {
        assert_eq!(key("https://h/x?y=1#z"), "h/x");
    }

    #[test]
    fn bad_urls_are_rejected_with_a_reason() {
        assert!(matches!(
            ServerUrl::parse("oci://h"),
            Err(InvalidServerUrl::Scheme(_))
        ));
        assert_eq!(
            ServerUrl::parse("https://").unwrap_err(),
            InvalidServerUrl::NoHost
        );
        assert_eq!(
            ServerUrl::parse("/a").unwrap_err(),
            InvalidServerUrl::NoHost
        );
        assert_eq!(
            ServerUrl::parse("a b").unwrap_err(),
            InvalidServerUrl::BadCharacter
        );
        assert_eq!(
            ServerUrl::parse("u:p@h").unwrap_err(),
            InvalidServerUrl::UserInfo
        );
        assert!(matches!(
            ServerUrl::parse("h:99999"),
            Err(InvalidServerUrl::Port(_))
        ));
        assert!(matches!(
            ServerUrl::parse("h:0"),
            Err(InvalidServerUrl::Port(_))
        ));
        assert!(matches!(
            ServerUrl::parse("h\"x"),
            Err(InvalidServerUrl::Host(_))
        ));
    }
}
