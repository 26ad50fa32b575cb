//! The wire codec: the only module that touches bincode.
//!
//! Every message is written field by field with bincode 2's standard configuration
//! (little-endian, variable-length integers, zigzag for signed integers), exactly as
//! docs/PROTOCOL.md specifies, so the wire format is owned by the spec and the golden
//! vectors in `protocol/tests/vectors/`, not by bincode's derive internals. The one
//! exception is the snapshot body, which a server may encode once per client per
//! tick: [`encode_snapshot_body`] writes it by hand (`body.rs`), checked byte for
//! byte against the bincode writer [`encode_snapshot_body_bincode`].
//!
//! Decoding is total: any byte string yields a message or a [`DecodeError`], and the
//! error kinds are the ones the spec and the invalid golden vectors name. Every
//! length prefix is checked against its limit and against the bytes left in the
//! message before anything is allocated, so a forged prefix cannot make the decoder
//! reserve more memory than a genuine message of the same size would need.

mod body;
mod client;
mod server;

pub use body::encode_snapshot_body;
pub use client::{decode_client, encode_client, encode_client_into, hello_version};
pub use server::{
    decode_server, encode_server, encode_server_into, encode_snapshot_body_bincode,
    encode_snapshot_header, snapshot_head,
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
    ServerMsg, SessionLimits, Snapshot, SnapshotBody, Welcome,
};
use crate::movement::MoveConfig;
use crate::types::{Checksum, FixedPos, InputSeq, MoveDir, PlayerId, ResumeToken, Tick};

/// Why a byte string is not a valid message (docs/PROTOCOL.md, "Decoding errors").
///
/// The variants are the spec's error kinds ([`DecodeError::kind`]); each carries
/// the field it was found in (`Message.field`, as the spec names them), so its
/// `Display` is a short sentence naming the field and the rule, fit for an
/// `Error` message to a client:
///
/// ```
/// use ticksync_protocol::codec;
/// let e = codec::decode_client(&[0x01, 0x00, 0xfd]).unwrap_err();
/// assert_eq!(e.kind(), "Invalid");
/// assert_eq!(
///     e.to_string(),
///     "Input.first_seq: a varint starting with 0xFD (8 bytes follow) does not fit a u32 field"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message is longer than the limit for its direction.
    #[error("a {direction} message is at most {max} bytes, got {len}")]
    TooLarge {
        /// `"client"` or `"server"`.
        direction: &'static str,
        /// The message length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes end in the middle of a field, or a length prefix promises more
    /// entries than the bytes left can hold.
    #[error("the message ends inside {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A complete message is followed by more bytes.
    #[error(
        "{extra} {} the end of a complete {message} message",
        if *.extra == 1 { "byte follows" } else { "bytes follow" }
    )]
    TrailingBytes {
        /// The message's name.
        message: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// A message type tag this version does not know. A client must ignore such a
    /// server message (see [`DecodeError::is_unknown_message`]).
    #[error("{tag} is not the tag of a {direction} message in this protocol version")]
    UnknownTag {
        /// `"client"` or `"server"`.
        direction: &'static str,
        /// The tag found.
        tag: u32,
    },
    /// A length or count is larger than its documented maximum.
    #[error("{field} holds at most {max} {unit}, got {len}")]
    LimitExceeded {
        /// The list or string.
        field: &'static str,
        /// Its length prefix.
        len: u64,
        /// The maximum.
        max: usize,
        /// `"bytes"` or `"entries"`.
        unit: &'static str,
    },
    /// A field has a value the spec forbids.
    #[error("{field}: {rule}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The rule it breaks, as a sentence.
        rule: String,
    },
}

impl DecodeError {
    /// Whether the message is well-formed so far but of a type this version does not
    /// know: clients skip such server messages, which later versions may add.
    pub fn is_unknown_message(&self) -> bool {
        matches!(self, DecodeError::UnknownTag { .. })
    }

