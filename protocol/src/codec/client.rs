//! Client messages: `Hello`, `Input`, `Ping`, `Resync` (docs/PROTOCOL.md §5).

use super::*;

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
    decode_all(
        bytes,
        ("client", MAX_CLIENT_MSG_LEN),
        |d| {
            let tag: u32 = get(d, "the tag")?;
            Ok(match tag {
                CLIENT_HELLO => ClientMsg::Hello(Hello {
                    version: get(d, "Hello.version")?,
                    name: get_option(d, "Hello.name", |d| {
                        get_string(d, "Hello.name", MAX_NAME_LEN)
                    })?,
                    auth_token: get_option(d, "Hello.auth_token", |d| {
                        get_string(d, "Hello.auth_token", MAX_AUTH_TOKEN_LEN)
                    })?,
                    resume_token: get_option(d, "Hello.resume_token", |d| {
                        get(d, "Hello.resume_token").map(ResumeToken)
                    })?,
                }),
                CLIENT_INPUT => {
                    let ack_tick =
                        get_option(d, "Input.ack_tick", |d| get(d, "Input.ack_tick").map(Tick))?;
                    let first_seq = InputSeq(get(d, "Input.first_seq")?);
                    let n = get_len(d, "Input.dirs", (MAX_INPUTS_PER_MSG, "entries"), 2)?;
                    if n == 0 {
                        return Err(DecodeError::invalid(
                            "Input.dirs",
                            format!("an Input carries 1 to {MAX_INPUTS_PER_MSG} directions, got 0"),
                        ));
                    }
                    let mut dirs = Vec::with_capacity(n);
                    for _ in 0..n {
                        dirs.push(MoveDir::new(get(d, "Input.dirs")?, get(d, "Input.dirs")?));
                    }
                    ClientMsg::Input(Input {
                        ack_tick,
                        first_seq,
                        dirs,
                    })
                }
                CLIENT_PING => ClientMsg::Ping {
                    client_time_us: get(d, "Ping.client_time_us")?,
                },
                CLIENT_RESYNC => ClientMsg::Resync,
                tag => {
                    return Err(DecodeError::UnknownTag {
                        direction: "client",
                        tag,
                    });
                }
            })
        },
        ClientMsg::name,
    )
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
    match get::<u32>(&mut dec, "the tag") {
        Ok(CLIENT_HELLO) => get::<u16>(&mut dec, "Hello.version").ok(),
        _ => None,
    }
}
