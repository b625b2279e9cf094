//! The one integration-test binary: a `mod` per area, sharing `common`.

mod cli;
mod common;
mod demo;
mod load;
