//! The rollback journal: a small file in the run's output folder listing
//! every change made on an external (Toxiproxy) server that has not been
//! undone yet. It is written *before* each change and rewritten after each
//! removal, so after a SIGKILL or a power loss `faultline rollback` knows
//! exactly what to remove. Embedded proxies need no entry: they die with
//! the process.

use super::toxiproxy::ToxiproxyClient;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file name inside an experiment's output folder.
pub const FILE_NAME: &str = "rollback.json";

/// One change on a Toxiproxy server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum JournalEntry {
    /// A toxic faultline added: delete it.
    RemoveToxic {
        server: String,
        proxy: String,
        toxic: String,
    },
    /// A proxy faultline disabled: enable it.
    EnableProxy { server: String, proxy: String },
}

impl JournalEntry {
    /// Undoes the change.
    pub async fn undo(&self) -> Result<(), super::toxiproxy::ToxiproxyError> {
        match self {
            JournalEntry::RemoveToxic {
                server,
                proxy,
                toxic,
            } => {
                ToxiproxyClient::new(server)
                    .remove_toxic(proxy, toxic)
                    .await
            }
            JournalEntry::EnableProxy { server, proxy } => {
                ToxiproxyClient::new(server).set_enabled(proxy, true).await
            }
        }
    }
}

impl std::fmt::Display for JournalEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalEntry::RemoveToxic {
                server,
                proxy,
                toxic,
            } => write!(f, "toxic `{toxic}` on proxy `{proxy}` at {server}"),
            JournalEntry::EnableProxy { server, proxy } => {
                write!(f, "disabled proxy `{proxy}` at {server}")
            }
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct JournalFile {
    entries: Vec<JournalEntry>,
}

/// The journal of one experiment; every change is written through to disk.
#[derive(Debug)]
pub struct RollbackJournal {
    path: PathBuf,
    entries: Mutex<Vec<JournalEntry>>,
}

impl RollbackJournal {
    /// Opens the journal at `path`, keeping what a killed earlier run left
    /// there (a fixed `--out` in CI reuses the folder), so it is never lost.
    pub fn new(path: PathBuf) -> RollbackJournal {
        let leftover = read(&path).unwrap_or_default();
        RollbackJournal {
            path,
            entries: Mutex::new(leftover),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a change before it is made.
    pub fn record(&self, entry: JournalEntry) -> std::io::Result<()> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.push(entry);
        write(&self.path, &entries)
    }

    /// Forgets a change after it was undone; the file goes when it is empty.
    pub fn forget(&self, entry: &JournalEntry) -> std::io::Result<()> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pos) = entries.iter().position(|e| e == entry) {
            entries.remove(pos);
        }
        write(&self.path, &entries)
    }
}

/// Writes the entries atomically, or removes the file when there are none.
pub fn write(path: &Path, entries: &[JournalEntry]) -> std::io::Result<()> {
    if entries.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = JournalFile {
        entries: entries.to_vec(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        // Durable before the change it describes is made.
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // The rename itself must survive a power loss too.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Reads a journal file.
pub fn read(path: &Path) -> std::io::Result<Vec<JournalEntry>> {
    let bytes = std::fs::read(path)?;
    let file: JournalFile = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
    Ok(file.entries)
}

/// Every journal under `root` (e.g. `reports/`), at most three folders deep.
pub fn find_all(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && depth > 0 {
                walk(&path, depth - 1, out);
            } else if path.file_name().is_some_and(|n| n == FILE_NAME) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, 3, &mut out);
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_on_disk_until_forgotten_and_the_file_goes_when_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(FILE_NAME);
        let journal = RollbackJournal::new(path.clone());
        let a = JournalEntry::RemoveToxic {
            server: "http://127.0.0.1:8474".into(),
            proxy: "db".into(),
            toxic: "faultline-x-0".into(),
        };
        let b = JournalEntry::EnableProxy {
            server: "http://127.0.0.1:8474".into(),
            proxy: "db".into(),
        };
        journal.record(a.clone()).expect("write");
        journal.record(b.clone()).expect("write");
        assert_eq!(read(&path).expect("read"), vec![a.clone(), b.clone()]);
        journal.forget(&a).expect("write");
        assert_eq!(read(&path).expect("read"), vec![b.clone()]);
        journal.forget(&b).expect("write");
        assert!(!path.exists());
        assert_eq!(find_all(dir.path()), Vec::<PathBuf>::new());
    }
}
