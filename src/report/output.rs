//! Where a report's bytes go (`--json`, `--html`, `--junit`, `--summary-md`,
//! `report` and `merge` outputs).
//!
//! - `-` is stdout.
//! - A path that is the same file as stdout (`/dev/stdout`, `/dev/fd/1`)
//!   is written to stdout, in order with the rest of what goes there.
//! - A path that is not a regular file (a FIFO, `/dev/null`, a terminal)
//!   is written in place: renaming over it would replace a device or a
//!   system link (`/dev/stdout`) with a plain file.
//! - A regular file is written atomically, a temp file in the same folder
//!   renamed over it, so a reader never sees half a report; a symlink is
//!   followed first, so the target is replaced and the link stays a link.
//!   The temp file is removed on every failure (a full disk leaves nothing).

use std::ffi::OsString;
use std::fs::{self, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The path that means stdout.
pub const STDOUT: &str = "-";

/// More symlinks than this in a chain is a loop (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Whether writing `path` puts the bytes on this process's stdout: `-`, or
/// a path naming the file, pipe or terminal stdout already is.
pub fn goes_to_stdout(path: &Path) -> bool {
    path.as_os_str() == STDOUT || fs::metadata(path).is_ok_and(|m| is_stdout(&m))
}

/// Writes `bytes` to `path` by the rules of the module docs.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if path.as_os_str() == STDOUT {
        return to_stdout(bytes);
    }
    match fs::metadata(path) {
        Ok(meta) if is_stdout(&meta) => to_stdout(bytes),
        Ok(meta) if !meta.is_file() && !meta.is_dir() => in_place(path, bytes),
        // A folder falls through: the rename fails with "is a directory".
        Ok(_) => atomic(&resolve_links(path)?, bytes),
        // Missing, or a dangling link: created where the link points.
        Err(e) if e.kind() == io::ErrorKind::NotFound => atomic(&resolve_links(path)?, bytes),
        Err(e) => Err(e),
    }
}

fn to_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()
}

/// Whether `meta` is the file behind fd 1 (same device and inode).
fn is_stdout(meta: &Metadata) -> bool {
    let Ok(fd) = io::stdout().as_fd().try_clone_to_owned() else {
        return false;
    };
    fs::File::from(fd)
        .metadata()
        .is_ok_and(|out| out.dev() == meta.dev() && out.ino() == meta.ino())
}

/// Opens without creating or truncating (a FIFO or device has no length).
fn in_place(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    file.write_all(bytes)?;
    file.flush()
}

/// The path at the end of `path`'s symlink chain (itself if not a link);
/// relative link targets are relative to the link's folder.
fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(io::Error::other(format!(
        "{}: more than {MAX_LINKS} symbolic links in a chain",
        path.display()
    )))
}

/// Temp file in `target`'s folder, fsynced, renamed over `target`; the temp
/// file is removed if any step fails.
fn atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let Some(name) = target.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file name", target.display()),
        ));
    };
    // Hidden and unique per process and write, so concurrent runs writing
    // the same folder never share a temp file.
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        if let Ok(old) = fs::metadata(target) {
            // Keep the mode the user gave the report (e.g. 0600).
            file.set_permissions(old.permissions())?;
        }
        file.write_all(bytes)?;
        // A full disk may only show at fsync on some filesystems.
        file.sync_all()?;
        fs::rename(&tmp, target)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .expect("read dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn a_regular_file_is_replaced_whole_and_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub/report.json");
        write(&path, b"first").expect("created with its folder");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        write(&path, b"second").expect("replaced");
        assert_eq!(fs::read(&path).expect("read"), b"second");
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(tmp_files(&path.with_file_name("")).is_empty());
    }

    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("real.json");
        fs::write(&target, "old").expect("seed");
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real.json", &link).expect("relative link");
        write(&link, b"new").expect("written");
        assert!(fs::symlink_metadata(&link)
            .expect("meta")
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).expect("read"), b"new");
        // A dangling link creates its target.
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink(dir.path().join("made.json"), &dangling).expect("link");
        write(&dangling, b"made").expect("written");
        assert!(fs::symlink_metadata(&dangling)
            .expect("meta")
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::read(dir.path().join("made.json")).expect("read"),
            b"made"
        );
        assert!(tmp_files(dir.path()).is_empty());
    }

    #[test]
    fn a_device_is_written_in_place_and_a_full_one_fails_cleanly() {
        write(Path::new("/dev/null"), b"gone").expect("/dev/null takes anything");
        use std::os::unix::fs::FileTypeExt;
        let null = fs::symlink_metadata("/dev/null").expect("meta");
        assert!(null.file_type().is_char_device(), "still the device");
        let err = write(Path::new("/dev/full"), b"x").expect_err("/dev/full is full");
        assert_eq!(err.raw_os_error(), Some(28), "ENOSPC: {err}");
    }

    #[test]
    fn a_failed_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("a-folder");
        fs::create_dir(&folder).expect("mkdir");
        assert!(write(&folder, b"x").is_err(), "a folder is not replaced");
        assert!(folder.is_dir());
        assert!(
            tmp_files(dir.path()).is_empty(),
            "{:?}",
            tmp_files(dir.path())
        );
    }
}
