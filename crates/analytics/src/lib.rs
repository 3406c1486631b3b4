//! dhp-analytics: runs over a district's data — outbreak detection and its evaluation
//! (SPEC capability 5).

pub mod surveillance;
