//! `Secret<T>`: a value that never prints itself and is wiped from memory on drop.
//!
//! Modelled on cargo's credential `Secret`: `Debug` shows `REDACTED`, there is no
//! `Display`, and the only way to read the value is [`Secret::expose`], which marks
//! in the code where a secret leaves its wrapper.

use std::fmt;
use zeroize::Zeroize;

/// A secret value: redacted in `Debug`, no `Display`, zeroized on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// Gives access to the value. Call it only where the secret must leave the
    /// wrapper: a keyring write, the protocol writer, a child's stdin.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl Secret<String> {
    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(REDACTED)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "Secret(REDACTED)");
        assert_eq!(s.expose(), "hunter2");
    }
}
