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

// ---- client messages -------------------------------------------------------------

const CLIENT_HELLO: u32 = 0;
const CLIENT_INPUT: u32 = 1;
const CLIENT_PING: u32 = 2;
const CLIENT_RESYNC: u32 = 3;

/// Encodes a client message, appending to `out`.
///
/// The caller keeps the message within the documented limits (name, auth token,
/// 1..=[`MAX_INPUTS_PER_MSG`] inputs); a message outside them encodes, but the
/// server rejects it.
pub fn encode_client_into(msg: &ClientMsg, out: &mut Vec<u8>) {
    with_encoder(out, |e| match msg {
        ClientMsg::Hello(h) => {
            put(e, &CLIENT_HELLO);
            put(e, &h.version);
            put_option(e, h.name.as_ref());
            put_option(e, h.auth_token.as_ref());
            put_option(e, h.resume_token.map(|t| t.0).as_ref());
        }
        ClientMsg::Input(i) => {
            put(e, &CLIENT_INPUT);
            put_option(e, i.ack_tick.map(|t| t.0).as_ref());
            put(e, &i.first_seq.0);
            put(e, &(i.dirs.len() as u64));
            for d in &i.dirs {
                put(e, &d.x);
                put(e, &d.y);
            }
        }
        ClientMsg::Ping { client_time_us } => {
            put(e, &CLIENT_PING);
            put(e, client_time_us);
        }
        ClientMsg::Resync => put(e, &CLIENT_RESYNC),
    });
}

/// Encodes a client message into a new buffer.
///
/// ```
/// use ticksync_protocol::{codec, ClientMsg};
/// let bytes = codec::encode_client(&ClientMsg::Ping { client_time_us: 1000 });
/// assert_eq!(bytes, [0x02, 0xfb, 0xe8, 0x03]);
/// assert_eq!(codec::decode_client(&bytes), Ok(ClientMsg::Ping { client_time_us: 1000 }));
/// ```
pub fn encode_client(msg: &ClientMsg) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    encode_client_into(msg, &mut out);
    out
}

/// Decodes one client message; the whole slice must be exactly one message of at
/// most [`MAX_CLIENT_MSG_LEN`] bytes.
pub fn decode_client(bytes: &[u8]) -> Result<ClientMsg, DecodeError> {
    decode_all(bytes, MAX_CLIENT_MSG_LEN, |d| {
        let tag: u32 = get(d)?;
        Ok(match tag {
            CLIENT_HELLO => ClientMsg::Hello(Hello {
                version: get(d)?,
                name: get_option(d, |d| get_string(d, MAX_NAME_LEN))?,
                auth_token: get_option(d, |d| get_string(d, MAX_AUTH_TOKEN_LEN))?,
                resume_token: get_option(d, |d| get(d).map(ResumeToken))?,
            }),
            CLIENT_INPUT => {
                let ack_tick = get_option(d, |d| get(d).map(Tick))?;
                let first_seq = InputSeq(get(d)?);
                let n = get_len(d, MAX_INPUTS_PER_MSG, 2)?;
                if n == 0 {
                    return Err(DecodeError::Invalid("Input carries no inputs".into()));
                }
                let mut dirs = Vec::with_capacity(n);
                for _ in 0..n {
                    dirs.push(MoveDir::new(get(d)?, get(d)?));
                }
                ClientMsg::Input(Input {
                    ack_tick,
                    first_seq,
                    dirs,
                })
            }
            CLIENT_PING => ClientMsg::Ping {
                client_time_us: get(d)?,
            },
            CLIENT_RESYNC => ClientMsg::Resync,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "ClientMsg",
                    tag,
                });
            }
        })
    })
}

/// The `version` of a `Hello` message, read without decoding the rest.
///
/// Every protocol version keeps a `Hello`'s first two fields (tag 0, then `version`
/// as a varint `u16`), so a server can answer a client of another version with
/// [`ErrorCode::VersionMismatch`] even when the rest of its `Hello` has another layout.
///
/// ```
/// use ticksync_protocol::codec;
/// assert_eq!(codec::hello_version(&[0x00, 0x02, 0xff, 0xff]), Some(2));
/// assert_eq!(codec::hello_version(&[0x01, 0x00]), None); // not a Hello
/// ```
pub fn hello_version(bytes: &[u8]) -> Option<u16> {
    let mut dec = DecoderImpl::new(SliceReader(bytes), STANDARD, ());
    match get::<u32>(&mut dec) {
        Ok(CLIENT_HELLO) => get::<u16>(&mut dec).ok(),
        _ => None,
    }
}

