//! Fault-injection points for the end-to-end tests, compiled only with the `fault-injection`
//! feature (scripts/test.sh enables it; a release build never has it). Each point is armed by
//! `WATCHPOST_FAULT`:
//!
//! - `kill-after-commit`: `once` SIGKILLs itself after every tick is committed and before
//!   anything is delivered (the crash-safety test).
//! - `panic-in-check:NAME`: the check of monitor NAME panics (the panic-isolation test).
//! - `scheduler-panic`: the daemon's scheduler loop panics (the "never a live-looking process
//!   that monitors nothing" test).

fn armed() -> Option<String> {
    std::env::var("WATCHPOST_FAULT").ok()
}

/// `kill-after-commit`: die the hard way, as a power cut or the OOM killer would.
pub fn crash_point_after_commit() {
    if armed().as_deref() == Some("kill-after-commit") {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        std::thread::sleep(std::time::Duration::from_secs(5));
        std::process::abort();
    }
}

/// `panic-in-check:NAME`: panic inside the check of monitor `name`.
pub fn maybe_panic_in_check(name: &str) {
    if let Some(target) = armed()
        .as_deref()
        .and_then(|f| f.strip_prefix("panic-in-check:"))
        && target == name
    {
        panic!("injected fault: panic in the check of {name:?}");
    }
}

/// `scheduler-panic`: the daemon's scheduler loop panics 2 s after it starts (instead of
/// running), as a bug in it would.
pub fn scheduler<F>(loop_: F) -> impl std::future::Future<Output = ()> + Send + 'static
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let armed = armed().as_deref() == Some("scheduler-panic");
    async move {
        if armed {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            panic!("injected fault: the scheduler loop panics");
        }
        loop_.await
    }
}
