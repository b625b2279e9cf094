//! A small mutation engine: byte flips, inserted tokens from a dictionary
//! of what broke parsers before (brackets, anchors and aliases, tags,
//! extreme numbers, control characters), deleted, duplicated and spliced
//! ranges. No coverage feedback: the dictionary and the seeds carry the
//! knowledge, and the run stays deterministic for a given seed.

use rand::seq::SliceRandom;
use rand::Rng;

/// Tokens inserted whole.
pub const DICTIONARY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ": ",
    "- ",
    "\n",
    "\n  ",
    "\t",
    "'",
    "\"",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "!!str ",
    "!custom ",
    "? ",
    "|",
    ">-",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "~",
    "null",
    "-1",
    "0",
    "1",
    "1e308",
    "1.8e308",
    "1e30",
    "-0",
    "NaN",
    ".inf",
    "-.inf",
    "500.5",
    "2147483647",
    "18446744073709551616",
    "9223372036854775808",
    "0x7f",
    "0o17",
    "1_000",
    "136y",
    "1000000d",
    "0s",
    "-5s",
    "1ms",
    "100%",
    "101%",
    "-1%",
    "0.01",
    "1TiB",
    "1e12",
    "\u{0}",
    "\u{1b}[31m",
    "\u{feff}",
    "\u{202e}",
    "é",
    "𝄞",
    "${HOME}",
    "${X:-y}",
    "type: kill",
    "signal: STOP",
    "pidfile: /dev/zero",
    "pidfile: /proc/self/stat",
    "type: memory",
    "bytes: 1TiB",
    "cores: 4096",
    "rate: 1e12",
    "concurrency: 2147483647",
    "duration: 136y",
    "phases:",
    "inject:",
    "expect:",
    "verify:",
    "experiments: [ ./* ]",
];

/// One mutation of `input`, with `others` to splice from.
pub fn mutate(rng: &mut impl Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = rng.gen_range(1..=4);
    for _ in 0..rounds {
        let len = out.len();
        let at = if len == 0 { 0 } else { rng.gen_range(0..=len) };
        match rng.gen_range(0..7) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                out[i] ^= 1 << rng.gen_range(0..8);
            }
            1 | 2 => {
                let token = DICTIONARY.choose(rng).copied().unwrap_or("{");
                let token = if rng.gen_bool(0.05) {
                    // Now and then many at once: 1..4096 repetitions.
                    token.repeat(rng.gen_range(1..4096))
                } else {
                    token.to_string()
                };
                out.splice(at..at, token.into_bytes());
            }
            3 if len > 0 => {
                let end = (at + rng.gen_range(1..64)).min(len);
                out.drain(at.min(end)..end);
            }
            4 if len > 0 => {
                let start = rng.gen_range(0..len);
                let end = (start + rng.gen_range(1..256)).min(len);
                let copy = out[start..end].to_vec();
                out.splice(at..at, copy);
            }
            5 => {
                if let Some(other) = others.choose(rng).filter(|o| !o.is_empty()) {
                    let start = rng.gen_range(0..other.len());
                    let end = (start + rng.gen_range(1..512)).min(other.len());
                    out.splice(at..at, other[start..end].iter().copied());
                }
            }
            _ => {
                // Truncate: unterminated everything.
                if len > 0 {
                    out.truncate(rng.gen_range(0..len));
                }
            }
        }
    }
    out
}
