//! The wire codec: the only module that touches bincode.
//!
//! Every message is written field by field with bincode 2's standard configuration
//! (little-endian, variable-length integers, zigzag for signed integers), exactly as
//! docs/PROTOCOL.md specifies, so the wire format is owned by the spec and the golden
//! vectors in `protocol/tests/vectors/`, not by bincode's derive internals.
//!
//! Decoding is total: any byte string yields a message or a [`DecodeError`]. Sizes
//! are checked before anything is allocated, so a forged length prefix cannot make
//! the decoder reserve more memory than the message limit.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
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

/// Why a byte string is not a valid message.
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
    /// The bytes end in the middle of a field.
    #[error("message is truncated")]
    Truncated,
    /// A complete message is followed by more bytes.
    #[error("{extra} trailing bytes after the message")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// A message type (or other enum) tag this version does not know.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Which enum the tag belongs to.
        what: &'static str,
        /// The tag found.
        tag: u32,
    },
    /// A length or count is larger than the message can hold.
    #[error("a length or count exceeds the message limit")]
    LimitExceeded,
    /// A field has a value the spec forbids.
    #[error("invalid message: {0}")]
    Invalid(String),
}

impl From<BinDecodeError> for DecodeError {
    fn from(e: BinDecodeError) -> Self {
        match e {
            BinDecodeError::UnexpectedEnd { .. } => DecodeError::Truncated,
            BinDecodeError::LimitExceeded => DecodeError::LimitExceeded,
            BinDecodeError::Utf8 { .. } => DecodeError::Invalid("string is not UTF-8".into()),
            BinDecodeError::InvalidBooleanValue(v) => {
                DecodeError::Invalid(format!("boolean byte {v} is not 0 or 1"))
            }
            BinDecodeError::UnexpectedVariant {
                type_name, found, ..
            } => DecodeError::UnknownTag {
                what: type_name,
                tag: found,
            },
            other => DecodeError::Invalid(other.to_string()),
        }
    }
}

const STANDARD: Configuration<LittleEndian, Varint> = bincode::config::standard();
type Limited<const N: usize> = Configuration<LittleEndian, Varint, Limit<N>>;

/// Appends to a `Vec<u8>`; encoding into memory cannot fail.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl Writer for VecWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Reads from a slice and remembers how much is left, to detect trailing bytes.
struct SliceReader<'a>(&'a [u8]);

impl Reader for SliceReader<'_> {
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), BinDecodeError> {
        if bytes.len() > self.0.len() {
            return Err(BinDecodeError::UnexpectedEnd {
                additional: bytes.len() - self.0.len(),
            });
        }
        let (head, rest) = self.0.split_at(bytes.len());
        bytes.copy_from_slice(head);
        self.0 = rest;
        Ok(())
    }
}

type Enc<'a> = EncoderImpl<VecWriter<'a>, Configuration<LittleEndian, Varint>>;

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

fn decode_all<const N: usize, T>(
    bytes: &[u8],
    f: impl FnOnce(&mut DecoderImpl<SliceReader<'_>, Limited<N>, ()>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    if bytes.len() > N {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: N,
        });
    }
    let config = STANDARD.with_limit::<N>();
    let mut dec = DecoderImpl::new(SliceReader(bytes), config, ());
    let value = f(&mut dec)?;
    match dec.reader().0.len() {
        0 => Ok(value),
        extra => Err(DecodeError::TrailingBytes { extra }),
    }
}

fn get<T: Decode<()>, D: Decoder<Context = ()>>(dec: &mut D) -> Result<T, DecodeError> {
    Ok(T::decode(dec)?)
}

/// Reads a list length and checks, before anything is allocated, that `len` entries
/// of `T` fit the decoder's limit and that at least `min_bytes` each remain.
fn get_len<T, D: Decoder<Context = ()>>(dec: &mut D, max: usize) -> Result<usize, DecodeError> {
    let len: u64 = get(dec)?;
    let len = usize::try_from(len).map_err(|_| DecodeError::LimitExceeded)?;
    if len > max {
        return Err(DecodeError::LimitExceeded);
    }
    dec.claim_container_read::<T>(len)?;
    // The claim only guards the allocation; release it so reading the items, which
    // claims their bytes again, is not counted twice.
    dec.unclaim_bytes_read(len.saturating_mul(std::mem::size_of::<T>()));
    Ok(len)
}

