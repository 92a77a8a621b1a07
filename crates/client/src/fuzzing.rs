//! Entry point for the `client_config` fuzz target and its corpus replay in
//! tests/fuzz_replay.rs: the module's config file text must parse or be refused, never panic.

use crate::config::Config;

pub fn client_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(config) = Config::parse(text)
    {
        assert!(!config.tokens.is_empty());
    }
}
