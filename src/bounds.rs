//! The limits that keep faultline from becoming the outage: what a fault or
//! a load may do to the host it runs on.
//!
//! One module, one message per bound, used by everything that accepts a
//! fault or a load: YAML validation, `faultline plan`, the agent API and the
//! faults themselves at apply time (a pidfile is only known then). A chaos
//! tool is often run as root on a staging host; `kill(-1)` from a pidfile
//! holding `-1` would signal every process on it, so these checks sit right
//! before the system call as well as at validation.
//!
//! The bounds and how to lift them are listed in the README's "Safety" section.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Share of the host's total memory a `memory` fault may take without `force`.
pub const MEMORY_CAP: f64 = 0.80;
/// Memory that must stay available after a `memory` fault, without `force`.
pub const MEMORY_RESERVE: u64 = 1 << 30;
/// A pidfile holds one integer: anything longer is not a pidfile.
pub const PIDFILE_MAX_BYTES: usize = 32;

/// Highest open-model arrival rate, per second, without `--force`.
pub const MAX_RATE: f64 = 10_000_000.0;
/// Most closed-model workers, without `--force`.
pub const MAX_CONCURRENCY: u64 = 100_000;
/// Most requests in flight in the open model, without `--force`.
pub const MAX_IN_FLIGHT: u64 = 100_000;
/// Longest phase (and longest run of one experiment), without `--force`.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A value outside a bound, worded for the user.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BoundError {
    #[error("pid {0} is refused: pids 0, 1 and negative values signal whole groups of processes (kill(0), kill(-1)) or init")]
    GroupOrInit(i64),
    #[error("pid {pid} is refused: it is faultline's own {what}")]
    Own { pid: i64, what: &'static str },
    #[error("{0} is not a pid")]
    NotAPid(i64),
    #[error("pidfile {path}: {reason}")]
    Pidfile { path: String, reason: String },
    #[error("{asked} would {why} (total {total}, available {available}); {lift}")]
    Memory {
        asked: String,
        why: &'static str,
        total: String,
        available: String,
        lift: &'static str,
    },
    #[error("`cores: {asked}` is more than this host's {host} cores")]
    Cores { asked: u64, host: usize },
    #[error(
        "{what} {asked} is above faultline's maximum of {max}; run with --force to lift the bound"
    )]
    Load {
        what: &'static str,
        asked: String,
        max: String,
    },
}

/// Checks that signalling `pid` hits exactly one process that is neither
/// init nor faultline itself (its pid, its process group, its parent).
pub fn signal_target(pid: i64) -> Result<i32, BoundError> {
    if pid <= 1 {
        return Err(BoundError::GroupOrInit(pid));
    }
    let Ok(pid32) = i32::try_from(pid) else {
        // Beyond any pid the kernel hands out; kill() would reject it too,
        // but never let a truncation turn it into another process.
        return Err(BoundError::NotAPid(pid));
    };
    let own = [
        (std::process::id() as i64, "process"),
        (i64::from(nix::unistd::getpgrp().as_raw()), "process group"),
        (i64::from(nix::unistd::getppid().as_raw()), "parent process"),
    ];
    if let Some(&(_, what)) = own.iter().find(|(p, _)| *p == pid) {
        return Err(BoundError::Own { pid, what });
    }
    Ok(pid32)
}

