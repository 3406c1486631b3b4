//! Protection of the server (GB/T 22239-2019 level 3, the Personal Information
//! Protection Law): login failure handling and bounded password checks, sessions that
//! end by themselves, and the guards every browser request passes.

pub mod accounts;
pub mod emergency;
pub mod login;
pub mod password;
pub mod session;
pub mod web;
