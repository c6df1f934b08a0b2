//! The one integration-test binary (Cargo.toml sets `autotests = false`):
//! one module per area, shared helpers in `util`.
//!
//! Run them all with `scripts/test`, which provides the real components
//! (Secret Service, pass store, local registry) that some modules need.

mod util;

#[cfg(target_os = "linux")]
mod real_clients;