/// Reads a pidfile: a regular file of at most [`PIDFILE_MAX_BYTES`] holding
/// one integer, which must pass [`signal_target`]. A FIFO, a device such as
/// `/dev/zero` or a directory is refused without being read.
pub fn read_pidfile(path: &Path) -> Result<i32, BoundError> {
    let fail = |reason: String| BoundError::Pidfile {
        path: path.display().to_string(),
        reason,
    };
    let bytes = read_regular(path, PIDFILE_MAX_BYTES as u64).map_err(|e| match e {
        ReadFileError::TooLarge { .. } => fail(format!(
            "longer than {PIDFILE_MAX_BYTES} bytes: a pidfile holds one pid"
        )),
        other => fail(other.to_string()),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    let pid: i64 = text.parse().map_err(|_| {
        fail(format!(
            "holds `{}`, not a pid",
            text.escape_default().collect::<String>()
        ))
    })?;
    signal_target(pid).map_err(|e| fail(e.to_string()))
}

/// Largest token file `faultline agent` and `faultline proxy` read: a
/// bearer token is a line, not a file's worth.
pub const TOKEN_FILE_MAX_BYTES: u64 = 4096;

/// Why [`read_regular`] read nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReadFileError {
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a regular file (it is {0})")]
    NotRegular(&'static str),
    #[error("larger than {max} bytes")]
    TooLarge { max: u64 },
}

/// Reads a whole regular file of at most `max` bytes: FIFOs, devices and
/// directories are refused without being read ([`open_regular`]), and the
/// read stops one byte past `max`, however the file grows meanwhile.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, ReadFileError> {
    let (file, meta) = open_regular(path).map_err(|e| match e {
        OpenError::Io(e) => ReadFileError::Io(e),
        OpenError::NotRegular(what) => ReadFileError::NotRegular(what),
    })?;
    if meta.len() > max {
        return Err(ReadFileError::TooLarge { max });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(ReadFileError::TooLarge { max });
    }
    Ok(bytes)
}

/// Why [`open_regular`] refused a path.
#[derive(Debug)]
pub enum OpenError {
    Io(std::io::Error),
    /// What it is instead: "a FIFO", "a directory", "a device", ...
    NotRegular(&'static str),
}

/// Opens `path` for reading if it is a regular file, without blocking:
/// opening a FIFO for reading would otherwise wait for a writer forever,
/// and a device such as `/dev/zero` never ends. The type is checked on the
/// open file (fstat), so it cannot be swapped between the check and the read.
pub fn open_regular(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), OpenError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(OpenError::Io)?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return Ok((file, meta));
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(OpenError::NotRegular(what))
}

/// Whether a `kill` by `name` may select `pid`: never init, never faultline
/// itself, its parent or another faultline process (its stress children, an
/// agent on the same host).
pub fn selectable_by_name(pid: i32) -> bool {
    if signal_target(i64::from(pid)).is_err() {
        return false;
    }
    let exe = |p: &str| std::fs::read_link(format!("/proc/{p}/exe")).ok();
    match (exe("self"), exe(&pid.to_string())) {
        (Some(mine), Some(theirs)) => mine != theirs,
        _ => true,
    }
}

/// When process `pid` started (clock ticks since boot, `/proc/PID/stat`
/// field 22), or `None` when there is no such process. A pid alone is not
/// an identity: the kernel reuses it once the process is gone, so anything
/// that signals a pid it wrote down earlier (the rollback journal after a
/// SIGKILL) first checks that the start time still matches.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or
    // `)`: the fields that follow start after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); field 22 is the 20th of those.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// What the bounds compare against: the host's memory and cores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Host {
    pub total_memory: u64,
    pub available_memory: u64,
    pub cores: usize,
}

