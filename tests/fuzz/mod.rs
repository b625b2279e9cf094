//! Bounded fuzzing in `cargo test` (issues 15 and 19): mutated YAML fed to
//! the config front end, mutated requests fed to a real `faultline proxy`
//! admin API. Deterministic (a fixed seed unless `FAULTLINE_FUZZ_SEED` is
//! set), bounded in count (`FAULTLINE_FUZZ_CASES`, default 10,000 each)
//! and in time. The committed seeds in `tests/fuzz/seeds/` are the inputs
//! that once hung, exhausted or harmed the host; every fuzz run starts from
//! them, the shipped experiments and the validation fixtures.

mod admin;
mod mutate;
mod yaml;

/// Cases per fuzz target, unless `FAULTLINE_FUZZ_CASES` says otherwise.
const DEFAULT_CASES: usize = 10_000;

fn cases() -> usize {
    std::env::var("FAULTLINE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn seed() -> u64 {
    std::env::var("FAULTLINE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_fa17)
}
