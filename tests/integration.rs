//! The one integration-test binary: each module covers one face of the tool.

mod util;

mod conformance;
mod keyring;
mod protocol;
#[cfg(target_os = "linux")]
mod real_clients;
mod routes;
mod tooling;
mod tooling_seed;
