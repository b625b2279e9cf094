//! The stress child (`faultline stress ...`): plain threads, no async
//! runtime, and nothing to shut down gracefully — it runs until it is killed.
//!
//! It writes exactly one line on stdout, `ready`, once the pressure is on
//! (for memory: once the first chunk is resident), and nothing after it: the
//! parent stops reading then.

use super::args::StressArgs;
use super::{cgroup, PARENT_ENV};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

/// Exit code: setting up failed (`prctl`, threads); the reason is on stderr.
pub const EXIT_SETUP_FAILED: u8 = 1;
/// Exit code: the arguments are out of range; the reason is on stderr.
pub const EXIT_INVALID: u8 = 2;
/// Exit code: the parent died before the child could tie itself to it.
pub const EXIT_PARENT_GONE: u8 = 3;

/// One duty cycle: busy for `load × PERIOD`, asleep for the rest. Short
/// enough that a 1-second telemetry sample sees a steady load, long enough
/// that the sleep is not dominated by timer slack.
pub const PERIOD: Duration = Duration::from_millis(100);

/// Memory is allocated and touched this much at a time.
pub const CHUNK: usize = 16 << 20;

/// One byte written per page makes the page resident. 4 KiB is the smallest
/// page size Linux uses; on larger pages some writes are redundant, not missing.
const PAGE: usize = 4096;

/// The entry point of `faultline stress ...`. Returns only on failure, with
/// one of the `EXIT_*` codes; otherwise it applies the pressure until killed.
pub fn stress_main(args: &StressArgs) -> u8 {
    // First, so that from here on the child cannot outlive its parent...
    if let Err(e) = set_pdeathsig(Signal::SIGKILL) {
        crate::eoutln!("faultline stress: cannot tie the child to its parent: {e}");
        return EXIT_SETUP_FAILED;
    }
    // ...then the classic race: the parent may have died between fork and
    // prctl, in which case we were re-parented and no signal will ever come.
    if parent_is_gone() {
        return EXIT_PARENT_GONE;
    }
    if let Err(e) = args.validate() {
        crate::eoutln!("faultline stress: {e}");
        return EXIT_INVALID;
    }
    match *args {
        StressArgs::Cpu { load, cores } => burn_cpu(load, cores),
        StressArgs::Memory { bytes, ramp } => hold_memory(bytes, ramp),
    }
}

/// True when [`PARENT_ENV`] names a pid other than our parent's. Without the
/// variable (run by hand) there is nothing to compare with.
fn parent_is_gone() -> bool {
    let Some(expected) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
    else {
        return false;
    };
    nix::unistd::getppid().as_raw() != expected
}

/// The share of its core each of `cores` threads must keep busy so that the
/// total is `load` of what may be used: `min(cores, quota)` cores.
pub fn per_thread_load(load: f64, cores: usize, quota: Option<f64>) -> f64 {
    if cores == 0 {
        return 0.0;
    }
    let cores_f = cores as f64;
    let usable = quota.map_or(cores_f, |q| q.min(cores_f));
    (load * usable / cores_f).clamp(0.0, 1.0)
}

/// Busy and idle time of one `period` at `load` (0..=1).
pub fn duty_cycle(load: f64, period: Duration) -> (Duration, Duration) {
    let busy = period.mul_f64(load.clamp(0.0, 1.0));
    (busy, period.saturating_sub(busy))
}

fn burn_cpu(load: f64, cores: usize) -> u8 {
    let share = per_thread_load(load, cores, cgroup::cgroup_cpu_limit());
    for i in 0..cores {
        let spawned = thread::Builder::new()
            .name(format!("stress-cpu-{i}"))
            .spawn(move || spin(share));
        if let Err(e) = spawned {
            crate::eoutln!("faultline stress: cannot start CPU thread {i}: {e}");
            return EXIT_SETUP_FAILED;
        }
    }
    ready();
    hold_forever()
}

/// Busy for `load` of every [`PERIOD`], asleep for the rest, forever.
fn spin(load: f64) {
    let (busy, _) = duty_cycle(load, PERIOD);
    let mut start = Instant::now();
    loop {
        let end = start + PERIOD;
        burn(busy, end);
        let now = Instant::now();
        if end > now {
            thread::sleep(end - now);
            start = end;
        } else {
            // Descheduled past the period's end: start afresh rather than
            // catch up with a burst above the requested load.
            start = now;
        }
    }
}

/// Keeps the thread busy until it has run for `busy` on a CPU, or until
/// `deadline`. Counting CPU time rather than wall time keeps the requested
/// load when other processes compete for the core (a wall-clock spin gets
/// only its fair share of its busy window); where CPU time cannot be read,
/// wall time is the measure.
fn burn(busy: Duration, deadline: Instant) {
    if busy.is_zero() {
        return;
    }
    let wall_start = Instant::now();
    let cpu_start = thread_cpu_time();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let done = match (cpu_start, thread_cpu_time()) {
            (Some(before), Some(after)) => after.saturating_sub(before),
            _ => now - wall_start,
        };
        if done >= busy {
            return;
        }
        std::hint::spin_loop();
    }
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (in ns;
/// the kernel updates it every scheduler tick, so it may lag by a few ms,
/// which overshoots a period by at most one tick). `None` where the file is
/// missing (kernels without schedstats).
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// The sizes of the chunks that make up `bytes`: full [`CHUNK`]s, then the rest.
pub fn chunk_sizes(bytes: usize) -> Vec<usize> {
    let mut sizes = vec![CHUNK; bytes / CHUNK];
    if bytes % CHUNK != 0 {
        sizes.push(bytes % CHUNK);
    }
    sizes
}

/// When chunk `i` of `n` is due, so that memory grows linearly over `ramp`
/// starting with the first chunk at once.
pub fn chunk_due(i: usize, n: usize, ramp: Duration) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    ramp.mul_f64(i as f64 / n as f64)
}

