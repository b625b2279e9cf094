//! HAProxy (stub).
