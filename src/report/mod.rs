//! Reports: renderers of the run journal ([`crate::journal`]).
//!
//! Each renderer reads the journal and nothing else, so what the console
//! shows and what the JSON file says can never disagree.

pub mod color;
pub mod console;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod notify;
pub mod output;
pub mod progress;

pub use progress::ConsoleProgress;
