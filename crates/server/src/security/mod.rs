//! Protection of the server (GB/T 22239-2019 level 3, the Personal Information
//! Protection Law): password hashing, login failure handling and bounded password
//! checks, the password life cycle, bearer tokens, sessions that end by themselves, and
//! the guards every browser request passes. Shared by every capability; the pages and
//! endpoints that use it are in `signin`, `accounts` and `emergency`.

pub mod auth;
pub mod login;
pub mod password;
pub mod refusals;
pub mod session;
pub mod token;
pub mod web;