// ---- server messages -------------------------------------------------------------

const SERVER_WELCOME: u32 = 0;
const SERVER_SNAPSHOT: u32 = 1;
const SERVER_PONG: u32 = 2;
const SERVER_ERROR: u32 = 3;

/// Encodes a server message, appending to `out`.
///
/// An error text longer than [`MAX_ERROR_TEXT_LEN`] bytes is cut at a character
/// boundary, so the result always decodes.
pub fn encode_server_into(msg: &ServerMsg, out: &mut Vec<u8>) {
    match msg {
        ServerMsg::Snapshot(s) => {
            encode_snapshot_header(s.ack_input, out);
            encode_snapshot_body(&s.body, out);
        }
        ServerMsg::Welcome(w) => with_encoder(out, |e| {
            put(e, &SERVER_WELCOME);
            put(e, &w.player_id.0);
            put(e, &w.tick.0);
            put(e, &w.tick_rate);
            put(e, &w.movement.speed_per_tick);
            put(e, &w.movement.world_max.x);
            put(e, &w.movement.world_max.y);
            put(e, &w.fixed_scale);
            put(e, &w.view_radius);
            put(e, &w.resume_token.0);
            put(e, &w.resumed);
            put(e, &w.last_input_seq.0);
        }),
        ServerMsg::Pong {
            client_time_us,
            server_tick,
        } => with_encoder(out, |e| {
            put(e, &SERVER_PONG);
            put(e, client_time_us);
            put(e, &server_tick.0);
        }),
        ServerMsg::Error(err) => with_encoder(out, |e| {
            put(e, &SERVER_ERROR);
            put(e, &err.code.to_u16());
            put(e, &truncate_utf8(&err.message, MAX_ERROR_TEXT_LEN));
        }),
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Encodes a server message into a new buffer.
pub fn encode_server(msg: &ServerMsg) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_server_into(msg, &mut out);
    out
}

/// Writes the per-client head of a `Snapshot` message: the message tag and the
/// acknowledged input. A complete message is this head followed by the bytes of
/// [`encode_snapshot_body`], so one encoded body can be shared by many clients.
pub fn encode_snapshot_header(ack_input: InputSeq, out: &mut Vec<u8>) {
    with_encoder(out, |e| {
        put(e, &SERVER_SNAPSHOT);
        put(e, &ack_input.0);
    });
}

/// Writes the shareable part of a `Snapshot` message.
///
/// The body's lists must be sorted by id with unique, non-zero ids (as
/// [`crate::snapshot`] builds them), and a delta's baseline must be older than its
/// tick; ids are written as gaps from the previous one.
pub fn encode_snapshot_body(body: &SnapshotBody, out: &mut Vec<u8>) {
    debug_assert!(body.baseline.is_none_or(|b| b < body.tick));
    // Typical sizes: 1-byte gaps, small deltas, positions of up to 3 bytes.
    out.reserve(16 + body.removed.len() + 7 * body.spawned.len() + 3 * body.changed.len());
    with_encoder(out, |e| {
        put(e, &body.tick.0);
        let age = body.baseline.map_or(0, |b| body.tick.0.wrapping_sub(b.0));
        put(e, &age);
        put_ids(e, body.removed.iter().map(|id| (*id, ())), |_, _| {});
        put_ids(e, body.spawned.iter().map(|s| (s.id, s.pos.0)), put_ivec);
        put_ids(e, body.changed.iter().map(|c| (c.id, c.delta)), put_ivec);
        put(e, &body.checksum.0.to_le_bytes());
    });
}

#[inline]
fn put_ivec(e: &mut Enc<'_>, v: IVec2) {
    put(e, &v.x);
    put(e, &v.y);
}

#[inline]
fn put_ids<T>(
    e: &mut Enc<'_>,
    items: impl ExactSizeIterator<Item = (PlayerId, T)>,
    mut put_item: impl FnMut(&mut Enc<'_>, T),
) {
    put(e, &(items.len() as u64));
    let mut prev = 0u32;
    for (id, item) in items {
        debug_assert!(id.0 > prev, "snapshot ids must be non-zero and increasing");
        put(e, &id.0.wrapping_sub(prev));
        prev = id.0;
        put_item(e, item);
    }
}

/// Decodes one server message of at most [`MAX_SERVER_MSG_LEN`] bytes.
///
/// A message whose type tag this version does not know yields
/// [`DecodeError::UnknownTag`]; clients must skip it rather than fail.
pub fn decode_server(bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
    decode_all(bytes, MAX_SERVER_MSG_LEN, |d| {
        let tag: u32 = get(d)?;
        Ok(match tag {
            SERVER_WELCOME => ServerMsg::Welcome(decode_welcome(d)?),
            SERVER_SNAPSHOT => ServerMsg::Snapshot(Snapshot {
                ack_input: InputSeq(get(d)?),
                body: decode_body(d)?,
            }),
            SERVER_PONG => ServerMsg::Pong {
                client_time_us: get(d)?,
                server_tick: Tick(get(d)?),
            },
            SERVER_ERROR => ServerMsg::Error(ErrorMsg {
                code: ErrorCode::from_u16(get(d)?),
                message: get_string(d, MAX_ERROR_TEXT_LEN)?,
            }),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "ServerMsg",
                    tag,
                });
            }
        })
    })
}

