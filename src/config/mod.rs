//! The YAML model: parsing, validation and the validated types.
pub mod model;
