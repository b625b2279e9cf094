//! pybreaker (stub).
