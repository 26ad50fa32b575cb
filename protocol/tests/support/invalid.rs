//! Byte strings that must not decode, with the error kind docs/PROTOCOL.md
//! ("Decoding errors") assigns to each, so every client's decoder can be tested
//! against the same mistakes and forgeries.

use ticksync_protocol::*;

use super::cases::default_limits;
use super::json::{InvalidCase, InvalidFile, hex};

const C: &str = "client_to_server";
const S: &str = "server_to_client";

fn bad(name: &str, description: &str, direction: &str, bytes: &[u8], error: &str) -> InvalidCase {
    InvalidCase {
        name: name.into(),
        description: description.into(),
        direction: direction.into(),
        hex: hex(bytes),
        error: error.into(),
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The invalid-message vectors.
pub fn invalid_file() -> InvalidFile {
    let hello = [0x00, PROTOCOL_VERSION as u8]; // Hello, this version
    let welcome = |resumed| {
        codec::encode_server(&ServerMsg::Welcome(Welcome {
            player_id: PlayerId(42),
            tick: Tick(100),
            tick_rate: 30,
            movement: MoveConfig::from_units(100.0, 30, 1000.0),
            fixed_scale: 16,
            view_radius: 0,
            resume_token: ResumeToken([0; 16]),
            resumed,
            last_input_seq: InputSeq(0),
            limits: default_limits(),
        }))
    };
    let mut bad_bool = welcome(false);
    let resumed_at = (0..bad_bool.len())
        .find(|&i| bad_bool[i] != welcome(true)[i])
        .expect("the resumed byte");
    bad_bool[resumed_at] = 0x02;
    let mut negative_speed = welcome(false);
    assert_eq!(negative_speed[4], 106, "speed_per_tick 53 zigzags to 106");
    negative_speed[4] = 0x01; // zigzag 1 = -1
    // Tag, ack 0, tick 5, age 0, four empty lists, checksum 0.
    let empty_full = [0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0, 0, 0, 0];
    // What follows the removed list of an otherwise empty snapshot.
    let no_lists_no_checksum: &[u8] = &[0x00, 0x00, 0x00, 0, 0, 0, 0];
    let cases = vec![
        bad("empty", "Zero bytes: not even a tag.", C, &[], "Truncated"),
        bad(
            "ping_truncated",
            "Ping whose u16-sized varint lacks its second byte.",
            C,
            &[0x02, 0xfb, 0xe8],
            "Truncated",
        ),
        bad(
            "resync_trailing_byte",
            "A complete Resync followed by one more byte.",
            C,
            &[0x03, 0x00],
            "TrailingBytes",
        ),
        bad(
            "unknown_client_tag",
            "Message tag 9 is not a client message.",
            C,
            &[0x09],
            "UnknownTag",
        ),
        bad(
            "unknown_client_tag_256",
            "Tag 256 (0xFB 0x00 0x01) is not a client message.",
            C,
            &[0xfb, 0x00, 0x01],
            "UnknownTag",
        ),
        bad(
            "reserved_varint_marker",
            "0xFF is not a valid varint first byte.",
            C,
            &[0xff],
            "Invalid",
        ),
        bad(
            "tag_with_u64_marker",
            "A u32 field (the tag) may not use the 0xFD (u64) marker, even for a small value.",
            C,
            &[0xfd, 0, 0, 0, 0, 0, 0, 0, 0],
            "Invalid",
        ),
        bad(
            "hello_version_with_u32_marker",
            "A u16 field (version) may not use the 0xFC (u32) marker.",
            C,
            &[0x00, 0xfc, 0x01, 0, 0, 0, 0x00, 0x00, 0x00],
            "Invalid",
        ),
        bad(
            "input_first_seq_u64_marker_at_end",
            "The message ends right after a varint marker too wide for its field (0xFD in \
             the u32 first_seq): the marker is judged as soon as it is read, so Invalid, \
             not Truncated.",
            C,
            &[0x01, 0x00, 0xfd],
            "Invalid",
        ),
        bad(
            "hello_version_u32_marker_at_end",
            "The message ends right after 0xFC in the u16 version: Invalid, not Truncated.",
            C,
            &[0x00, 0xfc],
            "Invalid",
        ),
        bad(
            "input_first_seq_u32_marker_at_end",
            "The message ends right after a marker that fits its field (0xFC in the u32 \
             first_seq): the 4 bytes it announces are missing, so Truncated.",
            C,
            &[0x01, 0x00, 0xfc],
            "Truncated",
        ),
        bad(
            "hello_option_tag_2",
            "An Option tag byte must be 0 or 1.",
            C,
            &[0x00, 0x01, 0x02],
            "Invalid",
        ),
        bad(
            "hello_name_33_bytes",
            "A 33-byte name is over the 32-byte limit.",
            C,
            &cat(&[&hello, &[0x01, 33], &[b'a'; 33], &[0x00, 0x00]]),
            "LimitExceeded",
        ),
        bad(
            "hello_name_huge_length",
            "A name length of 2^63 (0xFD + u64): rejected from the prefix alone.",
            C,
            &cat(&[&hello, &[0x01, 0xfd], &(1u64 << 63).to_le_bytes()]),
            "LimitExceeded",
        ),
        bad(
            "hello_name_not_utf8",
            "Name bytes 0xC3 0x28 are not UTF-8.",
            C,
            &cat(&[&hello, &[0x01, 0x02, 0xc3, 0x28, 0x00, 0x00]]),
            "Invalid",
        ),
        bad(
            "hello_name_truncated",
            "The name claims 5 bytes but 2 follow.",
            C,
            &cat(&[&hello, &[0x01, 0x05, b'A', b'B']]),
            "Truncated",
        ),
        bad(
            "hello_auth_token_513_bytes",
            "A 513-byte auth token is over the 512-byte limit.",
            C,
            &cat(&[
                &hello,
                &[0x00, 0x01, 0xfb, 0x01, 0x02],
                &[b't'; 513],
                &[0x00],
            ]),
            "LimitExceeded",
        ),
        bad(
            "hello_resume_token_short",
            "A resume token is 16 raw bytes; here 15 follow.",
            C,
            &cat(&[&hello, &[0x00, 0x00, 0x01], &[0xab; 15]]),
            "Truncated",
        ),
        bad(
            "input_ack_option_tag_5",
            "Input whose ack_tick Option tag is 5.",
            C,
            &[0x01, 0x05, 0x01, 0x01, 0x7f, 0x00],
            "Invalid",
        ),
        bad(
            "input_zero_dirs",
            "An Input must carry at least one direction.",
            C,
            &[0x01, 0x00, 0x01, 0x00],
            "Invalid",
        ),
        bad(
            "input_nine_dirs",
            "An Input carries at most 8 directions.",
            C,
            &cat(&[&[0x01, 0x00, 0x01, 0x09], &[0; 18]]),
            "LimitExceeded",
        ),
        bad(
            "input_huge_count",
            "A direction count of 2^32 - 1.",
            C,
            &[0x01, 0x00, 0x01, 0xfc, 0xff, 0xff, 0xff, 0xff],
            "LimitExceeded",
        ),
        bad(
            "input_dirs_truncated",
            "Two directions announced (4 bytes), three bytes follow.",
            C,
            &[0x01, 0x00, 0x01, 0x02, 0x7f, 0x00, 0x7f],
            "Truncated",
        ),
        bad(
            "client_message_too_large",
            "1025 bytes: over the 1024-byte client message limit, rejected before decoding.",
            C,
            &cat(&[&[0x03], &[0; 1024]]),
            "TooLarge",
        ),
        bad("server_empty", "Zero bytes.", S, &[], "Truncated"),
        bad(
            "snapshot_truncated_checksum",
            "An empty full snapshot at tick 5 with the last checksum byte missing.",
            S,
            &empty_full[..11],
            "Truncated",
        ),
        bad(
            "snapshot_trailing_byte",
            "A complete empty full snapshot followed by one more byte.",
            S,
            &cat(&[&empty_full, &[0x00]]),
            "TrailingBytes",
        ),
        bad(
            "unknown_server_tag",
            "Server message tag 4 is not defined in v2: a client must skip the frame, not fail.",
            S,
            &[0x04, 0x01, 0x02, 0x03],
            "UnknownTag",
        ),
        bad(
            "snapshot_zero_id_gap",
            "A delta whose removed list has gaps 2, 0: ids must strictly increase.",
            S,
            &cat(&[
                &[0x01, 0x00, 0x05, 0x01, 0x02, 0x02, 0x00],
                no_lists_no_checksum,
            ]),
            "Invalid",
        ),
        bad(
            "snapshot_zero_first_id",
            "The first id of a list is its gap from 0, so it cannot be 0.",
            S,
            &cat(&[&[0x01, 0x00, 0x05, 0x01, 0x01, 0x00], no_lists_no_checksum]),
            "Invalid",
        ),
        bad(
            "snapshot_id_overflow",
            "Removed gaps 2^32 - 1 then 1: the id overflows u32.",
            S,
            &cat(&[
                &[
                    0x01, 0x00, 0x05, 0x01, 0x02, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
                no_lists_no_checksum,
            ]),
            "Invalid",
        ),
        bad(
            "snapshot_full_with_changed",
            "A full snapshot (baseline_age 0) may only spawn: this one has a changed entry.",
            S,
            &[
                0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x02, 0x00, 0, 0, 0, 0,
            ],
            "Invalid",
        ),
        bad(
            "snapshot_full_with_corrected",
            "A full snapshot with a corrected entry.",
            S,
            &[
                0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x02, 0, 0, 0, 0,
            ],
            "Invalid",
        ),
        bad(
            "snapshot_full_with_removed",
            "A full snapshot with a removed id.",
            S,
            &cat(&[&[0x01, 0x00, 0x05, 0x00, 0x01, 0x01], no_lists_no_checksum]),
            "Invalid",
        ),
        bad(
            "snapshot_baseline_before_tick_0",
            "Tick 5 with baseline_age 6 names tick -1.",
            S,
            &cat(&[&[0x01, 0x00, 0x05, 0x06, 0x00], no_lists_no_checksum]),
            "Invalid",
        ),
        bad(
            "snapshot_huge_removed_count",
            "A removed count of 2^32 - 1 in a 9-byte message: more entries than bytes left.",
            S,
            &[0x01, 0x00, 0x05, 0x01, 0xfc, 0xff, 0xff, 0xff, 0xff],
            "Truncated",
        ),
        bad(
            "snapshot_changed_entry_truncated",
            "One changed entry announced; only its id gap and dx follow.",
            S,
            &[0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x01, 0x02],
            "Truncated",
        ),
        bad(
            "snapshot_spawned_entry_truncated",
            "One spawned entry announced (at least 5 bytes: id gap, x, y, vx, vy); 4 follow.",
            S,
            &[0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 0x01, 0x02, 0x02, 0x00],
            "Truncated",
        ),
        bad(
            "welcome_bool_2",
            "welcome_default-like Welcome whose `resumed` byte is 2.",
            S,
            &bad_bool,
            "Invalid",
        ),
        bad(
            "welcome_negative_speed",
            "Welcome with speed_per_tick -1 (zigzag 0x01): outside 0..=2^20.",
            S,
            &negative_speed,
            "Invalid",
        ),
        bad(
            "pong_tick_with_u64_marker",
            "Pong whose u32 server_tick uses the 0xFD marker.",
            S,
            &[0x02, 0x00, 0xfd, 0x01, 0, 0, 0, 0, 0, 0, 0],
            "Invalid",
        ),
        bad(
            "error_text_1025_bytes",
            "An error text over the 1024-byte limit.",
            S,
            &cat(&[&[0x03, 0x02, 0xfb, 0x01, 0x04], &[b'x'; 1025]]),
            "LimitExceeded",
        ),
    ];
    InvalidFile {
        about:
            "Ticksync protocol v2 golden vectors: bytes that must fail to decode, and the error \
                kind (docs/PROTOCOL.md, \"Decoding errors\"). Regenerate with `TICKSYNC_BLESS=1 \
                cargo test -p ticksync-protocol --test golden`."
                .into(),
        cases,
    }
}
