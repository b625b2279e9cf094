//! `faultline proxy` serves `/metrics` on its admin API.
