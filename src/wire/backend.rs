//! Backend messages pgward writes itself (authentication, errors, status) and
//! the few upstream messages it reads (ErrorResponse, ParameterStatus).

use bytes::{BufMut, BytesMut};

use super::read_cstr;
use crate::error::PgError;

/// Appends one message: tag, length (covering itself and the body), body.
pub fn put_message(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let len_at = out.len();
    out.put_i32(0);
    body(out);
    let len = i32::try_from(out.len() - len_at).unwrap_or(i32::MAX);
    out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_cstr(out: &mut BytesMut, s: &[u8]) {
    out.put_slice(s);
    out.put_u8(0);
}

pub fn authentication_ok(out: &mut BytesMut) {
    put_message(out, b'R', |b| b.put_i32(0));
}

pub fn authentication_sasl(out: &mut BytesMut, mechanisms: &[&str]) {
    put_message(out, b'R', |b| {
        b.put_i32(10);
        for m in mechanisms {
            put_cstr(b, m.as_bytes());
        }
        b.put_u8(0);
    });
}

pub fn authentication_sasl_continue(out: &mut BytesMut, data: &[u8]) {
    put_message(out, b'R', |b| {
        b.put_i32(11);
        b.put_slice(data);
    });
}

pub fn authentication_sasl_final(out: &mut BytesMut, data: &[u8]) {
    put_message(out, b'R', |b| {
        b.put_i32(12);
        b.put_slice(data);
    });
}

pub fn parameter_status(out: &mut BytesMut, name: &str, value: &str) {
    put_message(out, b'S', |b| {
        put_cstr(b, name.as_bytes());
        put_cstr(b, value.as_bytes());
    });
}

pub fn backend_key_data(out: &mut BytesMut, process_id: i32, secret_key: i32) {
    put_message(out, b'K', |b| {
        b.put_i32(process_id);
        b.put_i32(secret_key);
    });
}

pub fn ready_for_query(out: &mut BytesMut, status: u8) {
    put_message(out, b'Z', |b| b.put_u8(status));
}

/// NegotiateProtocolVersion: the newest minor version pgward speaks and the
/// protocol options (`_pq_.*`) it did not recognise.
pub fn negotiate_protocol_version(out: &mut BytesMut, minor: u16, unrecognised: &[String]) {
    put_message(out, b'v', |b| {
        b.put_i32(i32::from(minor));
        b.put_i32(i32::try_from(unrecognised.len()).unwrap_or(i32::MAX));
        for o in unrecognised {
            put_cstr(b, o.as_bytes());
        }
    });
}

pub fn error_response(out: &mut BytesMut, err: &PgError) {
    put_message(out, b'E', |b| {
        let sev = err.severity.as_str().as_bytes();
        b.put_u8(b'S');
        put_cstr(b, sev);
        b.put_u8(b'V');
        put_cstr(b, sev);
        b.put_u8(b'C');
        put_cstr(b, err.code.as_bytes());
        b.put_u8(b'M');
        put_cstr(b, err.message.as_bytes());
        if let Some(d) = &err.detail {
            b.put_u8(b'D');
            put_cstr(b, d.as_bytes());
        }
        if let Some(h) = &err.hint {
            b.put_u8(b'H');
            put_cstr(b, h.as_bytes());
        }
        b.put_u8(0);
    });
}

/// The fields of an ErrorResponse or NoticeResponse body, by field type.
pub fn decode_fields(body: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut fields = Vec::new();
    let mut rest = body;
    loop {
        let (&kind, after) = rest.split_first()?;
        if kind == 0 {
            return after.is_empty().then_some(fields);
        }
        let (value, after) = read_cstr(after)?;
        fields.push((kind, value));
        rest = after;
    }
}

/// Body of a ParameterStatus message.
pub fn decode_parameter_status(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let (name, rest) = read_cstr(body)?;
    let (value, rest) = read_cstr(rest)?;
    rest.is_empty().then_some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;

    #[test]
    fn error_response_round_trips() {
        let mut out = BytesMut::new();
        let e = PgError::error(
            code::INSUFFICIENT_PRIVILEGE,
            "permission denied for table t",
        )
        .with_hint("ask");
        error_response(&mut out, &e);
        assert_eq!(out[0], b'E');
        let len = i32::from_be_bytes([out[1], out[2], out[3], out[4]]) as usize;
        assert_eq!(len + 1, out.len());
        let fields = decode_fields(&out[5..]).unwrap();
        assert!(fields.contains(&(b'C', &b"42501"[..])));
        assert!(fields.contains(&(b'M', &b"permission denied for table t"[..])));
        assert!(fields.contains(&(b'H', &b"ask"[..])));
    }

    #[test]
    fn fields_must_be_terminated() {
        assert!(decode_fields(b"Cabc").is_none());
        assert!(decode_fields(b"Cabc\0").is_none());
        assert!(decode_fields(b"Cabc\0\0").is_some());
    }

    #[test]
    fn parameter_status() {
        assert_eq!(
            decode_parameter_status(b"is_superuser\0on\0"),
            Some((&b"is_superuser"[..], &b"on"[..]))
        );
        assert_eq!(decode_parameter_status(b"x\0"), None);
    }
}
