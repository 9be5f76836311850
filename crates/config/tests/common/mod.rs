//! What the config integration tests share.
#![allow(dead_code)]

/// Set `vars` in this test binary's environment once, before any test reads it. Every test
/// that reads the environment calls this first, always with the same list.
pub fn set_env_once(vars: &[(&str, &str)]) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: every test calls this first, and Once blocks them until it is done, so no other
    // thread reads the environment while it is written.
    ONCE.call_once(|| unsafe {
        for (name, value) in vars {
            std::env::set_var(name, value);
        }
    });
}

/// The source texts of the conditions of `config`'s monitor `i`, the kind's defaults included.
pub fn sources(config: &watchpost_config::Config, i: usize) -> Vec<String> {
    config.monitors[i]
        .conditions
        .iter()
        .map(|c| c.source.clone())
        .collect()
}
