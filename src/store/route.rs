//! Config-driven routing: one `Store` over the keyring, static credentials,
//! scripts and other helpers, chosen per registry by the route config.
//!
//! [`from_env`] builds the store the protocol verbs use: the keyring alone
//! when there is no config file (costing one `stat`), else a [`RouteStore`].
//! `get` asks the route that serves the registry. `store` and `erase` go to
//! that route's source (the keyring, or a delegated helper) unless the route
//! is read-only, which refuses them or, if configured, ignores them. `list`
//! merges every source that can list, keeping an entry only where `get` for
//! that URL would ask the same source, so every listed key answers `get`.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use super::fixed::FixedStore;
use super::helper::Helper;
use super::keyring::{CACHE_SERVICE, KeyringStore};
use super::script::ScriptStore;
use super::{Store, StoreError};
use crate::config::{self, Config, HelperSpec, Route, Source, Writes};
use crate::protocol::Credentials;
use crate::registry::ServerUrl;

/// The store the protocol verbs use: the keyring alone without a config file,
/// else the routes of the config. Other commands (`exec --route`, `authfile`)
/// call this to see credentials exactly as the helper would serve them.
pub fn from_env() -> Result<Box<dyn Store>, StoreError> {
    match config::locate().map_err(config_error)? {
        None => Ok(Box::new(KeyringStore::from_env()?)),
        Some(path) => Ok(Box::new(RouteStore::load(&path)?)),
    }
}

fn config_error(e: config::ConfigError) -> StoreError {
    StoreError::Other(e.to_string())
}

/// Where one route's credentials come from, ready to use.
enum Backing {
    Keyring,
    Fixed(FixedStore),
    Script(ScriptStore),
    /// Resolved on first use, so a missing helper only breaks its own route.
    Helper(HelperSpec, std::cell::OnceCell<Result<Helper, String>>),
}

/// Routes over the credential sources (see the module docs).
pub struct RouteStore {
    config: Config,
    keyring: Rc<dyn Store>,
    backings: Vec<Backing>,
    default: Backing,
    notice: Rc<dyn Fn(&str)>,
}

/// A `Store` that forwards to a shared one (the script cache shares the keyring settings).
struct Shared(Rc<dyn Store>);

impl Store for Shared {
    fn get(&self, server_url: &str) -> Result<Credentials, StoreError> {
        self.0.get(server_url)
    }
    fn store(&self, creds: &Credentials) -> Result<(), StoreError> {
        self.0.store(creds)
    }
    fn erase(&self, server_url: &str) -> Result<(), StoreError> {
        self.0.erase(server_url)
    }
    fn list(&self) -> Result<BTreeMap<String, String>, StoreError> {
        self.0.list()
    }
}

impl RouteStore {
    /// Loads the config at `path` and opens (lazily) the stores it names.
    pub fn load(path: &Path) -> Result<RouteStore, StoreError> {
        let config = Config::load(path).map_err(config_error)?;
        let keyring: Rc<dyn Store> = Rc::new(KeyringStore::from_env()?);
        let cache: Rc<dyn Store> = Rc::new(
            KeyringStore::from_env()?
                .with_service(CACHE_SERVICE)
                .with_notice(|_| {}),
        );
        Ok(RouteStore::new(config, keyring, cache, |msg| {
            eprintln!("docker-credential-incus: {msg}")
        }))
    }

    /// Routes for `config`, with `keyring` for keyring routes, `cache` for
    /// cached script answers, and `notice` for diagnostics (stderr in the binary).
    pub fn new(
        config: Config,
        keyring: Rc<dyn Store>,
        cache: Rc<dyn Store>,
        notice: impl Fn(&str) + 'static,
    ) -> RouteStore {
        let notice: Rc<dyn Fn(&str)> = Rc::new(notice);
        let backing = |route: &Route| match &route.source {
            Source::Keyring => Backing::Keyring,
            Source::Static(spec) => Backing::Fixed(FixedStore::new(
                route.name(),
                spec.clone(),
                route.pattern.as_ref().and_then(|p| p.exact_url()),
            )),
            Source::Script(spec) => {
                let n = notice.clone();
                Backing::Script(
                    ScriptStore::new(
                        route.name(),
                        spec.clone(),
                        Some(Box::new(Shared(cache.clone()))),
                    )
                    .with_notice(move |m| n(m)),
                )
            }
            Source::Helper(spec) => Backing::Helper(spec.clone(), Default::default()),
        };
        let backings = config.routes.iter().map(backing).collect();
        let default = backing(&config.default);
        RouteStore {
            config,
            keyring,
            backings,
            default,
            notice,
        }
    }

    /// The config in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The route that serves `server_url`.
    pub fn route_for(&self, server_url: &str) -> Result<&Route, StoreError> {
        Ok(self.config.route_for(&ServerUrl::parse(server_url)?))
    }

