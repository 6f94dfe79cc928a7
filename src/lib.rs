//! pgward: a PostgreSQL wire-protocol proxy that authenticates sessions and
//! forwards only SQL it printed from a secured syntax tree.
//!
//! A request's path: `session` (listener, startup, TLS, auth) → `statement`
//! (parse, secure, print) → `upstream` (connect, forward) → back to the client.

pub mod auth;
pub mod catalog;
pub mod check;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod error;
pub mod explain;
pub mod globals;
pub mod install;
pub mod logging;
pub mod net;
pub mod policy;
pub mod rewrite;
pub mod server;
pub mod session;
pub mod settings;
pub mod statement;
pub mod upstream;
pub mod wire;
pub mod workers;
