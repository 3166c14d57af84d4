//! The PostgreSQL restore runbook (docs/operations-postgres.md), performed: a private cluster with
//! WAL archived by pgBackRest, a full backup while the server serves, more work, the data
//! directory destroyed, a restore to a point in time, `loopwork admin skip-numbers`, and the
//! server serving again with every order of before the target, none after it, and no official
//! number given twice. The drill is `scripts/postgres-pitr-drill`; this runs it on this build.

use loopwork_tests::tools::{server_binary, workspace};

#[test]
fn postgres_point_in_time_recovery_drill() {
    let output = std::process::Command::new(workspace().join("scripts/postgres-pitr-drill"))
        .env("LOOPWORK_BIN", server_binary())
        .output()
        .expect("run scripts/postgres-pitr-drill (its tools: scripts/install-test-tools)");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the drill failed:\n{log}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let figures: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("one JSON line");
    eprintln!("{figures}");
    assert_eq!(figures["recovered"], figures["orders_before_target"], "{figures}");
    assert_eq!(figures["after_target_recovered"], 0, "{figures}");
    assert_eq!(figures["new_number_unique"], true, "{figures}");
    assert_eq!(figures["would_reuse_without_skip"], true, "the drill lost numbered orders: {figures}");
}
