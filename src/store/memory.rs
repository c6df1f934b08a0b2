//! An in-memory `Store` for unit tests of code above the stores.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{Store, StoreError};
use crate::protocol::Credentials;
use crate::registry::ServerUrl;

/// Keeps credentials in a map, keyed like the keyring store.
#[derive(Default)]
pub struct MemoryStore {
    entries: RefCell<BTreeMap<String, Credentials>>,
}

impl Store for MemoryStore {
    fn get(&self, server_url: &str) -> Result<Credentials, StoreError> {
        let url = ServerUrl::parse(server_url)?;
        let entries = self.entries.borrow();
        for key in url.lookup_keys() {
            if let Some(c) = entries.get(&key) {
                return Ok(Credentials {
                    server_url: server_url.to_string(),
                    ..c.clone()
                });
            }
        }
        Err(StoreError::NotFound)
    }

    fn store(&self, creds: &Credentials) -> Result<(), StoreError> {
        let key = ServerUrl::parse(&creds.server_url)?.key();
        self.entries.borrow_mut().insert(key, creds.clone());
        Ok(())
    }

    fn erase(&self, server_url: &str) -> Result<(), StoreError> {
        let key = ServerUrl::parse(server_url)?.key();
        self.entries.borrow_mut().remove(&key);
        Ok(())
    }

    fn list(&self) -> Result<BTreeMap<String, String>, StoreError> {
        Ok(self
            .entries
            .borrow()
            .values()
            .map(|c| (c.server_url.clone(), c.username.clone()))
            .collect())
    }
}
