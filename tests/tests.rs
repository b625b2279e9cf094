//! The one integration-test binary: a `mod` per area, sharing `common`.

mod agent;
mod architecture;
mod authoring;
mod bounds;
mod cli;
mod common;
mod demo;
mod faults;
mod fuzz;
mod hostile;
mod load;
mod metrics_export;
mod probes;
mod proxy;
mod proxy_api;
mod proxy_http;
mod real;
mod reports_html;
mod reports_junit;
mod reports_merge;
mod resources;
mod safety;
mod stop;
mod stress;
mod telemetry;
mod verify;
