//! The committed schemas and reference match the code. Validation against
//! them, with a real JSON Schema validator, is in `tests/authoring/schemas.rs`.

use std::path::Path;

use super::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn assert_committed(path: &str, generated: &str, command: &str) {
    let committed = std::fs::read_to_string(root().join(path)).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} is stale; regenerate it with `{command} > {path}`"
    );
}

#[test]
fn committed_schemas_match_the_code() {
    assert_committed(
        EXPERIMENT_SCHEMA_FILE,
        &to_pretty(&experiment_schema()),
        "cargo run -- schema experiment",
    );
    assert_committed(
        SUITE_SCHEMA_FILE,
        &to_pretty(&suite_schema()),
        "cargo run -- schema suite",
    );
    assert_committed(
        crate::report::json::SCHEMA_FILE,
        &to_pretty(&crate::report::json::schema()),
        "cargo run -- schema report",
    );
}

#[test]
fn committed_reference_matches_the_code() {
    assert_committed(
        "docs/reference.md",
        &reference_markdown(),
        "cargo run -- schema --markdown",
    );
}
