//! Infectious-disease surveillance and early warning (传染病监测预警), SPEC capability 5:
//! detection algorithms (domain-rules §6).

pub mod detect;
mod glm;

pub use detect::{Algorithm, Cadence, DetectError, Score, ALGORITHMS};
