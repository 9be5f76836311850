//! The deploy recipes under `deploy/` pass their local validators: `deploy/check.sh` parses
//! and lints every YAML file, runs cfn-lint on the SAM template, kubernetes-validate on the
//! manifests, `systemd-analyze verify` on the units, checks the bootstrap scripts and the
//! Dockerfile, and runs this build's `watchpost validate` on every recipe's config.
//!
//! The script installs its validators into `.venv-deploy/` on the first run (PyPI). Under
//! `CI=true` (scripts/test.sh sets it) a validator it can't install or find fails the script,
//! and so this test; without it the script reports the check as skipped.

use std::path::Path;
use std::process::Command;

#[test]
fn deploy_recipes_pass_their_validators() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("deploy/check.sh");
    assert!(script.is_file(), "{} is missing", script.display());
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(&root)
        // Validate the configs with the binary under test, not a stale dist/watchpost.
        .env("WATCHPOST_BIN", env!("CARGO_BIN_EXE_watchpost"))
        .output()
        .expect("run bash deploy/check.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "deploy/check.sh failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    // Under CI=true every part must have run: a skipped part would be a pass that checked
    // nothing. (The script already fails then; this guards the script itself.)
    if std::env::var("CI").as_deref() != Ok("true") {
        return;
    }
    assert!(
        !stderr.contains("SKIPPED"),
        "a check was skipped under CI=true:\n{stderr}"
    );
    for part in [
        "ok: all YAML files parse",
        "ok: yamllint",
        "ok: cfn-lint",
        "ok: kubernetes-validate",
        "ok: recipe fields",
        "ok: systemd-analyze verify",
        "ok: deploy/container/Dockerfile",
        "ok: deploy/tencent-scf/bootstrap",
        "ok: deploy/aws-lambda/bootstrap",
        "ok: deploy/alibaba-fc/code/bootstrap",
        "ok: deploy/tencent-scf/watchpost.yaml",
        "ok: deploy/aws-lambda/watchpost.yaml",
        "ok: deploy/alibaba-fc/code/watchpost.yaml",
        "ok: deploy/systemd/watchpost.yaml",
    ] {
        assert!(
            stdout.contains(part),
            "deploy/check.sh did not report {part:?}:\n{stdout}\n{stderr}"
        );
    }
}
