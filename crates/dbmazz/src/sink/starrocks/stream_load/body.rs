//! Load bodies: bytes in memory, or pieces produced while the request is being sent.
//!
//! A batch's JSON is as large as its rows; holding it whole for every load in flight doubled
//! dbmazz's memory. A [`BodySource`] instead encodes a piece at a time as the socket takes
//! it, and starts over for every send (redirect, retry): the bytes are a pure function of the
//! source. Without a known length the request goes out with `Transfer-Encoding: chunked`,
//! which Stream Load accepts (spec §1.3: no Content-Length → libevent's body limit); a body
//! that fails half-way is never terminated, so StarRocks cannot take it as complete.

use std::io::Write as _;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// Why a body could not be produced. The message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The server answered before `100 Continue`: the body was never sent.
    #[error("request body withheld: the server answered before 100 Continue")]
    Withheld,
    /// A row could not be encoded (a permanent error: the same rows fail every time).
    #[error("{0}")]
    Encode(String),
    #[error("gzip: {0}")]
    Gzip(String),
}

/// Produces a body, from the start, as many times as it is sent.
pub trait BodySource: Send + Sync + 'static {
    fn open(&self) -> Box<dyn BodyPieces>;
}

/// One pass over a body.
pub trait BodyPieces: Send {
    /// The next piece; `None` at the end.
    fn next_piece(&mut self) -> Option<Result<Bytes, BodyError>>;
}

/// The body of a load.
#[derive(Clone)]
pub enum LoadBody {
    Bytes(Bytes),
    Source(Arc<dyn BodySource>),
}

impl std::fmt::Debug for LoadBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadBody::Bytes(bytes) => write!(f, "LoadBody::Bytes({} bytes)", bytes.len()),
            LoadBody::Source(_) => f.write_str("LoadBody::Source"),
        }
    }
}

impl Default for LoadBody {
    fn default() -> Self {
        LoadBody::Bytes(Bytes::new())
    }
}

impl From<Bytes> for LoadBody {
    fn from(bytes: Bytes) -> Self {
        LoadBody::Bytes(bytes)
    }
}

impl From<Vec<u8>> for LoadBody {
    fn from(bytes: Vec<u8>) -> Self {
        LoadBody::Bytes(Bytes::from(bytes))
    }
}

impl From<&'static str> for LoadBody {
    fn from(text: &'static str) -> Self {
        LoadBody::Bytes(Bytes::from_static(text.as_bytes()))
    }
}

impl From<String> for LoadBody {
    fn from(text: String) -> Self {
        LoadBody::Bytes(Bytes::from(text))
    }
}

impl LoadBody {
    /// The whole body in one buffer (tests, and loaders that need it at once).
    pub fn to_bytes(&self) -> Result<Bytes, BodyError> {
        match self {
            LoadBody::Bytes(bytes) => Ok(bytes.clone()),
            LoadBody::Source(source) => {
                let mut pieces = source.open();
                let mut whole = BytesMut::new();
                while let Some(piece) = pieces.next_piece() {
                    whole.extend_from_slice(&piece?);
                }
                Ok(whole.freeze())
            }
        }
    }

    /// The length, when known before sending.
    pub fn known_len(&self) -> Option<u64> {
        match self {
            LoadBody::Bytes(bytes) => Some(bytes.len() as u64),
            LoadBody::Source(_) => None,
        }
    }

    /// A fresh pass, gzipped when asked.
    pub(crate) fn pieces(&self, gzip: bool) -> Result<Pieces, BodyError> {
        Ok(match (self, gzip) {
            (LoadBody::Bytes(bytes), false) => Pieces::One(Some(bytes.clone())),
            (LoadBody::Bytes(bytes), true) => Pieces::One(Some(gzip_all(bytes)?)),
            (LoadBody::Source(source), false) => Pieces::Many(source.open()),
            (LoadBody::Source(source), true) => Pieces::Many(Box::new(GzipPieces {
                inner: source.open(),
                encoder: Some(flate2::write::GzEncoder::new(
                    Vec::new(),
                    flate2::Compression::fast(),
                )),
            })),
        })
    }
}