fn hold_memory(bytes: u64, ramp: Duration) -> u8 {
    let Ok(bytes) = usize::try_from(bytes) else {
        crate::eoutln!("faultline stress: {bytes} bytes do not fit in memory");
        return EXIT_INVALID;
    };
    let sizes = chunk_sizes(bytes);
    let start = Instant::now();
    let mut held = Vec::with_capacity(sizes.len());
    for (i, &size) in sizes.iter().enumerate() {
        let due = start + chunk_due(i, sizes.len(), ramp);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        held.push(resident(size));
        if i == 0 {
            ready();
        }
    }
    // Tell the optimiser the pages are read, so the writes stay.
    std::hint::black_box(&held);
    hold_forever()
}

/// A zeroed buffer whose every page has been written, so it is resident
/// rather than merely reserved (fresh zeroed pages share one zero page).
/// Allocation failure aborts the child, which the parent reports.
fn resident(size: usize) -> Vec<u8> {
    let mut buf = vec![0u8; size];
    for i in (0..size).step_by(PAGE) {
        buf[i] = 1;
    }
    std::hint::black_box(buf)
}

fn ready() {
    let mut out = std::io::stdout().lock();
    // A parent that stopped listening will kill us soon; nothing to do here.
    let _ = writeln!(out, "ready").and_then(|()| out.flush());
}

fn hold_forever() -> ! {
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_quota_each_thread_carries_the_requested_load() {
        assert_eq!(per_thread_load(0.8, 2, None), 0.8);
    }

    #[test]
    fn a_quota_below_the_core_count_scales_every_thread_down() {
        // 80% of 1.5 cores spread over 2 threads: 1.2 cores, 0.6 each.
        let share = per_thread_load(0.8, 2, Some(1.5));
        assert!((share - 0.6).abs() < 1e-9, "{share}");
    }

    #[test]
    fn a_quota_above_the_core_count_changes_nothing() {
        assert_eq!(per_thread_load(0.5, 1, Some(4.0)), 0.5);
    }

    #[test]
    fn the_share_stays_within_zero_and_one() {
        assert_eq!(per_thread_load(1.0, 4, Some(8.0)), 1.0);
        assert_eq!(per_thread_load(0.0, 4, Some(0.5)), 0.0);
        assert_eq!(per_thread_load(0.5, 0, None), 0.0);
    }

    #[test]
    fn eighty_percent_of_a_period_is_busy_and_the_rest_asleep() {
        let (busy, idle) = duty_cycle(0.8, PERIOD);
        assert_eq!(busy, Duration::from_millis(80));
        assert_eq!(idle, Duration::from_millis(20));
    }

    #[test]
    fn the_extremes_of_the_duty_cycle_are_all_idle_and_all_busy() {
        assert_eq!(duty_cycle(0.0, PERIOD), (Duration::ZERO, PERIOD));
        assert_eq!(duty_cycle(1.0, PERIOD), (PERIOD, Duration::ZERO));
        assert_eq!(duty_cycle(7.0, PERIOD), (PERIOD, Duration::ZERO));
    }

    #[test]
    fn a_burn_lasts_its_busy_time_and_no_longer_than_its_deadline() {
        let start = Instant::now();
        burn(Duration::from_millis(20), start + Duration::from_secs(5));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(20), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        let start = Instant::now();
        burn(Duration::from_secs(5), start + Duration::from_millis(20));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the deadline was ignored"
        );
    }

    #[test]
    fn thread_cpu_time_grows_while_busy() {
        let Some(before) = thread_cpu_time() else {
            return; // no schedstats on this kernel: wall time is used instead
        };
        burn(
            Duration::from_millis(30),
            Instant::now() + Duration::from_secs(5),
        );
        let after = thread_cpu_time().expect("readable twice");
        assert!(after > before, "{before:?} -> {after:?}");
    }

    #[test]
    fn memory_is_cut_into_full_chunks_and_a_remainder() {
        assert_eq!(chunk_sizes(256 << 20), vec![CHUNK; 16]);
        assert_eq!(chunk_sizes(CHUNK + 5), vec![CHUNK, 5]);
        assert_eq!(chunk_sizes(1), vec![1]);
        assert!(chunk_sizes(0).is_empty());
    }

    #[test]
    fn chunks_are_due_linearly_over_the_ramp_starting_at_once() {
        let ramp = Duration::from_secs(10);
        assert_eq!(chunk_due(0, 4, ramp), Duration::ZERO);
        assert_eq!(chunk_due(2, 4, ramp), Duration::from_secs(5));
        assert_eq!(chunk_due(3, 4, ramp), Duration::from_millis(7500));
        assert_eq!(chunk_due(3, 4, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_resident_buffer_has_every_page_written() {
        let buf = resident(3 * PAGE + 10);
        assert_eq!(buf.len(), 3 * PAGE + 10);
        assert!((0..buf.len()).step_by(PAGE).all(|i| buf[i] == 1));
    }
}
