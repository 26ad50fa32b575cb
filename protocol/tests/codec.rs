//! Codec behaviour beyond the golden vectors: the version probe for foreign
//! `Hello`s, error text truncation, and the error code tables.

use ticksync_protocol::*;

#[test]
fn hello_version_reads_only_tag_and_version() {
    let v2 = codec::encode_client(&ClientMsg::Hello(Hello {
        version: 2,
        name: Some("x".into()),
        ..Hello::default()
    }));
    assert_eq!(codec::hello_version(&v2), Some(2));
    // A future Hello: version 300 (0xFB 0x2C 0x01) and a layout v2 cannot decode.
    let v300 = [0x00, 0xfb, 0x2c, 0x01, 0xee, 0xee];
    assert!(codec::decode_client(&v300).is_err());
    assert_eq!(codec::hello_version(&v300), Some(300));
    assert_eq!(codec::hello_version(&[]), None);
    assert_eq!(codec::hello_version(&[0x00]), None);
    assert_eq!(codec::hello_version(&[0x03]), None);
}

#[test]
fn long_error_text_is_cut_at_a_char_boundary() {
    // 'é' is 2 bytes: 1023 bytes of 'a' then 'é' would end at byte 1025.
    let message = "a".repeat(1023) + "é";
    let bytes = codec::encode_server(&ServerMsg::Error(ErrorMsg {
        code: ErrorCode::Malformed,
        message,
    }));
    let Ok(ServerMsg::Error(e)) = codec::decode_server(&bytes) else {
        panic!("long error text must still decode");
    };
    assert_eq!(e.message, "a".repeat(1023));
}

#[test]
fn unknown_server_messages_are_recognisable() {
    let err = codec::decode_server(&[0x07, 0x01]).unwrap_err();
    assert!(err.is_unknown_message());
    assert!(!DecodeError::Truncated { field: "x" }.is_unknown_message());
}

#[test]
fn error_codes_round_trip_and_map_to_close_codes() {
    for n in 0..=20u16 {
        assert_eq!(ErrorCode::from_u16(n).to_u16(), n);
    }
    assert_eq!(
        ErrorCode::VersionMismatch.close_code(),
        close::POLICY_VIOLATION
    );
    assert_eq!(ErrorCode::Malformed.close_code(), close::PROTOCOL_ERROR);
    assert_eq!(ErrorCode::ServerFull.close_code(), close::TRY_AGAIN_LATER);
    assert_eq!(ErrorCode::ShuttingDown.close_code(), close::GOING_AWAY);
}

#[test]
fn a_welcome_with_a_zero_limit_is_refused() {
    let welcome = Welcome {
        player_id: PlayerId(1),
        tick: Tick(0),
        tick_rate: 30,
        movement: MoveConfig::from_units(100.0, 30, 1000.0),
        fixed_scale: 16,
        view_radius: 0,
        resume_token: ResumeToken([0; 16]),
        resumed: false,
        last_input_seq: InputSeq(0),
        limits: SessionLimits {
            idle_timeout_ms: 15_000,
            rate_limit: 68,
            rate_burst: 68,
            resume_grace_ms: 0, // no grace is a valid setting
            input_queue: 16,
        },
    };
    assert_eq!(welcome.validate(), Ok(()));
    let zero = |f: fn(&mut SessionLimits)| {
        let mut w = welcome.clone();
        f(&mut w.limits);
        w.validate().unwrap_err()
    };
    assert!(zero(|l| l.idle_timeout_ms = 0).contains("Welcome.idle_timeout_ms"));
    assert!(zero(|l| l.rate_limit = 0).contains("Welcome.rate_limit"));
    assert!(zero(|l| l.rate_burst = 0).contains("Welcome.rate_burst"));
    assert!(zero(|l| l.input_queue = 0).contains("Welcome.input_queue"));
}
