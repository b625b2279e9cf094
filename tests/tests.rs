//! The one integration-test binary: a `mod` per area, sharing `common`.

mod common;
mod demo;