    fn pick(&self, server_url: &str) -> Result<(&Route, &Backing), StoreError> {
        let url = ServerUrl::parse(server_url)?;
        Ok(match self.config.route_index(&url) {
            Some(i) => (&self.config.routes[i], &self.backings[i]),
            None => (&self.config.default, &self.default),
        })
    }

    fn helper<'a>(
        &self,
        spec: &HelperSpec,
        cell: &'a std::cell::OnceCell<Result<Helper, String>>,
        route: &Route,
    ) -> Result<&'a Helper, StoreError> {
        cell.get_or_init(|| {
            let mut helper = Helper::resolve(&spec.helper).map_err(|e| e.to_string())?;
            if let Some(t) = spec.timeout {
                helper = helper.with_timeout(t);
            }
            for (k, v) in &spec.env {
                helper = helper.with_env(k, v);
            }
            Ok(helper)
        })
        .as_ref()
        .map_err(|e| {
            StoreError::Other(format!(
                "helper route \"{}\" in {}: {e}",
                route.name(),
                self.config.path.display()
            ))
        })
    }

    fn source<'a>(
        &'a self,
        route: &Route,
        backing: &'a Backing,
    ) -> Result<&'a dyn Store, StoreError> {
        Ok(match backing {
            Backing::Keyring => self.keyring.as_ref(),
            Backing::Fixed(s) => s,
            Backing::Script(s) => s,
            Backing::Helper(spec, cell) => self.helper(spec, cell, route)?,
        })
    }

    fn read_only(&self, action: &'static str, route: &Route) -> StoreError {
        StoreError::ReadOnly {
            action,
            what: format!(
                "route \"{}\" ({}) in {}",
                route.name(),
                route.source.kind(),
                self.config.path.display()
            ),
        }
    }

    /// Which backing answers for `url` in a listing: the index of its route,
    /// with `None` for the default route.
    fn owner(&self, url: &str) -> Option<Option<usize>> {
        ServerUrl::parse(url)
            .ok()
            .map(|u| self.config.route_index(&u))
    }

    fn backing_at(&self, index: Option<usize>) -> &Backing {
        index.map_or(&self.default, |i| &self.backings[i])
    }
}

impl Store for RouteStore {
    fn get(&self, server_url: &str) -> Result<Credentials, StoreError> {
        let (route, backing) = self.pick(server_url)?;
        self.source(route, backing)?.get(server_url)
    }

    fn store(&self, creds: &Credentials) -> Result<(), StoreError> {
        let (route, backing) = self.pick(&creds.server_url)?;
        match route.writes {
            Writes::Allow => self.source(route, backing)?.store(creds),
            Writes::Refuse => Err(self.read_only("store", route)),
            Writes::Ignore => Ok(()),
        }
    }

    fn erase(&self, server_url: &str) -> Result<(), StoreError> {
        let (route, backing) = self.pick(server_url)?;
        // A cache that cannot be reached must not turn a logout into an error.
        if let Backing::Script(script) = backing
            && let Err(e) = script.forget(server_url)
        {
            (self.notice)(&format!(
                "route \"{}\": cached answer not dropped: {e}",
                route.name()
            ));
        }
        match route.writes {
            Writes::Allow => self.source(route, backing)?.erase(server_url),
            Writes::Refuse => Err(self.read_only("erase", route)),
            Writes::Ignore => Ok(()),
        }
    }

