//! The one integration-test binary: a `mod` per area, sharing `common`.

mod cli;
mod common;
mod demo;
mod faults;
mod load;
mod proxy;
mod proxy_api;
mod proxy_http;