impl Host {
    /// This host, now.
    pub fn current() -> Host {
        use sysinfo::{MemoryRefreshKind, RefreshKind, System};
        let s = System::new_with_specifics(
            RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        Host {
            total_memory: s.total_memory(),
            available_memory: s.available_memory(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// How `force` is given where the memory bound is checked, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForceHint {
    /// In YAML: `force: true`.
    Yaml,
    /// On an agent: `"force": true` in the request, allowed by `--allow-force`.
    Agent,
}

/// A `memory` fault of `bytes` must leave 20% of the host and 1 GiB
/// available, unless forced.
pub fn memory(bytes: u64, force: bool, host: &Host, hint: ForceHint) -> Result<(), BoundError> {
    if force {
        return Ok(());
    }
    let too_much = bytes as f64 > MEMORY_CAP * host.total_memory as f64;
    let too_little_left = host.available_memory.saturating_sub(bytes) < MEMORY_RESERVE;
    if !(too_much || too_little_left) {
        return Ok(());
    }
    Err(BoundError::Memory {
        asked: gib(bytes),
        why: if too_much {
            "take more than 80% of this host's memory"
        } else {
            "leave less than 1 GiB available"
        },
        total: gib(host.total_memory),
        available: gib(host.available_memory),
        lift: match hint {
            ForceHint::Yaml => "add `force: true` to take it anyway",
            ForceHint::Agent => {
                "send \"force\": true to take it anyway (the agent must run with --allow-force)"
            }
        },
    })
}

/// A `cpu` fault uses at most the host's cores.
pub fn cores(asked: u64, host: &Host) -> Result<(), BoundError> {
    if asked as usize > host.cores || asked > u32::MAX as u64 {
        return Err(BoundError::Cores {
            asked,
            host: host.cores,
        });
    }
    Ok(())
}

/// An open-model rate (per second) within [`MAX_RATE`].
pub fn rate(per_second: f64) -> Result<(), BoundError> {
    if per_second > MAX_RATE {
        return Err(load_error(
            "a rate of",
            format!("{per_second}/s"),
            "10,000,000/s",
        ));
    }
    Ok(())
}

/// A closed-model worker count within [`MAX_CONCURRENCY`].
pub fn concurrency(workers: u64) -> Result<(), BoundError> {
    if workers > MAX_CONCURRENCY {
        return Err(load_error("`concurrency:`", workers.to_string(), "100,000"));
    }
    Ok(())
}

/// An open-model in-flight cap within [`MAX_IN_FLIGHT`].
pub fn in_flight(cap: u64) -> Result<(), BoundError> {
    if cap > MAX_IN_FLIGHT {
        return Err(load_error("`max_in_flight:`", cap.to_string(), "100,000"));
    }
    Ok(())
}

/// A phase or ramp duration within [`MAX_DURATION`].
pub fn duration(what: &'static str, d: Duration) -> Result<(), BoundError> {
    if d > MAX_DURATION {
        return Err(load_error(what, format!("{:.0}s", d.as_secs_f64()), "24h"));
    }
    Ok(())
}

fn load_error(what: &'static str, asked: String, max: &str) -> BoundError {
    BoundError::Load {
        what,
        asked,
        max: max.to_string(),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1}GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pidfile(text: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.pid");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(text))
            .expect("write pidfile");
        (dir, path)
    }

    #[test]
    fn a_start_time_tells_a_process_from_a_later_one_with_its_pid() {
        let me = std::process::id() as i32;
        let mine = start_time(me).expect("own start time");
        assert_eq!(start_time(me), Some(mine), "stable for one process");
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let theirs = start_time(child.id() as i32);
        let _ = child.wait();
        assert!(theirs.is_none_or(|t| t >= mine), "a child starts later");
        assert_eq!(start_time(child.id() as i32), None, "reaped: gone");
        assert_eq!(start_time(i32::MAX), None);
    }

    #[test]
    fn pids_that_signal_groups_init_or_faultline_itself_are_refused() {
        let me = std::process::id() as i64;
        let group = i64::from(nix::unistd::getpgrp().as_raw());
        let parent = i64::from(nix::unistd::getppid().as_raw());
        for pid in [-1, 0, 1, -42, me, group, parent, i64::from(i32::MAX) + 1] {
            assert!(signal_target(pid).is_err(), "pid {pid} must be refused");
        }
        assert!(signal_target(-1)
            .expect_err("refused")
            .to_string()
            .contains("kill(-1)"));
    }

    #[test]
    fn a_pidfile_must_be_a_small_regular_file_holding_one_allowed_pid() {
        #[rustfmt::skip]
        let cases: [(&[u8], &str); 6] = [
            (b"-1\n", "kill(-1)"),
            (b"0", "pids 0, 1"),
            (b"1\n", "pids 0, 1"),
            (b"12 13\n", "not a pid"),
            (b"\x1b[31mred", "not a pid"),
            (&[b'7'; 64], "longer than 32 bytes"),
        ];
        for (text, part) in cases {
            let (_dir, path) = pidfile(text);
            let err = read_pidfile(&path).expect_err("refused");
            assert!(err.to_string().contains(part), "{text:?}: {err}");
        }
        let (_dir, path) = pidfile(b"4242\n");
        assert_eq!(read_pidfile(&path), Ok(4242));
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_without_reading_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let started = std::time::Instant::now();
        for path in [Path::new("/dev/zero"), &fifo, dir.path()] {
            let err = read_pidfile(path).expect_err("refused");
            assert!(err.to_string().contains("not a regular file"), "{err}");
            let err = read_regular(path, 10).expect_err("refused");
            assert!(matches!(err, ReadFileError::NotRegular(_)), "{err}");
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn the_host_has_memory_and_cores() {
        let host = Host::current();
        assert!(host.total_memory > 0 && host.cores > 0);
        assert!(host.available_memory <= host.total_memory, "{host:?}");
    }

    #[test]
    fn name_matching_never_selects_init_or_faultline() {
        assert!(!selectable_by_name(1));
        assert!(!selectable_by_name(std::process::id() as i32));
    }

    #[test]
    fn memory_and_cores_are_bounded_by_the_host_unless_forced() {
        let host = Host {
            total_memory: 16 << 30,
            available_memory: 8 << 30,
            cores: 2,
        };
        assert!(memory(4 << 30, false, &host, ForceHint::Yaml).is_ok());
        let err = memory(1 << 40, false, &host, ForceHint::Agent).expect_err("refused");
        assert!(err.to_string().contains("--allow-force"), "{err}");
        let err = memory(15 << 29, false, &host, ForceHint::Yaml).expect_err("refused");
        assert!(err.to_string().contains("less than 1 GiB"), "{err}");
        assert!(memory(1 << 40, true, &host, ForceHint::Yaml).is_ok());
        assert!(cores(2, &host).is_ok());
        assert!(cores(4096, &host).is_err());
    }

    #[test]
    fn load_beyond_the_maxima_names_the_bound_and_the_flag() {
        assert!(rate(10_000_000.0).is_ok());
        for err in [
            rate(1e12).expect_err("rate"),
            rate(f64::MAX).expect_err("rate"),
            concurrency(2_147_483_647).expect_err("concurrency"),
            in_flight(1_000_000).expect_err("in flight"),
            duration("a phase of", Duration::from_secs(136 * 365 * 86400)).expect_err("long"),
        ] {
            assert!(err.to_string().contains("--force"), "{err}");
        }
    }
}
