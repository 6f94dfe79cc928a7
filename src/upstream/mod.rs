//! The upstream side: connecting with the service identity and the TLS
//! settings for it. Forwarding lives in `session::forward`.

pub mod connect;
pub mod control;
pub mod pool;
pub mod tls;

pub use connect::{UpstreamConn, UpstreamError, connect};
