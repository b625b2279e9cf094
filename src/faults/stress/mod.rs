//! CPU and memory pressure, applied by a separate child process.
//!
//! The pressure runs in `faultline stress ...` (a hidden subcommand), never in
//! the harness itself, so that a busy or bloated stressor cannot starve the
//! load generator or the recorder, and so that removing the fault is one
//! `SIGKILL` to a process group. The child dies with its parent
//! (`PR_SET_PDEATHSIG`), so a harness killed with `SIGKILL` leaves no stress
//! behind.
//!
//! - [`args`]: the child's command line ([`StressArgs`]), both directions;
//! - [`child`]: the child's entry point [`stress_main`], the CPU duty cycle
//!   and the memory ramp;
//! - [`cgroup`]: the CPU quota of the container, which CPU load is a share of;
//! - [`fault`]: [`StressFault`], the [`super::Fault`] that spawns and kills the child.

pub mod args;
pub mod cgroup;
pub mod child;
pub mod fault;

pub use args::StressArgs;
pub use cgroup::cgroup_cpu_limit;
pub use child::stress_main;
pub use fault::StressFault;

/// Environment variable naming the `faultline` executable that runs the
/// stress child; [`std::env::current_exe`] when unset.
pub const BIN_ENV: &str = "FAULTLINE_BIN";

/// Environment variable through which the child learns its parent's pid, to
/// detect that the parent died before `PR_SET_PDEATHSIG` was in place.
pub const PARENT_ENV: &str = "FAULTLINE_STRESS_PARENT";

/// `256MiB`, `1GiB`, `1536KiB` or `1000B`: the largest binary unit that
/// divides `bytes` exactly, so the text reads like the YAML it came from.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (size, unit) in UNITS {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_written_in_the_largest_exact_unit() {
        assert_eq!(format_bytes(256 << 20), "256MiB");
        assert_eq!(format_bytes(1 << 30), "1GiB");
        assert_eq!(format_bytes(1536 << 10), "1536KiB");
        assert_eq!(format_bytes(1000), "1000B");
        assert_eq!(format_bytes(0), "0B");
    }
}
