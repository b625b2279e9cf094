//! The YAML front end under 10,000 mutated files: every one is accepted or
//! refused with diagnostics (rendered, as the CLI prints them) — never a
//! panic, never over 2 s, and the worker process never resident over
//! 256 MiB nor beyond a 1 GiB address space (`prlimit --as`).
//!
//! The driver re-runs this test binary as a worker under the limit, so an
//! input that allocates without bound aborts the worker and fails the test
//! instead of the machine.

use super::mutate::mutate;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CASE_BOUND: Duration = Duration::from_secs(2);
const RESIDENT_BOUND_KIB: u64 = 256 * 1024;
const ADDRESS_SPACE: u64 = 1 << 30;

/// Every YAML file the repository ships or tests with: the seeds, with
/// whether each must be refused (the committed hostile inputs of
/// `tests/fuzz/seeds/`, unless named `ok-*`).
fn seeds() -> Vec<(Vec<u8>, Option<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        "experiments",
        "experiments/real",
        "suites",
        "tests/fixtures/valid",
        "tests/fixtures/invalid",
        "tests/fuzz/seeds",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files {
            if file.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                let hostile = (dir == "tests/fuzz/seeds")
                    .then_some(name)
                    .flatten()
                    .filter(|n| !n.starts_with("ok-"));
                if let Ok(bytes) = std::fs::read(&file) {
                    out.push((bytes, hostile));
                }
            }
        }
    }
    out
}

fn peak_resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn mutated_yaml_never_panics_hangs_or_grows() {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--as={ADDRESS_SPACE}"))
        .arg("--")
        .arg(exe)
        .args([
            "--exact",
            "fuzz::yaml::worker",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FAULTLINE_FUZZ_WORKER", "1");
    let out = crate::cli::run_bounded(&mut cmd, Duration::from_secs(600));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the fuzz worker failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    let summary = stdout
        .lines()
        .find_map(|l| l.find("fuzz yaml:").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    eprintln!("{summary}");
}

#[test]
#[ignore = "the worker of mutated_yaml_never_panics_hangs_or_grows, run under prlimit"]
fn worker() {
    if std::env::var_os("FAULTLINE_FUZZ_WORKER").is_none() {
        return;
    }
    let seeded = seeds();
    assert!(seeded.len() > 50, "seeds found: {}", seeded.len());
    let seeds: Vec<Vec<u8>> = seeded.iter().map(|(b, _)| b.clone()).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("fuzz.yaml");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(super::seed());
    let cases = super::cases();
    let (mut accepted, mut refused) = (0usize, 0usize);
    let mut slowest = (Duration::ZERO, Vec::new());
    let started = Instant::now();
    for case in 0..cases {
        // The seeds as they are first, then mutations of them.
        let input = match seeds.get(case) {
            Some(seed) => seed.clone(),
            None => {
                let base = seeds.choose(&mut rng).expect("seeds");
                mutate(&mut rng, base, &seeds)
            }
        };
        std::fs::write(&file, &input).expect("write case");
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(|| {
            match faultline::config::load_file_with(&file, Default::default()) {
                Ok(_) => true,
                // Rendered as `validate` prints it: positions, excerpts.
                Err(e) => {
                    let text = format!("{e}{}", e.summary());
                    assert!(!text.is_empty());
                    false
                }
            }
        });
        let took = t.elapsed();
        let keep = || {
            let path = std::env::temp_dir().join(format!("faultline-fuzz-case-{case}.yaml"));
            let _ = std::fs::write(&path, &input);
            path.display().to_string()
        };
        if let (Ok(true), Some((_, Some(name)))) = (&outcome, seeded.get(case)) {
            panic!("the hostile seed {name} was accepted");
        }
        match outcome {
            Ok(true) => accepted += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!("case {case} panicked; input kept in {}", keep()),
        }
        assert!(
            took < CASE_BOUND,
            "case {case} took {took:?}; input kept in {}",
            keep()
        );
        if took > slowest.0 {
            slowest = (took, input);
        }
    }
    let peak = peak_resident_kib();
    println!(
        "fuzz yaml: {cases} cases ({accepted} accepted, {refused} refused) in {:.1}s, slowest {:?} ({} bytes), peak resident {} MiB",
        started.elapsed().as_secs_f64(),
        slowest.0,
        slowest.1.len(),
        peak / 1024
    );
    assert!(peak < RESIDENT_BOUND_KIB, "peak resident memory {peak} KiB");
}