fn decode_welcome(d: &mut Dec<'_>) -> Result<Welcome, DecodeError> {
    let w = Welcome {
        player_id: PlayerId(get(d)?),
        tick: Tick(get(d)?),
        tick_rate: get(d)?,
        movement: MoveConfig {
            speed_per_tick: get(d)?,
            world_max: IVec2::new(get(d)?, get(d)?),
        },
        fixed_scale: get(d)?,
        view_radius: get(d)?,
        resume_token: ResumeToken(get(d)?),
        resumed: get(d)?,
        last_input_seq: InputSeq(get(d)?),
    };
    // Out-of-range constants would make `step` overflow on the client.
    if !w.movement.is_valid() {
        return Err(DecodeError::Invalid(format!(
            "movement constants out of range: {:?}",
            w.movement
        )));
    }
    Ok(w)
}

fn decode_body(d: &mut Dec<'_>) -> Result<SnapshotBody, DecodeError> {
    let tick = Tick(get(d)?);
    let age: u32 = get(d)?;
    let baseline = match age {
        0 => None,
        age if age > tick.0 => {
            return Err(DecodeError::Invalid(format!(
                "baseline age {age} reaches before tick 0 (tick {})",
                tick.0
            )));
        }
        age => Some(Tick(tick.0 - age)),
    };
    let removed = get_ids(d, 1, |id, _| Ok(id))?;
    let spawned = get_ids(d, 3, |id, d| {
        Ok(EntityState {
            id,
            pos: FixedPos(get_ivec(d)?),
        })
    })?;
    let changed = get_ids(d, 3, |id, d| {
        Ok(EntityDelta {
            id,
            delta: get_ivec(d)?,
        })
    })?;
    let checksum = Checksum(u32::from_le_bytes(get(d)?));
    if baseline.is_none() && !(removed.is_empty() && changed.is_empty()) {
        return Err(DecodeError::Invalid(
            "a full snapshot cannot remove or change entities".into(),
        ));
    }
    Ok(SnapshotBody {
        tick,
        baseline,
        removed,
        spawned,
        changed,
        checksum,
    })
}

#[inline]
fn get_ivec(d: &mut Dec<'_>) -> Result<IVec2, DecodeError> {
    Ok(IVec2::new(get(d)?, get(d)?))
}

/// Reads an id-gap list whose entries take at least `min_item_bytes` each.
#[inline]
fn get_ids<T>(
    d: &mut Dec<'_>,
    min_item_bytes: usize,
    mut get_item: impl FnMut(PlayerId, &mut Dec<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let n = get_len(d, usize::MAX, min_item_bytes)?;
    let mut out = Vec::with_capacity(n);
    let mut prev = 0u32;
    for _ in 0..n {
        let gap: u32 = get(d)?;
        if gap == 0 {
            return Err(DecodeError::Invalid(
                "entity ids must be non-zero and strictly increasing".into(),
            ));
        }
        let id = prev
            .checked_add(gap)
            .ok_or_else(|| DecodeError::Invalid("entity id overflows u32".into()))?;
        prev = id;
        out.push(get_item(PlayerId(id), d)?);
    }
    Ok(out)
}