/// One pass over a [`LoadBody`].
pub(crate) enum Pieces {
    One(Option<Bytes>),
    Many(Box<dyn BodyPieces>),
}

impl Pieces {
    pub(crate) fn next_piece(&mut self) -> Option<Result<Bytes, BodyError>> {
        match self {
            Pieces::One(bytes) => bytes.take().filter(|b| !b.is_empty()).map(Ok),
            Pieces::Many(pieces) => loop {
                match pieces.next_piece()? {
                    Ok(piece) if piece.is_empty() => continue,
                    other => return Some(other),
                }
            },
        }
    }
}

fn gzip_all(body: &[u8]) -> Result<Bytes, BodyError> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    encoder
        .write_all(body)
        .map_err(|e| BodyError::Gzip(e.to_string()))?;
    encoder
        .finish()
        .map(Bytes::from)
        .map_err(|e| BodyError::Gzip(e.to_string()))
}

/// Gzips another pass piece by piece.
struct GzipPieces {
    inner: Box<dyn BodyPieces>,
    encoder: Option<flate2::write::GzEncoder<Vec<u8>>>,
}

impl BodyPieces for GzipPieces {
    fn next_piece(&mut self) -> Option<Result<Bytes, BodyError>> {
        let gzip = |e: std::io::Error| BodyError::Gzip(e.to_string());
        let encoder = self.encoder.as_mut()?;
        match self.inner.next_piece() {
            Some(Ok(piece)) => Some(
                encoder
                    .write_all(&piece)
                    .map_err(gzip)
                    .map(|()| Bytes::from(std::mem::take(encoder.get_mut()))),
            ),
            Some(Err(error)) => {
                self.encoder = None;
                Some(Err(error))
            }
            None => {
                let encoder = self.encoder.take()?;
                Some(encoder.finish().map(Bytes::from).map_err(gzip))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    struct Counting(u8);
    struct CountingPieces(u8, u8);

    impl BodySource for Counting {
        fn open(&self) -> Box<dyn BodyPieces> {
            Box::new(CountingPieces(0, self.0))
        }
    }

    impl BodyPieces for CountingPieces {
        fn next_piece(&mut self) -> Option<Result<Bytes, BodyError>> {
            if self.0 == self.1 {
                return None;
            }
            self.0 += 1;
            if self.0 == 200 {
                return Some(Err(BodyError::Encode("row 200".into())));
            }
            Some(Ok(Bytes::from(vec![b'a' + self.0 % 26; 1000])))
        }
    }

    #[test]
    fn a_source_is_read_from_the_start_on_every_pass() {
        let body = LoadBody::Source(Arc::new(Counting(5)));
        let first = body.to_bytes().unwrap();
        assert_eq!(first.len(), 5000);
        assert_eq!(body.to_bytes().unwrap(), first);
        assert_eq!(body.known_len(), None);
    }

    #[test]
    fn gzipped_pieces_inflate_to_the_body() {
        let body = LoadBody::Source(Arc::new(Counting(50)));
        let mut pieces = body.pieces(true).unwrap();
        let mut compressed = Vec::new();
        while let Some(piece) = pieces.next_piece() {
            compressed.extend_from_slice(&piece.unwrap());
        }
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, body.to_bytes().unwrap());
    }

    #[test]
    fn an_encode_error_ends_the_pass() {
        let body = LoadBody::Source(Arc::new(Counting(250)));
        assert_eq!(body.to_bytes(), Err(BodyError::Encode("row 200".into())));
        let mut pieces = body.pieces(true).unwrap();
        let mut results = Vec::new();
        while let Some(piece) = pieces.next_piece() {
            results.push(piece.is_ok());
        }
        assert_eq!(results.last(), Some(&false));
        assert!(results.len() <= 200);
    }
}
