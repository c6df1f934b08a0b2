//! The `Store` trait: one interface for every credential source.
//!
//! The OS keyring, static credentials, scripts, routes and other
//! `docker-credential-*` programs all implement it, so the helper side, the
//! conformance tester and the client tooling share one path (cargo's
//! credential-provider idea).

use std::collections::BTreeMap;

use crate::protocol::{Credentials, ERR_NOT_FOUND};
use crate::registry::InvalidServerUrl;

pub mod fixed;
pub mod helper;
pub mod keyring;
#[cfg(test)]
pub mod memory;
pub mod route;
pub mod script;

/// The store the protocol verbs (`get`, `store`, `erase`, `list`) serve from.
///
/// The tooling's `--route` and `import` use it too, so that they see exactly
/// what Docker, skopeo and Incus get from this helper: the OS keyring alone
/// without a route config, else the routes (see [`route::from_env`]).
pub fn protocol_store() -> Result<Box<dyn Store>, StoreError> {
    route::from_env()
}

/// A source of registry credentials. Method names are the wire verbs.
pub trait Store {
    /// The credential for `server_url`; `ServerURL` in the answer echoes the query.
    fn get(&self, server_url: &str) -> Result<Credentials, StoreError>;
    /// Saves a credential, replacing any for the same registry.
    fn store(&self, creds: &Credentials) -> Result<(), StoreError>;
    /// Deletes the credential for `server_url`; succeeds when there is none.
    fn erase(&self, server_url: &str) -> Result<(), StoreError>;
    /// Every stored server URL (as stored) with its username.
    fn list(&self) -> Result<BTreeMap<String, String>, StoreError>;
}

/// Why a store call failed. Each message says what happened and what to do;
/// none holds a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Nothing is stored for this server. The only error that maps to the
    /// not-found text clients match on.
    #[error("{ERR_NOT_FOUND}")]
    NotFound,
    /// The server URL cannot name a registry.
    #[error(transparent)]
    InvalidUrl(#[from] InvalidServerUrl),
    /// The store does not exist on this machine (no bus, keyutils blocked…).
    #[error("{store} is unavailable: {reason}")]
    Unavailable {
        /// Which store.
        store: &'static str,
        /// Why, and what to do.
        reason: String,
    },
    /// The store is there but locked, and no prompt can unlock it.
    #[error("{store} is locked and cannot prompt for a password: {hint}")]
    Locked {
        /// Which store.
        store: &'static str,
        /// What to do.
        hint: String,
    },
    /// The store did not answer in time.
    #[error(
        "{store} did not answer within {seconds}s; is it waiting for a prompt? Set DOCKER_CREDENTIAL_INCUS_TIMEOUT to wait longer"
    )]
    Timeout {
        /// Which store.
        store: &'static str,
        /// The deadline that passed.
        seconds: u64,
    },
    /// More than one item answers for one key.
    #[error(
        "{store} holds {count} items for {key}; run `docker-credential-incus erase` for it to remove them all, then store it again"
    )]
    Ambiguous {
        /// Which store.
        store: &'static str,
        /// The canonical key.
        key: String,
        /// How many items matched.
        count: usize,
    },
    /// The record is larger than the store can hold. Nothing was stored.
    #[error(
        "{store} holds at most {limit} bytes per credential and this one needs {size}; nothing was stored. Use the Secret Service (DOCKER_CREDENTIAL_INCUS_STORE=secret-service)"
    )]
    TooLarge {
        /// Which store.
        store: &'static str,
        /// Its limit in bytes.
        limit: usize,
        /// What the record needed.
        size: usize,
    },
    /// The source is read-only and refuses writes.
    #[error("{action} not supported: {what} is read-only")]
    ReadOnly {
        /// `store` or `erase`.
        action: &'static str,
        /// Which source, e.g. `route for *.pkg.dev`.
        what: String,
    },
    /// Any other failure, said in one line.
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    /// True for the not-found case.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound)
    }
}
