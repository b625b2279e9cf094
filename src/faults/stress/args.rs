//! The stress child's command line: built by the fault ([`StressArgs::to_args`])
//! and read back by the child ([`StressArgs::parse`]). Hand-parsed because it is
//! an internal contract between two copies of the same binary, not a user
//! interface; the two functions are each other's inverse.

use std::time::Duration;

/// More threads than this is a typo, not a load.
const MAX_CORES: usize = 4096;

/// What a stress child does until it is killed.
#[derive(Debug, Clone, PartialEq)]
pub enum StressArgs {
    /// Keep `cores` threads each busy for `load` (0..=1) of the time, scaled
    /// to the container's CPU quota (see [`super::cgroup`]).
    Cpu { load: f64, cores: usize },
    /// Allocate and touch `bytes`, linearly over `ramp` (all at once when
    /// zero), then hold them.
    Memory { bytes: u64, ramp: Duration },
}

impl StressArgs {
    /// The arguments after `stress`: `["cpu", "--load", "0.8", "--cores", "2"]`
    /// or `["memory", "--bytes", "268435456", "--ramp", "10s"]`.
    pub fn to_args(&self) -> Vec<String> {
        match self {
            // f64's Display is the shortest text that parses back to the same value.
            StressArgs::Cpu { load, cores } => vec![
                "cpu".into(),
                "--load".into(),
                load.to_string(),
                "--cores".into(),
                cores.to_string(),
            ],
            StressArgs::Memory { bytes, ramp } => vec![
                "memory".into(),
                "--bytes".into(),
                bytes.to_string(),
                "--ramp".into(),
                humantime::format_duration(*ramp).to_string(),
            ],
        }
    }

    /// Parses what [`StressArgs::to_args`] wrote (the arguments after `stress`).
    pub fn parse(argv: &[String]) -> Result<StressArgs, String> {
        let (kind, rest) = argv
            .split_first()
            .ok_or_else(|| "expected `cpu` or `memory`".to_string())?;
        let options = options(rest)?;
        let known: &[&str] = match kind.as_str() {
            "cpu" => &["--load", "--cores"],
            "memory" => &["--bytes", "--ramp"],
            other => {
                return Err(format!(
                    "unknown stress kind `{other}`: expected `cpu` or `memory`"
                ))
            }
        };
        if let Some((name, _)) = options.iter().find(|(name, _)| !known.contains(name)) {
            return Err(format!("`{name}` is not an option of `stress {kind}`"));
        }
        let get = |name: &str| {
            options
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| format!("`stress {kind}` needs `{name}`"))
        };
        let args = match kind.as_str() {
            "cpu" => {
                let load = get("--load")?;
                let load: f64 = load
                    .parse()
                    .map_err(|_| format!("--load `{load}` is not a number"))?;
                let cores = get("--cores")?;
                let cores: usize = cores
                    .parse()
                    .map_err(|_| format!("--cores `{cores}` is not a whole number"))?;
                StressArgs::Cpu { load, cores }
            }
            _ => {
                let bytes = get("--bytes")?;
                let bytes: u64 = bytes
                    .parse()
                    .map_err(|_| format!("--bytes `{bytes}` is not a whole number"))?;
                let ramp = get("--ramp")?;
                let ramp =
                    humantime::parse_duration(ramp).map_err(|e| format!("--ramp `{ramp}`: {e}"))?;
                StressArgs::Memory { bytes, ramp }
            }
        };
        args.validate()?;
        Ok(args)
    }

    /// Checks the ranges [`StressArgs::parse`] and the child rely on.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            StressArgs::Cpu { load, cores } => {
                if !(0.0..=1.0).contains(&load) {
                    return Err(format!("--load {load} is outside 0..=1"));
                }
                if cores == 0 || cores > MAX_CORES {
                    return Err(format!("--cores {cores} is outside 1..={MAX_CORES}"));
                }
            }
            StressArgs::Memory { bytes, .. } => {
                if bytes == 0 {
                    return Err("--bytes must be more than 0".into());
                }
                if usize::try_from(bytes).is_err() {
                    return Err(format!(
                        "--bytes {bytes} does not fit in this platform's memory"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `--name value` pairs, each name at most once.
fn options(rest: &[String]) -> Result<Vec<(&str, &str)>, String> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    let mut it = rest.iter();
    while let Some(name) = it.next() {
        if !name.starts_with("--") {
            return Err(format!("unexpected argument `{name}`"));
        }
        let value = it.next().ok_or_else(|| format!("`{name}` needs a value"))?;
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("`{name}` is given twice"));
        }
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn cpu_arguments_read_as_the_brief_shows() {
        let args = StressArgs::Cpu {
            load: 0.8,
            cores: 2,
        };
        assert_eq!(
            args.to_args(),
            argv(&["cpu", "--load", "0.8", "--cores", "2"])
        );
    }

    #[test]
    fn every_kind_survives_a_round_trip() {
        let cases = [
            StressArgs::Cpu {
                load: 0.8,
                cores: 2,
            },
            StressArgs::Cpu {
                load: 0.0,
                cores: 1,
            },
            StressArgs::Cpu {
                load: 1.0,
                cores: 64,
            },
            StressArgs::Cpu {
                load: 0.1 + 0.2,
                cores: 3,
            },
            StressArgs::Memory {
                bytes: 256 << 20,
                ramp: Duration::from_secs(10),
            },
            StressArgs::Memory {
                bytes: 1,
                ramp: Duration::ZERO,
            },
            StressArgs::Memory {
                bytes: 12345,
                ramp: Duration::new(1, 500_000_007),
            },
        ];
        for args in cases {
            let back = StressArgs::parse(&args.to_args());
            assert_eq!(back, Ok(args.clone()), "{:?}", args.to_args());
        }
    }

    #[test]
    fn options_may_come_in_any_order() {
        let args = StressArgs::parse(&argv(&["cpu", "--cores", "4", "--load", "0.5"]));
        assert_eq!(
            args,
            Ok(StressArgs::Cpu {
                load: 0.5,
                cores: 4
            })
        );
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "expected `cpu` or `memory`"),
            (&["disk"], "unknown stress kind `disk`"),
            (&["cpu", "--load", "0.5"], "needs `--cores`"),
            (&["cpu", "--load", "1.5", "--cores", "1"], "outside 0..=1"),
            (&["cpu", "--load", "NaN", "--cores", "1"], "outside 0..=1"),
            (&["cpu", "--load", "0.5", "--cores", "0"], "outside 1..="),
            (&["cpu", "--load", "half", "--cores", "1"], "not a number"),
            (
                &["cpu", "--load", "0.5", "--cores", "1", "--bytes", "1"],
                "`--bytes` is not an option",
            ),
            (&["cpu", "--load", "0.5", "--load", "0.5"], "given twice"),
            (&["cpu", "--load"], "needs a value"),
            (&["cpu", "0.5"], "unexpected argument"),
            (&["memory", "--bytes", "0", "--ramp", "0s"], "more than 0"),
            (
                &["memory", "--bytes", "1", "--ramp", "soon"],
                "--ramp `soon`",
            ),
        ];
        for (words, expected) in cases {
            let err = StressArgs::parse(&argv(words)).expect_err("invalid");
            assert!(err.contains(expected), "{words:?}: {err}");
        }
    }
}