    /// The spec's name for this kind of error (`"Truncated"`, `"Invalid"`, …), as
    /// the `error` field of `invalid_messages.json` gives it.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "TooLarge",
            DecodeError::Truncated { .. } => "Truncated",
            DecodeError::TrailingBytes { .. } => "TrailingBytes",
            DecodeError::UnknownTag { .. } => "UnknownTag",
            DecodeError::LimitExceeded { .. } => "LimitExceeded",
            DecodeError::Invalid { .. } => "Invalid",
        }
    }

    /// An `Invalid` error in `field`.
    pub(crate) fn invalid(field: &'static str, rule: impl Into<String>) -> DecodeError {
        DecodeError::Invalid {
            field,
            rule: rule.into(),
        }
    }

    /// Translates bincode's error for a read of `field`.
    fn from_bincode(e: BinDecodeError, field: &'static str) -> DecodeError {
        match e {
            BinDecodeError::UnexpectedEnd { .. } => DecodeError::Truncated { field },
            BinDecodeError::InvalidBooleanValue(v) => {
                DecodeError::invalid(field, format!("a bool is 0 or 1, got {v}"))
            }
            BinDecodeError::InvalidIntegerType { expected, found } => {
                let field_type = format!("{expected:?}").to_lowercase();
                let rule = match varint_marker(found) {
                    Some((marker, width)) => format!(
                        "a varint starting with {marker:#04X} ({width} bytes follow) does not fit a {field_type} field"
                    ),
                    None => "a varint cannot start with 0xFE or 0xFF".to_string(),
                };
                DecodeError::invalid(field, rule)
            }
            other => DecodeError::invalid(field, other.to_string()),
        }
    }
}

/// The varint marker byte that announces an integer type, and the bytes after it.
fn varint_marker(t: bincode::error::IntegerType) -> Option<(u8, u8)> {
    use bincode::error::IntegerType as T;
    match t {
        T::U16 | T::I16 => Some((0xfb, 2)),
        T::U32 | T::I32 => Some((0xfc, 4)),
        T::U64 | T::I64 | T::Usize | T::Isize => Some((0xfd, 8)),
        _ => None,
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

/// Decodes exactly one message of at most `max` bytes; `name` names a decoded
/// message for the trailing-bytes error.
fn decode_all<T>(
    bytes: &[u8],
    (direction, max): (&'static str, usize),
    f: impl FnOnce(&mut Dec<'_>) -> Result<T, DecodeError>,
    name: impl FnOnce(&T) -> &'static str,
) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            direction,
            len: bytes.len(),
            max,
        });
    }
    let mut dec = DecoderImpl::new(SliceReader(bytes), STANDARD, ());
    let value = f(&mut dec)?;
    match remaining(&mut dec) {
        0 => Ok(value),
        extra => Err(DecodeError::TrailingBytes {
            message: name(&value),
            extra,
        }),
    }
}

fn remaining(d: &mut Dec<'_>) -> usize {
    d.reader().0.len()
}

/// Reads one value of `field`.
#[inline]
fn get<T: Decode<()>>(d: &mut Dec<'_>, field: &'static str) -> Result<T, DecodeError> {
    T::decode(d).map_err(|e| DecodeError::from_bincode(e, field))
}

/// Reads the length prefix of `field`: at most `max`, and at least
/// `min_item_bytes` per entry must be left in the message (checked before the
/// caller allocates). `unit` names what is counted.
fn get_len(
    d: &mut Dec<'_>,
    field: &'static str,
    (max, unit): (usize, &'static str),
    min_item_bytes: usize,
) -> Result<usize, DecodeError> {
    let len: u64 = get(d, field)?;
    let too_long = DecodeError::LimitExceeded {
        field,
        len,
        max,
        unit,
    };
    let len = usize::try_from(len).map_err(|_| too_long.clone())?;
    if len > max {
        return Err(too_long);
    }
    if len.saturating_mul(min_item_bytes) > remaining(d) {
        return Err(DecodeError::Truncated { field });
    }
    Ok(len)
}

fn get_option_tag(d: &mut Dec<'_>, field: &'static str) -> Result<bool, DecodeError> {
    match get::<u8>(d, field)? {
        0 => Ok(false),
        1 => Ok(true),
        tag => Err(DecodeError::invalid(
            field,
            format!("an Option starts with 0 (absent) or 1 (present), got {tag}"),
        )),
    }
}

fn get_option<T>(
    d: &mut Dec<'_>,
    field: &'static str,
    f: impl FnOnce(&mut Dec<'_>) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    match get_option_tag(d, field)? {
        false => Ok(None),
        true => f(d).map(Some),
    }
}

fn get_string(d: &mut Dec<'_>, field: &'static str, max: usize) -> Result<String, DecodeError> {
    let len = get_len(d, field, (max, "bytes"), 1)?;
    let mut buf = vec![0; len];
    d.reader()
        .read(&mut buf)
        .map_err(|e| DecodeError::from_bincode(e, field))?;
    String::from_utf8(buf).map_err(|_| DecodeError::invalid(field, "the text is not valid UTF-8"))
}
