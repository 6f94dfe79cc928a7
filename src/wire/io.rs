//! Async framing over buffered streams: read a header, read a body pgward
//! must decode, or stream a body it forwards untouched, chunk by chunk, so
//! that memory stays bounded whatever the message size.
//!
//! None of these functions is cancel-safe: dropping one mid-message leaves
//! the stream inside a frame. Callers never race them against other futures.

use bytes::BytesMut;
use thiserror::Error;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};

use super::{HEADER_LEN, MAX_STARTUP_LEN};

#[derive(Debug, Error)]
pub enum WireError {
    #[error("connection closed")]
    Eof,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid message length {0}")]
    BadLength(i64),
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
}

fn eof_as(e: std::io::Error) -> WireError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        WireError::Eof
    } else {
        WireError::Io(e)
    }
}

/// Reads a startup-phase packet (length word, then body); returns the body.
pub async fn read_startup<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, WireError> {
    let len = r.read_i32().await.map_err(eof_as)?;
    let len_usize = usize::try_from(len).map_err(|_| WireError::BadLength(len.into()))?;
    if len_usize < 8 {
        return Err(WireError::BadLength(len.into()));
    }
    if len_usize > MAX_STARTUP_LEN {
        return Err(WireError::TooLarge {
            len: len_usize,
            limit: MAX_STARTUP_LEN,
        });
    }
    let mut body = vec![0; len_usize - 4];
    r.read_exact(&mut body).await.map_err(eof_as)?;
    Ok(body)
}

/// A message header: its tag and the length of the body that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub tag: u8,
    pub body_len: usize,
}

impl Header {
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let len = u32::try_from(self.body_len + 4)
            .unwrap_or(u32::MAX)
            .to_be_bytes();
        [self.tag, len[0], len[1], len[2], len[3]]
    }
}

/// Reads the next header. `Ok(None)` is a clean end of stream between
/// messages; `limit` caps the body length.
pub async fn read_header<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> Result<Option<Header>, WireError> {
    let mut head = [0u8; HEADER_LEN];
    let n = r.read(&mut head[..1]).await?;
    if n == 0 {
        return Ok(None);
    }
    r.read_exact(&mut head[1..]).await.map_err(eof_as)?;
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    let body_len = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_sub(4))
        .ok_or(WireError::BadLength(len.into()))?;
    if body_len > limit {
        return Err(WireError::TooLarge {
            len: body_len,
            limit,
        });
    }
    Ok(Some(Header {
        tag: head[0],
        body_len,
    }))
}

/// The message at the start of `buf` when it is there whole: its tag and
/// its length with the header. `None` when it is cut off or its length word
/// is invalid ([`read_header`] then reads it, and refuses a bad length).
pub fn whole_message(buf: &[u8]) -> Option<(u8, usize)> {
    let head = buf.get(..HEADER_LEN)?;
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    let len = usize::try_from(len).ok().filter(|&l| l >= 4)?;
    let total = len.checked_add(1)?;
    (buf.len() >= total).then_some((head[0], total))
}

/// Reads a body pgward must decode.
pub async fn read_body<R: AsyncRead + Unpin>(r: &mut R, len: usize) -> Result<BytesMut, WireError> {
    let mut body = BytesMut::zeroed(len);
    r.read_exact(&mut body).await.map_err(eof_as)?;
    Ok(body)
}

/// [`read_body`] into `body` (emptied first), so that a loop can keep one
/// buffer.
pub async fn read_body_into<R: AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
    body: &mut BytesMut,
) -> Result<(), WireError> {
    body.clear();
    body.resize(len, 0);
    r.read_exact(body).await.map_err(eof_as)?;
    Ok(())
}

/// Copies `len` body bytes from `r` to `w` through `r`'s own buffer: the
/// bytes are never decoded and never held whole.
pub async fn copy_body<R, W>(r: &mut R, w: &mut W, mut len: usize) -> Result<(), WireError>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    while len > 0 {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Err(WireError::Eof);
        }
        let n = buf.len().min(len);
        w.write_all(&buf[..n]).await?;
        r.consume(n);
        len -= n;
    }
    Ok(())
}

/// Discards `len` body bytes.
pub async fn skip_body<R: AsyncBufRead + Unpin>(
    r: &mut R,
    mut len: usize,
) -> Result<(), WireError> {
    while len > 0 {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Err(WireError::Eof);
        }
        let n = buf.len().min(len);
        r.consume(n);
        len -= n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[test]
    fn whole_messages_only() {
        let mut data = vec![b'Z', 0, 0, 0, 5, b'I', b'C'];
        assert_eq!(whole_message(&data), Some((b'Z', 6)));
        assert_eq!(whole_message(&data[6..]), None);
        assert_eq!(whole_message(&data[..5]), None);
        data.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(whole_message(&data[6..]), Some((b'C', 5)));
        // A length word under 4 (or negative) is left to read_header.
        assert_eq!(whole_message(&[b'S', 0, 0, 0, 3]), None);
        assert_eq!(whole_message(&[b'S', 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(whole_message(&[b'S', 0x7f, 0xff, 0xff, 0xff]), None);
    }

    #[tokio::test]
    async fn header_and_streamed_body() {
        let mut data = vec![b'D'];
        data.extend_from_slice(&(4u32 + 10).to_be_bytes());
        data.extend_from_slice(b"0123456789");
        let mut r = BufReader::with_capacity(3, &data[..]);
        let h = read_header(&mut r, 100).await.unwrap().unwrap();
        assert_eq!(
            h,
            Header {
                tag: b'D',
                body_len: 10
            }
        );
        let mut out = Vec::new();
        copy_body(&mut r, &mut out, h.body_len).await.unwrap();
        assert_eq!(out, b"0123456789");
        assert!(read_header(&mut r, 100).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn bad_lengths() {
        let data = [b'Q', 0, 0, 0, 3];
        assert!(matches!(
            read_header(&mut &data[..], 100).await,
            Err(WireError::BadLength(3))
        ));
        let data = [b'Q', 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_header(&mut &data[..], 100).await,
            Err(WireError::BadLength(-1))
        ));
        let data = [b'Q', 0, 0, 1, 0];
        assert!(matches!(
            read_header(&mut &data[..], 100).await,
            Err(WireError::TooLarge { len: 252, .. })
        ));
        let data = [b'Q', 0, 0];
        assert!(matches!(
            read_header(&mut &data[..], 100).await,
            Err(WireError::Eof)
        ));
    }

    #[tokio::test]
    async fn startup_limits() {
        let data = 100_000u32.to_be_bytes();
        assert!(matches!(
            read_startup(&mut &data[..]).await,
            Err(WireError::TooLarge { .. })
        ));
        let data = 4u32.to_be_bytes();
        assert!(matches!(
            read_startup(&mut &data[..]).await,
            Err(WireError::BadLength(4))
        ));
    }
}
