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
    /// A scheduled request that was never sent before the load stopped
    /// (the target or `max_in_flight` held the generator back).
    Unsent {
        intended: Instant,
    },
}
