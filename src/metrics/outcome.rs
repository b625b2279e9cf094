//! The event a request produces, and the error classes it can fall into.

use serde::Serialize;
use std::time::Instant;

/// Why a request counted as an error. Each class is counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The TCP (or TLS) connection could not be established.
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// The peer reset or closed the connection mid-exchange.
    Reset,
    /// Any other transport or protocol failure.
    Io,
    /// A 4xx status the request did not list in `expect_status`.
    Http4xx,
    /// A 5xx status the request did not list in `expect_status`.
    Http5xx,
    /// Any other status outside `expect_status` (e.g. 200 when 201 was expected).
    StatusMismatch,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 7] = [
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::Reset,
        ErrorClass::Io,
        ErrorClass::Http4xx,
        ErrorClass::Http5xx,
        ErrorClass::StatusMismatch,
    ];

    /// The stable name used in reports (`http_5xx`, ...).
    pub fn key(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Reset => "reset",
            ErrorClass::Io => "io",
            ErrorClass::Http4xx => "http_4xx",
            ErrorClass::Http5xx => "http_5xx",
            ErrorClass::StatusMismatch => "status_mismatch",
        }
    }
}

/// One finished request, as the worker saw it. Small and `Copy`: sending it
/// is the only thing the hot path does besides the request itself.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// When the request was scheduled to start. Open model: the arrival
    /// schedule's time; closed model: the same as `started`.
    pub intended: Instant,
    /// When the request was actually handed to the connection.
    pub started: Instant,
    /// When the full response (or the error) arrived.
    pub ended: Instant,
    /// HTTP status, 0 when there was no response.
    pub status: u16,
    pub error: Option<ErrorClass>,
    /// The version that served the response, when the run reads one
    /// (canary and traffic-shift verifiers).
    pub version: Option<VersionTag>,
    /// The request's position in the mix (saturating), for the live
    /// metrics' `request` label.
    pub request: u16,
}

impl Outcome {
    /// Response time: from the intended start, so stalls are not hidden.
    pub fn response_time(&self) -> std::time::Duration {
        self.ended.saturating_duration_since(self.intended)
    }

    /// Service time: from the actual send.
    pub fn service_time(&self) -> std::time::Duration {
        self.ended.saturating_duration_since(self.started)
    }
}

/// What the load generator tells the recorder.
#[derive(Debug, Clone, Copy)]
pub enum Event {
    Done(Outcome),
    /// `count` scheduled requests, the first due at `intended`, that were
    /// never sent before the load stopped (the target or `max_in_flight`
    /// held the generator back). Counted in bulk: a generator far behind a
    /// huge rate must not send one event per request it never sent.
    Unsent {
        intended: Instant,
        count: u64,
    },
}

/// A short version label (`v2`, `green`) stored inline, so an [`Outcome`]
/// stays `Copy` and sending it allocates nothing. Longer labels are cut at
/// [`VersionTag::MAX`] bytes (on a character boundary).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionTag {
    len: u8,
    bytes: [u8; VersionTag::MAX],
}

impl VersionTag {
    pub const MAX: usize = 23;

    /// The label, trimmed; `None` when empty.
    pub fn new(text: &str) -> Option<VersionTag> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let mut end = text.len().min(Self::MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; Self::MAX];
        bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        Some(VersionTag {
            len: end as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Built from a `&str` cut on a char boundary, so always UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }
}

impl std::fmt::Debug for VersionTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::fmt::Display for VersionTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tags_are_trimmed_and_cut_on_char_boundaries() {
        assert_eq!(
            VersionTag::new(" v2 ").map(|v| v.to_string()),
            Some("v2".into())
        );
        assert_eq!(VersionTag::new("  "), None);
        let long = "é".repeat(20); // 40 bytes
        let tag = VersionTag::new(&long).expect("non-empty");
        assert_eq!(tag.as_str(), "é".repeat(11)); // 22 bytes fit in 23
    }
}
