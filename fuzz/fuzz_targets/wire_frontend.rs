//! Bytes from a client → pgward's frontend framing and decoders.
//!
//! The input is read twice: as the first packet of a connection
//! (`read_startup`, then `decode_startup`), and as a stream of tagged
//! messages (`read_header`, then `read_body`, `skip_body` or `copy_body`
//! by tag, and the decoders pgward applies to those bodies). The reader is
//! an in-memory slice, so every future completes at once. Nothing may
//! panic, and what the framing returns must agree with the bytes.
#![no_main]

use futures_util::FutureExt;
use libfuzzer_sys::fuzz_target;
use pgward::wire::frontend::{
    StartupPacket, decode_parse, decode_query, decode_sasl_initial, decode_startup,
};
use pgward::wire::io::{copy_body, read_body, read_header, read_startup, skip_body};
use pgward::wire::{HEADER_LEN, MAX_STARTUP_LEN, backend, read_cstr};

/// A small cap, so that the fuzzer also reaches the too-large branch.
const LIMIT: usize = 4096;

fn startup(data: &[u8]) {
    let mut reader = data;
    let read = read_startup(&mut reader)
        .now_or_never()
        .expect("an in-memory read never waits");
    if let Ok(body) = read {
        let declared = i32::from_be_bytes(data[..4].try_into().expect("4 bytes"));
        assert_eq!(usize::try_from(declared).ok(), Some(body.len() + 4));
        assert!(body.len() + 4 <= MAX_STARTUP_LEN);
        assert_eq!(body, data[4..4 + body.len()]);
        check_startup(&body);
    }
    check_startup(data);
}

fn check_startup(body: &[u8]) {
    if let Ok(StartupPacket::Startup { params, .. }) = decode_startup(body) {
        for (name, value) in &params {
            assert!(!name.is_empty(), "an empty name ends the list");
            assert!(!name.contains('\0') && !value.contains('\0'));
        }
    }
}

fn messages(data: &[u8]) {
    let mut reader = data;
    // Each round consumes at least a header, so this ends.
    loop {
        let before = reader.len();
        let header = read_header(&mut reader, LIMIT)
            .now_or_never()
            .expect("an in-memory read never waits");
        let Ok(Some(header)) = header else { return };
        assert!(header.body_len <= LIMIT);
        assert_eq!(before - reader.len(), HEADER_LEN);
        assert_eq!(
            header.to_bytes()[..],
            data[data.len() - before..][..HEADER_LEN]
        );
        let available = reader.len();
        match header.tag {
            // Messages pgward forwards untouched.
            b'D' | b'd' | b'B' | b'E' => {
                let mut sink = Vec::new();
                let copied = copy_body(&mut reader, &mut sink, header.body_len)
                    .now_or_never()
                    .expect("an in-memory copy never waits");
                if copied.is_ok() {
                    assert_eq!(sink.len(), header.body_len);
                } else {
                    assert!(available < header.body_len);
                    return;
                }
            }
            b'H' | b'S' | b'X' | b'C' => {
                let skipped = skip_body(&mut reader, header.body_len)
                    .now_or_never()
                    .expect("an in-memory read never waits");
                if skipped.is_err() {
                    assert!(available < header.body_len);
                    return;
                }
                assert_eq!(available - reader.len(), header.body_len);
            }
            _ => {
                let body = read_body(&mut reader, header.body_len)
                    .now_or_never()
                    .expect("an in-memory read never waits");
                let Ok(body) = body else {
                    assert!(available < header.body_len);
                    return;
                };
                assert_eq!(body.len(), header.body_len);
                decode(&body);
            }
        }
    }
}

/// The decoders pgward applies to the bodies it reads whole; every body is
/// given to each decoder, whatever its tag.
fn decode(body: &[u8]) {
    if let Some(sql) = decode_query(body) {
        assert!(!sql.contains(&0));
        assert_eq!(sql.len() + 1, body.len());
    }
    if let Some(parse) = decode_parse(body) {
        assert!(!parse.name.contains(&0) && !parse.query.contains(&0));
        assert_eq!(
            parse.name.len() + parse.query.len() + 4 + parse.param_types.len() * 4,
            body.len()
        );
    }
    if let Some((mechanism, data)) = decode_sasl_initial(body) {
        assert!(!mechanism.contains('\0'));
        assert_eq!(data.len() + mechanism.len() + 5, body.len());
    }
    let _ = read_cstr(body);
    // The backend decoders pgward applies to upstream errors and notices
    // (every body, whatever its tag: 'E' is a frontend Execute here).
    if let Some(fields) = backend::decode_fields(body) {
        for (code, value) in fields {
            assert_ne!(code, 0);
            assert!(!value.contains(&0));
        }
    }
    if let Some((name, value)) = backend::decode_parameter_status(body) {
        assert!(!name.contains(&0) && !value.contains(&0));
    }
}

fuzz_target!(|data: &[u8]| {
    startup(data);
    messages(data);
});
