//! The `$schema` line `faultline init` writes, and the schema file it
//! points to.
//!
//! An editor resolves a relative `$schema` against the YAML file, so the
//! line must name a file that exists from wherever the experiment is
//! written, inside or outside faultline's repository. `init` therefore
//! keeps one copy of the schema per project, `.faultline/experiment.schema.json`:
//! the nearest one in the experiment's folder or above is reused (so a
//! project's experiments in subfolders share one), otherwise one is
//! written next to the experiment. A copy in the experiment's own folder is
//! brought up to date with this binary; one further up is only pointed
//! to (init writes only where it was asked to write), with a notice when
//! it differs.

use std::io;
use std::path::{Path, PathBuf};

/// The folder of the per-project schema copy.
pub const SCHEMA_DIR: &str = ".faultline";
/// The experiment schema's file name in [`SCHEMA_DIR`].
pub const SCHEMA_FILE: &str = "experiment.schema.json";

/// What [`link`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaLink {
    /// The `$schema` value, relative to the experiment's folder
    /// (`.faultline/experiment.schema.json`, `../.faultline/...`).
    pub target: String,
    /// The schema file.
    pub path: PathBuf,
    /// What happened to it.
    pub state: SchemaState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaState {
    Written,
    Updated,
    Current,
    /// A copy in a folder above, from another faultline version: left as is.
    Differs,
}

/// Finds or writes the schema for an experiment in `folder` (which
/// exists), with `schema` as this binary's schema text.
pub fn link(folder: &Path, schema: &str) -> io::Result<SchemaLink> {
    let folder = folder.canonicalize()?;
    for (ups, ancestor) in folder.ancestors().enumerate() {
        let path = ancestor.join(SCHEMA_DIR).join(SCHEMA_FILE);
        if path.is_file() {
            let current = crate::bounds::read_regular(&path, 4 << 20)
                .map(|bytes| bytes == schema.as_bytes())
                .unwrap_or(false);
            let state = match (current, ups) {
                (true, _) => SchemaState::Current,
                (false, 0) => {
                    std::fs::write(&path, schema)?;
                    SchemaState::Updated
                }
                (false, _) => SchemaState::Differs,
            };
            return Ok(SchemaLink {
                target: relative(ups),
                path,
                state,
            });
        }
    }
    let dir = folder.join(SCHEMA_DIR);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(SCHEMA_FILE);
    std::fs::write(&path, schema)?;
    Ok(SchemaLink {
        target: relative(0),
        path,
        state: SchemaState::Written,
    })
}

fn relative(ups: usize) -> String {
    format!("{}{SCHEMA_DIR}/{SCHEMA_FILE}", "../".repeat(ups))
}

/// `text` with its first line replaced by a `yaml-language-server` line
/// pointing at `target` (or one added when it has none).
pub fn with_schema_line(text: &str, target: &str) -> String {
    let line = format!("# yaml-language-server: $schema={target}\n");
    let body = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("# yaml-language-server:") => rest,
        _ => text,
    };
    format!("{line}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_copy_is_reused_and_only_the_own_folder_is_written() {
        let root = tempfile::tempdir().expect("temp dir");
        let top = root.path().join("project");
        let deep = top.join("experiments/nightly");
        std::fs::create_dir_all(&deep).expect("folders");

        let first = link(&top, "v1").expect("link");
        assert_eq!(first.target, ".faultline/experiment.schema.json");
        assert_eq!(first.state, SchemaState::Written);
        assert_eq!(std::fs::read_to_string(&first.path).expect("read"), "v1");

        let below = link(&deep, "v1").expect("link");
        assert_eq!(below.target, "../../.faultline/experiment.schema.json");
        assert_eq!(below.state, SchemaState::Current);
        assert!(!deep.join(SCHEMA_DIR).exists(), "no second copy");

        // Another version: the copy above is pointed to, not rewritten.
        let newer = link(&deep, "v2").expect("link");
        assert_eq!(newer.state, SchemaState::Differs);
        assert_eq!(std::fs::read_to_string(&newer.path).expect("read"), "v1");
        // In its own folder it is brought up to date.
        let own = link(&top, "v2").expect("link");
        assert_eq!(own.state, SchemaState::Updated);
        assert_eq!(std::fs::read_to_string(&own.path).expect("read"), "v2");
    }

    #[test]
    fn the_schema_line_replaces_the_first_line_or_is_added() {
        let with = "# yaml-language-server: $schema=../schema/x.json\nname: a\n";
        assert_eq!(
            with_schema_line(with, ".faultline/experiment.schema.json"),
            "# yaml-language-server: $schema=.faultline/experiment.schema.json\nname: a\n"
        );
        assert_eq!(
            with_schema_line("name: a\n", "s.json"),
            "# yaml-language-server: $schema=s.json\nname: a\n"
        );
    }
}
