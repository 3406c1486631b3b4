//! dhp-analytics: runs over a district's data — outbreak detection and its evaluation
//! (SPEC capability 5), and the indicator engine (capability 7).

pub mod indicators;
pub mod surveillance;
