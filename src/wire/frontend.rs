//! Decoding the frontend messages pgward must look inside. Every decoder is
//! total: malformed input yields `None`, never a panic.

use super::{CANCEL_REQUEST, GSSENC_REQUEST, SSL_REQUEST, read_cstr};

/// The first packet of a connection, after its length word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    SslRequest,
    GssEncRequest,
    Cancel {
        process_id: i32,
        secret_key: i32,
    },
    Startup {
        major: u16,
        minor: u16,
        params: Vec<(String, String)>,
    },
}

/// Why a startup packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupError {
    Malformed(&'static str),
}

fn be_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// Decodes a startup packet body (the bytes after the length word).
pub fn decode_startup(body: &[u8]) -> Result<StartupPacket, StartupError> {
    let code = be_u32(body).ok_or(StartupError::Malformed("startup packet too short"))?;
    let rest = &body[4..];
    match code {
        SSL_REQUEST if rest.is_empty() => Ok(StartupPacket::SslRequest),
        GSSENC_REQUEST if rest.is_empty() => Ok(StartupPacket::GssEncRequest),
        CANCEL_REQUEST if rest.len() == 8 => Ok(StartupPacket::Cancel {
            process_id: i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]),
            secret_key: i32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]),
        }),
        SSL_REQUEST | GSSENC_REQUEST | CANCEL_REQUEST => Err(StartupError::Malformed(
            "request packet has the wrong length",
        )),
        _ => {
            let major = (code >> 16) as u16;
            let minor = (code & 0xffff) as u16;
            let params = decode_params(rest)?;
            Ok(StartupPacket::Startup {
                major,
                minor,
                params,
            })
        }
    }
}

/// Name/value pairs, each NUL-terminated, ended by an empty name.
fn decode_params(mut rest: &[u8]) -> Result<Vec<(String, String)>, StartupError> {
    let mut params = Vec::new();
    loop {
        let (name, after) =
            read_cstr(rest).ok_or(StartupError::Malformed("unterminated parameter name"))?;
        if name.is_empty() {
            if !after.is_empty() {
                return Err(StartupError::Malformed("data after the parameter list"));
            }
            return Ok(params);
        }
        let (value, after) =
            read_cstr(after).ok_or(StartupError::Malformed("unterminated parameter value"))?;
        let name = std::str::from_utf8(name)
            .map_err(|_| StartupError::Malformed("parameter name is not UTF-8"))?;
        let value = std::str::from_utf8(value)
            .map_err(|_| StartupError::Malformed("parameter value is not UTF-8"))?;
        params.push((name.to_string(), value.to_string()));
        rest = after;
    }
}

/// Body of a Query message: the SQL text.
pub fn decode_query(body: &[u8]) -> Option<&[u8]> {
    let (sql, rest) = read_cstr(body)?;
    rest.is_empty().then_some(sql)
}

/// Body of a Parse message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse<'a> {
    pub name: &'a [u8],
    pub query: &'a [u8],
    pub param_types: Vec<u32>,
}

pub fn decode_parse(body: &[u8]) -> Option<Parse<'_>> {
    let (name, rest) = read_cstr(body)?;
    let (query, rest) = read_cstr(rest)?;
    let count = i16::from_be_bytes(rest.get(..2)?.try_into().ok()?);
    let count = usize::try_from(count).ok()?;
    let types = rest.get(2..)?;
    if types.len() != count * 4 {
        return None;
    }
    let param_types = types
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some(Parse {
        name,
        query,
        param_types,
    })
}

/// Body of a SASLInitialResponse: mechanism name and initial client data.
pub fn decode_sasl_initial(body: &[u8]) -> Option<(&str, &[u8])> {
    let (mechanism, rest) = read_cstr(body)?;
    let mechanism = std::str::from_utf8(mechanism).ok()?;
    let len = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    let data = rest.get(4..)?;
    if len == -1 {
        return data.is_empty().then_some((mechanism, &[][..]));
    }
    (usize::try_from(len).ok()? == data.len()).then_some((mechanism, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup_body(version: u32, params: &[(&str, &str)]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        for (k, v) in params {
            b.extend_from_slice(k.as_bytes());
            b.push(0);
            b.extend_from_slice(v.as_bytes());
            b.push(0);
        }
        b.push(0);
        b
    }

    #[test]
    fn startup_with_params() {
        let body = startup_body(196_610, &[("user", "alice"), ("database", "demo")]);
        assert_eq!(
            decode_startup(&body),
            Ok(StartupPacket::Startup {
                major: 3,
                minor: 2,
                params: vec![
                    ("user".into(), "alice".into()),
                    ("database".into(), "demo".into())
                ],
            })
        );
    }

    #[test]
    fn malformed_startups_are_errors() {
        assert!(decode_startup(&[]).is_err());
        assert!(decode_startup(&[0, 3, 0]).is_err());
        // missing final terminator
        let mut body = startup_body(196_608, &[("user", "a")]);
        body.pop();
        assert!(decode_startup(&body).is_err());
        // value without terminator
        assert!(decode_startup(&[0, 3, 0, 0, b'u', 0, b'a']).is_err());
        // SSLRequest with trailing bytes
        let mut ssl = SSL_REQUEST.to_be_bytes().to_vec();
        ssl.push(1);
        assert!(decode_startup(&ssl).is_err());
    }

    #[test]
    fn cancel_request() {
        let mut b = CANCEL_REQUEST.to_be_bytes().to_vec();
        b.extend_from_slice(&7i32.to_be_bytes());
        b.extend_from_slice(&(-9i32).to_be_bytes());
        assert_eq!(
            decode_startup(&b),
            Ok(StartupPacket::Cancel {
                process_id: 7,
                secret_key: -9
            })
        );
    }

    #[test]
    fn parse_message() {
        let mut b = b"s1\0SELECT $1\0".to_vec();
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&23u32.to_be_bytes());
        let p = decode_parse(&b).unwrap();
        assert_eq!(p.name, b"s1");
        assert_eq!(p.query, b"SELECT $1");
        assert_eq!(p.param_types, vec![23]);
        // count says 2, only one type present
        let mut bad = b"\0SELECT 1\0".to_vec();
        bad.extend_from_slice(&2i16.to_be_bytes());
        bad.extend_from_slice(&23u32.to_be_bytes());
        assert!(decode_parse(&bad).is_none());
        assert!(decode_parse(b"\0SELECT 1\0\xff\xff").is_none());
    }

    #[test]
    fn query_must_be_one_cstring() {
        assert_eq!(decode_query(b"SELECT 1\0"), Some(&b"SELECT 1"[..]));
        assert_eq!(decode_query(b"SELECT 1"), None);
        assert_eq!(decode_query(b"SELECT 1\0x"), None);
    }

    #[test]
    fn sasl_initial_response() {
        let mut b = b"SCRAM-SHA-256\0".to_vec();
        b.extend_from_slice(&3i32.to_be_bytes());
        b.extend_from_slice(b"abc");
        assert_eq!(
            decode_sasl_initial(&b),
            Some(("SCRAM-SHA-256", &b"abc"[..]))
        );
        let mut short = b"SCRAM-SHA-256\0".to_vec();
        short.extend_from_slice(&9i32.to_be_bytes());
        short.extend_from_slice(b"abc");
        assert_eq!(decode_sasl_initial(&short), None);
    }
}
