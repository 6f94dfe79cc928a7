//! I/O-free framing of the PostgreSQL protocol (v3) and the few messages
//! pgward must look inside. Everything else is framed as tag + length and
//! forwarded as bytes; nothing here touches a socket except `io`, which is a
//! thin async layer over buffered streams.
//!
//! Protocol reference: <https://www.postgresql.org/docs/15/protocol-message-formats.html>

pub mod backend;
pub mod frontend;
pub mod io;

/// Length of a message header: one tag byte and a 4-byte length.
pub const HEADER_LEN: usize = 5;

/// Protocol version 3.0 as sent in a StartupMessage.
pub const PROTOCOL_3_0: u32 = 196_608;
/// Magic codes sent in place of a protocol version.
pub const SSL_REQUEST: u32 = 80_877_103;
pub const GSSENC_REQUEST: u32 = 80_877_104;
pub const CANCEL_REQUEST: u32 = 80_877_102;

/// PostgreSQL refuses startup packets larger than this (MAX_STARTUP_PACKET_LENGTH).
pub const MAX_STARTUP_LEN: usize = 10_000;
/// Largest SASL message accepted during authentication (PG_MAX_AUTH_TOKEN_LENGTH).
pub const MAX_AUTH_LEN: usize = 65_535;
/// Messages pgward streams without buffering are still capped at
/// PostgreSQL's own limit (MaxAllocSize).
pub const MAX_STREAMED_LEN: usize = 0x3fff_ffff;

/// A NUL-terminated string read from a message body.
pub fn read_cstr(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = buf.iter().position(|&b| b == 0)?;
    Some((&buf[..end], &buf[end + 1..]))
}
