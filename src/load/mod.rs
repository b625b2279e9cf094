//! Load generation: arrival schedules, the request mix, the HTTP client, and
//! the two load models.
//!
//! - [`schedule`] turns a rate shape into the intended send time of request *i*;
//! - [`mix`] picks a request from the weighted mix with the run's seeded RNG;
//! - [`client`] sends one request and classifies the result;
//! - [`conn`] is a worker's own keep-alive connection, driven in its task,
//!   and `h1` the minimal HTTP/1.1 client of plain `http://` targets;
//! - [`generator`] runs the open model (fixed arrival rate, latency from the
//!   intended time, as wrk2 does) or the closed model (N workers back to back)
//!   and hands every outcome to the metrics recorder;
//! - `open` is the open model's pull-based worker pool and its timekeeper.

pub mod client;
pub mod conn;
pub mod generator;
mod h1;
pub mod mix;
mod open;
pub mod schedule;

pub use client::{HttpClient, PreparedRequest};
pub use conn::Conn;
pub use generator::{run, LoadRun, LoadSummary};
pub use schedule::Schedule;
