//! The names of the embedded demo system that experiment files refer to:
//! its hops (what `proxy:` names in a fault) and the versions it serves.
//!
//! They live with the configuration, which checks them, and the demo
//! (`crate::demo`) builds itself with them, so the two cannot disagree and
//! configuration does not depend on the demo's code.

/// The name of the hop between v1 and payments; faults address it by this name.
pub const PAYMENTS_HOP: &str = "payments";

/// The name of the hop between the canary (v2) and payments: a fault here
/// hits the canary only.
pub const CANARY_HOP: &str = "payments-canary";

/// The name of the hop between v1 and the backup payments instance; it
/// exists only with `target.demo.failover`.
pub const BACKUP_HOP: &str = "payments-backup";

/// The versions the demo serves (`x-version`).
pub const DEMO_VERSIONS: [&str; 2] = ["v1", "v2"];
