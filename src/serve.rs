//! The helper side: one protocol action against a `Store`, with the streams
//! passed in so tests drive it in-process.

use std::io::{Read, Write};

use crate::protocol::{self, Action, Credentials};
use crate::store::Store;

/// What the process should exit with after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: an error line was written to `output`.
    Failure,
}

/// Runs `action` against `store`, reading the request from `input` and writing
/// the answer (or one error line) to `output`.
pub fn serve(
    store: &dyn Store,
    action: Action,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Outcome {
    let result = match action {
        Action::Version => return written(protocol::write_version(output)),
        Action::List => store.list().map_err(|e| e.to_string()).map(Answer::List),
        Action::Get => read_url(input).and_then(|url| {
            store
                .get(&url)
                // Clients rely on ServerURL echoing the query as asked.
                .map(|c| {
                    Answer::Credentials(Credentials {
                        server_url: url,
                        ..c
                    })
                })
                .map_err(|e| e.to_string())
        }),
        Action::Erase => read_url(input).and_then(|url| {
            store
                .erase(&url)
                .map_err(|e| e.to_string())
                .map(|()| Answer::Nothing)
        }),
        Action::Store => protocol::read_request(input)
            .and_then(|req| protocol::parse_store_request(&req))
            .map_err(|e| e.to_string())
            .and_then(|creds| {
                store
                    .store(&creds)
                    .map_err(|e| e.to_string())
                    .map(|()| Answer::Nothing)
            }),
    };
    match result {
        Ok(Answer::Nothing) => Outcome::Success,
        Ok(Answer::Credentials(c)) => written(protocol::write_credentials(output, &c)),
        Ok(Answer::List(entries)) => written(protocol::write_list(output, &entries)),
        Err(message) => {
            let _ = protocol::write_error(output, &message);
            Outcome::Failure
        }
    }
}

enum Answer {
    Nothing,
    Credentials(Credentials),
    List(std::collections::BTreeMap<String, String>),
}

fn read_url(input: &mut dyn Read) -> Result<String, String> {
    protocol::read_request(input)
        .and_then(|req| protocol::parse_server_url(&req))
        .map_err(|e| e.to_string())
}

fn written(result: std::io::Result<()>) -> Outcome {
    match result {
        Ok(()) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn run(store: &MemoryStore, action: Action, input: &str) -> (Outcome, String) {
        let mut out = Vec::new();
        let outcome = serve(store, action, &mut input.as_bytes(), &mut out);
        (outcome, String::from_utf8(out).unwrap())
    }

    #[test]
    fn store_then_get_echoes_the_url_as_asked() {
        let s = MemoryStore::default();
        assert_eq!(
            run(
                &s,
                Action::Store,
                r#"{"ServerURL":"https://h/","Username":"u","Secret":"p"}"#
            ),
            (Outcome::Success, String::new())
        );
        assert_eq!(
            run(&s, Action::Get, "h\n"),
            (
                Outcome::Success,
                "{\"ServerURL\":\"h\",\"Username\":\"u\",\"Secret\":\"p\"}\n".to_string()
            )
        );
    }

    #[test]
    fn get_of_unknown_url_is_the_not_found_line() {
        let s = MemoryStore::default();
        assert_eq!(
            run(&s, Action::Get, "h"),
            (
                Outcome::Failure,
                "credentials not found in native keychain\n".to_string()
            )
        );
    }

    #[test]
    fn erase_of_unknown_url_succeeds_silently() {
        let s = MemoryStore::default();
        assert_eq!(
            run(&s, Action::Erase, "h"),
            (Outcome::Success, String::new())
        );
    }

    #[test]
    fn list_ignores_stdin() {
        let s = MemoryStore::default();
        assert_eq!(
            run(&s, Action::List, "unused"),
            (Outcome::Success, "{}\n".to_string())
        );
    }

    #[test]
    fn invalid_url_is_its_own_error() {
        let s = MemoryStore::default();
        let (outcome, out) = run(&s, Action::Get, "oci://h");
        assert_eq!(outcome, Outcome::Failure);
        assert!(out.starts_with("unsupported scheme"), "{out}");
    }
}
