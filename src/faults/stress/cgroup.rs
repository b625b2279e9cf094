//! The CPU quota of the cgroup this process runs in, in cores.
//!
//! Inside a container limited to 1.5 CPUs on a 32-core host, "80% CPU"
//! means 80% of 1.5 cores: spinning 32 threads would only be throttled by
//! the kernel, in bursts, which is a different fault. Both cgroup versions
//! are read: v2 `cpu.max` (`quota period` or `max period`) and v1
//! `cpu.cfs_quota_us` / `cpu.cfs_period_us` (quota `-1` = unlimited). A
//! quota anywhere on the path from our cgroup to the root applies, so the
//! smallest one found wins.

use std::fs;
use std::path::{Path, PathBuf};

/// Where cgroup file systems are mounted on every mainstream distribution.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cores this process's cgroup allows (e.g. `1.5`), or `None` when no
/// quota applies or none can be read.
pub fn cgroup_cpu_limit() -> Option<f64> {
    let membership = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    cpu_limit_under(Path::new(CGROUP_ROOT), &membership)
}

/// [`cgroup_cpu_limit`] with the mount root and the contents of
/// `/proc/self/cgroup` given, so it can be tested on a fake tree.
pub fn cpu_limit_under(root: &Path, membership: &str) -> Option<f64> {
    let mut limits = Vec::new();
    for line in membership.lines() {
        // `hierarchy-id:controllers:path`; the path may itself contain `:`.
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            // v2: mounted at the root, or at `unified/` on hybrid hosts.
            for mount in [root.to_path_buf(), root.join("unified")] {
                for dir in ancestors(&mount, path) {
                    if let Ok(text) = fs::read_to_string(dir.join("cpu.max")) {
                        limits.extend(parse_cpu_max(&text));
                    }
                }
            }
        } else if controllers.split(',').any(|c| c == "cpu") {
            for mount in [controllers, "cpu", "cpu,cpuacct", "cpuacct,cpu"] {
                for dir in ancestors(&root.join(mount), path) {
                    let quota = fs::read_to_string(dir.join("cpu.cfs_quota_us"));
                    let period = fs::read_to_string(dir.join("cpu.cfs_period_us"));
                    if let (Ok(quota), Ok(period)) = (quota, period) {
                        limits.extend(parse_cfs(&quota, &period));
                    }
                }
            }
        }
    }
    limits.into_iter().reduce(f64::min)
}

/// `mount/a/b`, `mount/a`, `mount` for the cgroup path `/a/b`. In a cgroup
/// namespace the path is `/` and only `mount` itself exists.
fn ancestors(mount: &Path, path: &str) -> Vec<PathBuf> {
    Path::new(path)
        .ancestors()
        .map(|a| mount.join(a.strip_prefix("/").unwrap_or(a)))
        .collect()
}

/// Cores allowed by a v2 `cpu.max`: `150000 100000` is 1.5, `max 100000` is none.
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut words = text.split_whitespace();
    let quota = words.next()?;
    let period = words.next().unwrap_or("100000");
    if quota == "max" {
        return None;
    }
    ratio(quota, period)
}

/// Cores allowed by v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` (quota `-1`: none).
pub fn parse_cfs(quota: &str, period: &str) -> Option<f64> {
    ratio(quota.trim(), period.trim())
}

fn ratio(quota: &str, period: &str) -> Option<f64> {
    let quota: i64 = quota.parse().ok()?;
    let period: i64 = period.parse().ok()?;
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_quota_of_max_is_no_limit() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
    }

    #[test]
    fn a_v2_quota_of_150ms_per_100ms_is_one_and_a_half_cores() {
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
    }

    #[test]
    fn unreadable_quotas_are_no_limit() {
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_cpu_max("lots 100000"), None);
        assert_eq!(parse_cpu_max("100000 0"), None);
    }

    #[test]
    fn a_v1_quota_of_minus_one_is_no_limit() {
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs("50000\n", "100000\n"), Some(0.5));
    }

    #[test]
    fn the_smallest_quota_on_the_path_to_the_root_wins() {
        let root = tempfile::tempdir().expect("tempdir");
        let leaf = root.path().join("kubepods/pod1");
        fs::create_dir_all(&leaf).expect("mkdir");
        fs::write(root.path().join("cpu.max"), "max 100000\n").expect("write");
        fs::write(root.path().join("kubepods/cpu.max"), "200000 100000\n").expect("write");
        fs::write(leaf.join("cpu.max"), "150000 100000\n").expect("write");
        assert_eq!(
            cpu_limit_under(root.path(), "0::/kubepods/pod1\n"),
            Some(1.5)
        );
        assert_eq!(cpu_limit_under(root.path(), "0::/kubepods\n"), Some(2.0));
        assert_eq!(cpu_limit_under(root.path(), "0::/\n"), None);
    }

    #[test]
    fn a_v1_cpu_hierarchy_is_read_from_its_mount() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("cpu,cpuacct/docker/abc");
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join("cpu.cfs_quota_us"), "250000\n").expect("write");
        fs::write(dir.join("cpu.cfs_period_us"), "100000\n").expect("write");
        let membership = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n";
        assert_eq!(cpu_limit_under(root.path(), membership), Some(2.5));
    }
}