fn get_string<D: Decoder<Context = ()>>(
    dec: &mut D,
    max: usize,
    what: &str,
) -> Result<String, DecodeError> {
    let s: String = get(dec)?;
    if s.len() > max {
        return Err(DecodeError::Invalid(format!(
            "{what} is {} bytes, the limit is {max}",
            s.len()
        )));
    }
    Ok(s)
}

fn get_opt_string<D: Decoder<Context = ()>>(
    dec: &mut D,
    max: usize,
    what: &str,
) -> Result<Option<String>, DecodeError> {
    match get_option_tag(dec)? {
        false => Ok(None),
        true => get_string(dec, max, what).map(Some),
    }
}

fn get_option_tag<D: Decoder<Context = ()>>(dec: &mut D) -> Result<bool, DecodeError> {
    match get::<u8, _>(dec)? {
        0 => Ok(false),
        1 => Ok(true),
        tag => Err(DecodeError::UnknownTag {
            what: "Option",
            tag: u32::from(tag),
        }),
    }
}

// ---- client messages -------------------------------------------------------------

const CLIENT_HELLO: u32 = 0;
const CLIENT_INPUT: u32 = 1;
const CLIENT_PING: u32 = 2;
const CLIENT_RESYNC: u32 = 3;

/// Encodes a client message, appending to `out`.
pub fn encode_client_into(msg: &ClientMsg, out: &mut Vec<u8>) {
    with_encoder(out, |e| match msg {
        ClientMsg::Hello(h) => {
            put(e, &CLIENT_HELLO);
            put(e, &h.version);
            put(e, &h.name);
            put(e, &h.auth_token);
            put(e, &h.resume_token.map(|t| t.0));
        }
        ClientMsg::Input(i) => {
            put(e, &CLIENT_INPUT);
            put(e, &i.ack_tick.map(|t| t.0));
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
    decode_all::<MAX_CLIENT_MSG_LEN, _>(bytes, |d| {
        let tag: u32 = get(d)?;
        Ok(match tag {
            CLIENT_HELLO => ClientMsg::Hello(Hello {
                version: get(d)?,
                name: get_opt_string(d, MAX_NAME_LEN, "name")?,
                auth_token: get_opt_string(d, MAX_AUTH_TOKEN_LEN, "auth token")?,
                resume_token: get::<Option<[u8; 16]>, _>(d)?.map(ResumeToken),
            }),
            CLIENT_INPUT => {
                let ack_tick = get::<Option<u32>, _>(d)?.map(Tick);
                let first_seq = InputSeq(get(d)?);
                let n = get_len::<MoveDir, _>(d, MAX_INPUTS_PER_MSG)?;
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

// ---- server messages -------------------------------------------------------------

const SERVER_WELCOME: u32 = 0;
const SERVER_SNAPSHOT: u32 = 1;
const SERVER_PONG: u32 = 2;
const SERVER_ERROR: u32 = 3;

/// Encodes a server message, appending to `out`.
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
            put(e, &err.message);
        }),
    }
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
/// [`crate::snapshot`] builds them); ids are written as gaps from the previous one.
pub fn encode_snapshot_body(body: &SnapshotBody, out: &mut Vec<u8>) {
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

fn put_ivec(e: &mut Enc<'_>, v: IVec2) {
    put(e, &v.x);
    put(e, &v.y);
}

fn put_ids<T>(
    e: &mut Enc<'_>,
    items: impl ExactSizeIterator<Item = (PlayerId, T)>,
    mut put_item: impl FnMut(&mut Enc<'_>, T),
) {
    put(e, &(items.len() as u64));
    let mut prev = 0u32;
    for (id, item) in items {
        put(e, &id.0.wrapping_sub(prev));
        prev = id.0;
        put_item(e, item);
    }
}

/// Decodes one server message of at most [`MAX_SERVER_MSG_LEN`] bytes.
pub fn decode_server(bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
    decode_all::<MAX_SERVER_MSG_LEN, _>(bytes, |d| {
        let tag: u32 = get(d)?;
        Ok(match tag {
            SERVER_WELCOME => ServerMsg::Welcome(Welcome {
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
            }),
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
                message: get_string(d, MAX_ERROR_TEXT_LEN, "error message")?,
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

fn decode_body<D: Decoder<Context = ()>>(d: &mut D) -> Result<SnapshotBody, DecodeError> {
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
    let removed = get_ids(d, |_| Ok(()))?
        .into_iter()
        .map(|(id, ())| id)
        .collect();
    let spawned = get_ids(d, get_ivec)?
        .into_iter()
        .map(|(id, p)| EntityState {
            id,
            pos: FixedPos(p),
        })
        .collect();
    let changed: Vec<EntityDelta> = get_ids(d, get_ivec)?
        .into_iter()
        .map(|(id, delta)| EntityDelta { id, delta })
        .collect();
    let checksum = Checksum(u32::from_le_bytes(get(d)?));
    let body = SnapshotBody {
        tick,
        baseline,
        removed,
        spawned,
        changed,
        checksum,
    };
    if body.baseline.is_none() && !(body.removed.is_empty() && body.changed.is_empty()) {
        return Err(DecodeError::Invalid(
            "a full snapshot cannot remove or change entities".into(),
        ));
    }
    Ok(body)
}

fn get_ivec<D: Decoder<Context = ()>>(d: &mut D) -> Result<IVec2, DecodeError> {
    Ok(IVec2::new(get(d)?, get(d)?))
}

fn get_ids<T, D: Decoder<Context = ()>>(
    d: &mut D,
    mut get_item: impl FnMut(&mut D) -> Result<T, DecodeError>,
) -> Result<Vec<(PlayerId, T)>, DecodeError> {
    // Every entry takes at least one byte, so no list is longer than the message.
    let n = get_len::<(PlayerId, T), _>(d, MAX_SERVER_MSG_LEN)?;
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
        out.push((PlayerId(id), get_item(d)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_length_prefix_is_rejected_without_allocating() {
        // Input with a dir count of u32::MAX (0xFC + 4 bytes).
        let bytes = [0x01, 0x00, 0x01, 0xfc, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode_client(&bytes), Err(DecodeError::LimitExceeded));
        // A snapshot claiming 4 billion removed ids.
        let bytes = [0x01, 0x00, 0x05, 0x00, 0xfc, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode_server(&bytes), Err(DecodeError::LimitExceeded));
        // A Hello whose name claims 2^63 bytes.
        let mut bytes = vec![0x00, 0x01, 0x01, 0xfd];
        bytes.extend_from_slice(&(1u64 << 63).to_le_bytes());
        assert!(decode_client(&bytes).is_err());
    }

    #[test]
    fn trailing_bytes_and_truncation_are_errors() {
        let mut bytes = encode_client(&ClientMsg::Resync);
        bytes.push(0);
        assert_eq!(
            decode_client(&bytes),
            Err(DecodeError::TrailingBytes { extra: 1 })
        );
        assert_eq!(decode_client(&[]), Err(DecodeError::Truncated));
        assert_eq!(
            decode_client(&[0x02, 0xfb, 0xe8]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn oversize_and_unknown_messages_are_errors() {
        let big = vec![0u8; MAX_CLIENT_MSG_LEN + 1];
        assert!(matches!(
            decode_client(&big),
            Err(DecodeError::TooLarge { .. })
        ));
        assert_eq!(
            decode_client(&[0x09]),
            Err(DecodeError::UnknownTag {
                what: "ClientMsg",
                tag: 9
            })
        );
    }

    #[test]
    fn header_plus_body_is_the_whole_message() {
        let body = SnapshotBody {
            tick: Tick(7),
            baseline: Some(Tick(6)),
            removed: vec![PlayerId(3)],
            spawned: vec![EntityState {
                id: PlayerId(9),
                pos: FixedPos::new(1, 2),
            }],
            changed: vec![EntityDelta {
                id: PlayerId(4),
                delta: IVec2::new(-1, 53),
            }],
            checksum: Checksum(0xdead_beef),
        };
        let msg = ServerMsg::Snapshot(Snapshot {
            ack_input: InputSeq(300),
            body: body.clone(),
        });
        let mut split = Vec::new();
        encode_snapshot_header(InputSeq(300), &mut split);
        encode_snapshot_body(&body, &mut split);
        assert_eq!(split, encode_server(&msg));
        assert_eq!(decode_server(&split), Ok(msg));
    }

    #[test]
    fn ids_must_increase() {
        // Snapshot, ack 0, tick 5, age 1, removed [gap 2, gap 0].
        let bytes = [0x01, 0x00, 0x05, 0x01, 0x02, 0x02, 0x00, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            decode_server(&bytes),
            Err(DecodeError::Invalid(_))
        ));
    }
}
