//! The wire codec: the only module that touches bincode.
//!
//! Every message is written field by field with bincode 2's standard configuration
//! (little-endian, variable-length integers, zigzag for signed integers), exactly as
//! docs/PROTOCOL.md specifies, so the wire format is owned by the spec and the golden
//! vectors in `protocol/tests/vectors/`, not by bincode's derive internals.
//!
//! Decoding is total: any byte string yields a message or a [`DecodeError`], and the
//! error kinds are the ones the spec and the invalid golden vectors name. Every
//! length prefix is checked against its limit and against the bytes left in the
//! message before anything is allocated, so a forged prefix cannot make the decoder
//! reserve more memory than a genuine message of the same size would need.

mod client;
mod server;

pub use client::{decode_client, encode_client, encode_client_into, hello_version};
pub use server::{
    decode_server, encode_server, encode_server_into, encode_snapshot_body, encode_snapshot_header,
};

use bincode::config::{Configuration, LittleEndian, Varint};
use bincode::de::read::Reader;
use bincode::de::{Decoder, DecoderImpl};
use bincode::enc::EncoderImpl;
use bincode::enc::write::Writer;
use bincode::error::{DecodeError as BinDecodeError, EncodeError};
use bincode::{Decode, Encode};
use glam::IVec2;

use crate::messages::{
    ClientMsg, EntityDelta, EntityState, ErrorCode, ErrorMsg, Hello, Input, MAX_AUTH_TOKEN_LEN,
    MAX_CLIENT_MSG_LEN, MAX_ERROR_TEXT_LEN, MAX_INPUTS_PER_MSG, MAX_NAME_LEN, MAX_SERVER_MSG_LEN,
    ServerMsg, Snapshot, SnapshotBody, Welcome,
};
use crate::movement::MoveConfig;
use crate::types::{Checksum, FixedPos, InputSeq, MoveDir, PlayerId, ResumeToken, Tick};

/// Why a byte string is not a valid message (docs/PROTOCOL.md, "Decoding errors").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message is longer than the limit for its direction.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes end in the middle of a field, or a length prefix promises more
    /// entries than the bytes left can hold.
    #[error("message is truncated")]
    Truncated,
    /// A complete message is followed by more bytes.
    #[error("{extra} trailing bytes after the message")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// A message type tag this version does not know. A client must ignore such a
    /// server message (see [`DecodeError::is_unknown_message`]).
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// `"ClientMsg"` or `"ServerMsg"`.
        what: &'static str,
        /// The tag found.
        tag: u32,
    },
    /// A length or count is larger than its documented maximum.
    #[error("a length or count exceeds its limit")]
    LimitExceeded,
    /// A field has a value the spec forbids.
    #[error("invalid message: {0}")]
    Invalid(String),
}

impl DecodeError {
    /// Whether the message is well-formed so far but of a type this version does not
    /// know: clients skip such server messages, which later versions may add.
    pub fn is_unknown_message(&self) -> bool {
        matches!(self, DecodeError::UnknownTag { .. })
    }
}

impl From<BinDecodeError> for DecodeError {
    fn from(e: BinDecodeError) -> Self {
        match e {
            BinDecodeError::UnexpectedEnd { .. } => DecodeError::Truncated,
            BinDecodeError::InvalidBooleanValue(v) => {
                DecodeError::Invalid(format!("boolean byte {v} is not 0 or 1"))
            }
            // Varint markers wider than the field (e.g. 0xFD for a u32) or reserved.
            other => DecodeError::Invalid(other.to_string()),
        }
    }
}

/// No bincode limit: sizes are checked explicitly against the real bytes left.
type Config = Configuration<LittleEndian, Varint>;
const STANDARD: Config = bincode::config::standard();

/// Appends to a `Vec<u8>`; encoding into memory cannot fail.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl Writer for VecWriter<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Reads from a slice and remembers how much is left, for size checks and to detect
/// trailing bytes. `peek_read` lets bincode decode varints without a call per byte.
struct SliceReader<'a>(&'a [u8]);

impl Reader for SliceReader<'_> {
    #[inline]
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), BinDecodeError> {
        let Some((head, rest)) = self.0.split_at_checked(bytes.len()) else {
            return Err(BinDecodeError::UnexpectedEnd {
                additional: bytes.len() - self.0.len(),
            });
        };
        bytes.copy_from_slice(head);
        self.0 = rest;
        Ok(())
    }

    #[inline]
    fn peek_read(&mut self, n: usize) -> Option<&[u8]> {
        self.0.get(..n)
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.0 = self.0.get(n..).unwrap_or_default();
    }
}

type Enc<'a> = EncoderImpl<VecWriter<'a>, Config>;
type Dec<'a> = DecoderImpl<SliceReader<'a>, Config, ()>;

#[inline]
fn put(enc: &mut Enc<'_>, v: &impl Encode) {
    // VecWriter never fails and our values are plain integers, strings and arrays.
    if let Err(e) = v.encode(enc) {
        unreachable!("encoding into a Vec cannot fail: {e}");
    }
}

fn with_encoder(out: &mut Vec<u8>, f: impl FnOnce(&mut Enc<'_>)) {
    let mut enc = EncoderImpl::new(VecWriter(out), STANDARD);
    f(&mut enc);
}

fn put_option<T: Encode>(e: &mut Enc<'_>, v: Option<&T>) {
    put(e, &u8::from(v.is_some()));
    if let Some(v) = v {
        put(e, v);
    }
}

fn decode_all<T>(
    bytes: &[u8],
    max: usize,
    f: impl FnOnce(&mut Dec<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    let mut dec = DecoderImpl::new(SliceReader(bytes), STANDARD, ());
    let value = f(&mut dec)?;
    match remaining(&mut dec) {
        0 => Ok(value),
        extra => Err(DecodeError::TrailingBytes { extra }),
    }
}

fn remaining(d: &mut Dec<'_>) -> usize {
    d.reader().0.len()
}

#[inline]
fn get<T: Decode<()>>(d: &mut Dec<'_>) -> Result<T, DecodeError> {
    Ok(T::decode(d)?)
}

/// Reads a length prefix: at most `max`, and at least `min_item_bytes` per entry
/// must be left in the message (checked before the caller allocates).
fn get_len(d: &mut Dec<'_>, max: usize, min_item_bytes: usize) -> Result<usize, DecodeError> {
    let len: u64 = get(d)?;
    let len = usize::try_from(len).map_err(|_| DecodeError::LimitExceeded)?;
    if len > max {
        return Err(DecodeError::LimitExceeded);
    }
    if len.saturating_mul(min_item_bytes) > remaining(d) {
        return Err(DecodeError::Truncated);
    }
    Ok(len)
}

fn get_option_tag(d: &mut Dec<'_>) -> Result<bool, DecodeError> {
    match get::<u8>(d)? {
        0 => Ok(false),
        1 => Ok(true),
        tag => Err(DecodeError::Invalid(format!(
            "Option tag byte {tag} is not 0 or 1"
        ))),
    }
}

fn get_option<T>(
    d: &mut Dec<'_>,
    f: impl FnOnce(&mut Dec<'_>) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    match get_option_tag(d)? {
        false => Ok(None),
        true => f(d).map(Some),
    }
}

fn get_string(d: &mut Dec<'_>, max: usize) -> Result<String, DecodeError> {
    let len = get_len(d, max, 1)?;
    let mut buf = vec![0; len];
    d.reader().read(&mut buf)?;
    String::from_utf8(buf).map_err(|_| DecodeError::Invalid("string is not UTF-8".into()))
}
