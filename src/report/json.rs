//! The JSON report (`--json`, default `<out>/report.json`).

use crate::runner::journal::RunReport;
use std::path::Path;

/// Writes the report atomically (temp file + rename), so a reader never
/// sees half a file, even if the run is killed while writing.
pub fn write(report: &RunReport, path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}

/// Reads a report written by [`write`].
pub fn read(path: &Path) -> std::io::Result<RunReport> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}
