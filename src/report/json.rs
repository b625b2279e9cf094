//! The JSON report (`--json`, default `<out>/report.json`).

use crate::journal::RunReport;
use std::path::Path;

/// Writes the report by [`super::output`]'s rules: atomically for a
/// regular file (a reader never sees half a file, even if the run is killed
/// while writing), through symlinks, in place for devices and FIFOs, `-`
/// for stdout.
pub fn write(report: &RunReport, path: &Path) -> std::io::Result<()> {
    let mut json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    json.push(b'\n');
    super::output::write(path, &json)
}

/// Where the committed schema of `report.json` lives.
pub const SCHEMA_FILE: &str = "schema/report.schema.json";

/// The JSON Schema of `report.json`, derived from the journal's types, so
/// it says what [`write`] writes. Objects stay open (`additionalProperties`
/// unset): fields are only ever added, and a script validating against an
/// older schema must keep working (README "JSON report").
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(RunReport);
    schema.insert("title".into(), "faultline report.json".into());
    schema.to_value()
}

/// Reads a report written by [`write`].
pub fn read(path: &Path) -> std::io::Result<RunReport> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}
