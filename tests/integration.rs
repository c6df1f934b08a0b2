//! The one integration-test binary: each module covers one face of the tool.

mod conformance;
mod keyring;
mod protocol;
mod routes;
mod tooling;
mod tooling_seed;