    fn list(&self) -> Result<BTreeMap<String, String>, StoreError> {
        // One listing per distinct source: the keyring once, each static
        // route, each distinct helper. `serves` says whether an entry's URL is
        // routed to that same source.
        type Serves<'a> = Box<dyn Fn(&Backing) -> bool + 'a>;
        type Listing<'a> = (
            &'a str,
            Result<BTreeMap<String, String>, StoreError>,
            Serves<'a>,
        );
        let mut listings: Vec<Listing> = Vec::new();
        let all = self
            .config
            .routes
            .iter()
            .zip(&self.backings)
            .chain([(&self.config.default, &self.default)]);
        let mut keyring_listed = false;
        let mut helpers_listed: Vec<&str> = Vec::new();
        for (route, backing) in all {
            match backing {
                Backing::Keyring if !keyring_listed => {
                    keyring_listed = true;
                    listings.push((
                        "the keyring",
                        self.keyring.list(),
                        Box::new(|b| matches!(b, Backing::Keyring)),
                    ));
                }
                Backing::Fixed(s) => listings.push((
                    route.name(),
                    s.list(),
                    Box::new(move |b| std::ptr::eq(b, backing)),
                )),
                Backing::Helper(spec, _) if !helpers_listed.contains(&spec.helper.as_str()) => {
                    helpers_listed.push(&spec.helper);
                    let name = spec.helper.as_str();
                    listings.push((
                        name,
                        self.source(route, backing).and_then(|h| h.list()),
                        Box::new(move |b| matches!(b, Backing::Helper(s, _) if s.helper == name)),
                    ));
                }
                _ => {}
            }
        }
        let mut out = BTreeMap::new();
        let mut first_error = None;
        let mut answered = false;
        for (name, listing, serves) in listings {
            match listing {
                Ok(entries) => {
                    answered = true;
                    for (url, username) in entries {
                        if let Some(owner) = self.owner(&url)
                            && serves(self.backing_at(owner))
                        {
                            out.entry(url).or_insert(username);
                        }
                    }
                }
                Err(e) => {
                    (self.notice)(&format!("list: {name} could not list: {e}"));
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if !answered => Err(e),
            _ => Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn routes(json: &str) -> (RouteStore, Rc<MemoryStore>) {
        let config =
            Config::parse(Path::new("/cfg/config.json"), json.as_bytes(), Some(0o600)).unwrap();
        let keyring = Rc::new(MemoryStore::default());
        let store = RouteStore::new(
            config,
            keyring.clone(),
            Rc::new(MemoryStore::default()),
            |m| panic!("unexpected notice: {m}"),
        );
        (store, keyring)
    }

    const CONFIG: &str = r#"{"routes": {
        "ghcr.io": {"source": "static", "username": "ci", "secret": "s1"},
        "*.ro.test": {"source": "static", "username": "ci", "secret": "s2"},
        "quiet.test": {"source": "static", "username": "ci", "secret": "s3", "writes": "ignore"},
        "*.kr.test": {"source": "keyring"}
    }}"#;

    #[test]
    fn get_asks_the_route_that_serves_the_registry() {
        let (s, keyring) = routes(CONFIG);
        keyring
            .store(&Credentials::new("ghcr.io", "old", "kept"))
            .unwrap();
        keyring
            .store(&Credentials::new("other.test", "u", "k"))
            .unwrap();
        let c = s.get("https://ghcr.io/").unwrap();
        assert_eq!(
            (c.username.as_str(), c.secret.expose().as_str()),
            ("ci", "s1")
        );
        assert_eq!(s.get("other.test").unwrap().secret.expose(), "k");
        assert!(s.get("nothing.test").unwrap_err().is_not_found());
    }

    #[test]
    fn writes_go_to_the_keyring_on_writable_routes() {
        let (s, keyring) = routes(CONFIG);
        s.store(&Credentials::new("a.kr.test", "u", "p")).unwrap();
        s.store(&Credentials::new("default.test", "u", "p"))
            .unwrap();
        assert_eq!(keyring.list().unwrap().len(), 2);
        s.erase("a.kr.test").unwrap();
        assert!(keyring.get("a.kr.test").unwrap_err().is_not_found());
    }

    #[test]
    fn read_only_route_refuses_store_in_one_line() {
        let (s, keyring) = routes(CONFIG);
        let e = s
            .store(&Credentials::new("x.ro.test", "u", "hunter2"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "store not supported: route \"*.ro.test\" (static) in /cfg/config.json is read-only"
        );
        assert_eq!(
            s.erase("x.ro.test").unwrap_err().to_string(),
            "erase not supported: route \"*.ro.test\" (static) in /cfg/config.json is read-only"
        );
        assert!(keyring.list().unwrap().is_empty());
    }

    #[test]
    fn ignoring_route_accepts_and_drops_writes() {
        let (s, keyring) = routes(CONFIG);
        s.store(&Credentials::new("quiet.test", "u", "p")).unwrap();
        s.erase("quiet.test").unwrap();
        assert!(keyring.list().unwrap().is_empty());
        assert_eq!(s.get("quiet.test").unwrap().secret.expose(), "s3");
    }

    #[test]
    fn list_merges_sources_and_hides_shadowed_keyring_entries() {
        let (s, keyring) = routes(CONFIG);
        keyring
            .store(&Credentials::new("ghcr.io", "old", "shadowed"))
            .unwrap();
        keyring
            .store(&Credentials::new("https://a.kr.test", "u1", "p"))
            .unwrap();
        keyring
            .store(&Credentials::new("x.ro.test", "u2", "p"))
            .unwrap();
        let listed = s.list().unwrap();
        let expected: BTreeMap<String, String> = [
            ("ghcr.io", "ci"),
            ("https://a.kr.test", "u1"),
            ("quiet.test", "ci"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(listed, expected);
    }

    #[test]
    fn missing_helper_breaks_only_its_route() {
        let (s, _) = routes(
            r#"{"routes": {"h.test": {"source": "helper", "helper": "surely-absent-xyz"}}}"#,
        );
        assert_eq!(
            s.get("h.test").unwrap_err().to_string(),
            "helper route \"h.test\" in /cfg/config.json: docker-credential-surely-absent-xyz not found in PATH"
        );
        assert!(s.get("other.test").unwrap_err().is_not_found());
    }

    #[test]
    fn invalid_url_is_refused_before_routing() {
        let (s, _) = routes(CONFIG);
        assert!(matches!(
            s.get("oci://ghcr.io"),
            Err(StoreError::InvalidUrl(_))
        ));
    }
}
