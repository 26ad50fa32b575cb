//! Tests of argument parsing, defaults, validation and the duration syntax.

use std::time::Duration;

use clap::Parser;

use super::*;

fn parse(args: &[&str]) -> Result<BotConfig, clap::Error> {
    BotConfig::try_parse_from(std::iter::once("ticksync-bot").chain(args.iter().copied()))
}

#[test]
fn durations() {
    let ms = Duration::from_millis;
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("500ms"), Ok(ms(500)));
    assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
    for bad in ["", "30", "s", "5x", "-1s", "ms5"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn the_issue_command_line_parses() {
    let c = parse(&[
        "--url",
        "ws://127.0.0.1:7777/ws",
        "--bots",
        "500",
        "--duration",
        "30s",
        "--ramp-up",
        "5s",
        "--input-rate",
        "30",
        "--json",
        "report.json",
        "--seed",
        "7",
        "--runtime",
        "multi-thread",
        "--reconnect",
        "--reconnect-max-backoff",
        "2s",
        "--allow-failures",
        "3",
    ])
    .unwrap();
    assert_eq!(c.bots, 500);
    assert_eq!(c.duration, Duration::from_secs(30));
    assert_eq!(c.ramp_up, Duration::from_secs(5));
    assert_eq!(c.json.as_deref(), Some(std::path::Path::new("report.json")));
    assert_eq!(c.seed, Some(7));
    assert_eq!(c.runtime, RuntimeKind::MultiThread);
    assert!(c.reconnect);
    assert_eq!(c.reconnect_max_backoff, Duration::from_secs(2));
    assert_eq!(c.allow_failures, 3);
    c.validate().unwrap();
    assert_eq!(c.metrics_url().unwrap(), "http://127.0.0.1:7777/metrics");
}

#[test]
fn defaults_match_the_plain_struct() {
    // No TICKSYNC_BOT_* variables are set in the test environment.
    let parsed = parse(&[]).unwrap();
    assert_eq!(parsed, BotConfig::default());
    assert_eq!(parsed.runtime, RuntimeKind::CurrentThread);
    assert!(!parsed.reconnect);
    parsed.validate().unwrap();
}

/// The flag `validate` blames, or "ok".
fn flag_of(c: BotConfig) -> &'static str {
    match c.validate() {
        Err(ConfigError::Invalid { flag, .. }) => flag,
        Ok(()) => "ok",
    }
}

#[test]
fn bad_arguments_are_rejected_with_the_flag_named() {
    assert!(parse(&["--bots", "many"]).is_err());
    assert!(parse(&["--duration", "ten"]).is_err());
    assert!(parse(&["--runtime", "fast"]).is_err());
    let base = BotConfig::default();
    assert_eq!(
        flag_of(BotConfig {
            bots: 0,
            ..base.clone()
        }),
        "--bots"
    );
    assert_eq!(
        flag_of(BotConfig {
            ramp_up: Duration::from_secs(20),
            ..base.clone()
        }),
        "--ramp-up"
    );
    assert_eq!(
        flag_of(BotConfig {
            input_rate: 0,
            ..base.clone()
        }),
        "--input-rate"
    );
    assert_eq!(
        flag_of(BotConfig {
            url: "http://127.0.0.1:7777/ws".into(),
            ..base.clone()
        }),
        "--url"
    );
    assert_eq!(
        flag_of(BotConfig {
            url: "not a url".into(),
            ..base.clone()
        }),
        "--url"
    );
    assert_eq!(
        flag_of(BotConfig {
            metrics_url: Some("ws://x/metrics".into()),
            ..base.clone()
        }),
        "--metrics-url"
    );
    assert_eq!(
        flag_of(BotConfig {
            name_prefix: "x".repeat(40),
            ..base.clone()
        }),
        "--name-prefix"
    );
    assert_eq!(
        flag_of(BotConfig {
            reconnect_min_backoff: Duration::from_secs(10),
            ..base.clone()
        }),
        "--reconnect-min-backoff"
    );
    assert_eq!(
        flag_of(BotConfig {
            duration: Duration::ZERO,
            ramp_up: Duration::ZERO,
            ..base
        }),
        "--duration"
    );
}

#[test]
fn urls() {
    assert_eq!(
        parse_ws_url("ws://127.0.0.1:9000/ws").unwrap(),
        Target {
            host: "127.0.0.1".into(),
            port: 9000,
            tls: false,
        }
    );
    assert_eq!(parse_ws_url("ws://localhost/ws").unwrap().port, 80);
    let wss = parse_ws_url("wss://game.example:8443/ws").unwrap();
    assert_eq!(
        (wss.host.as_str(), wss.port, wss.tls),
        ("game.example", 8443, true)
    );
    assert_eq!(parse_ws_url("wss://localhost/ws").unwrap().port, 443);
    assert!(parse_ws_url("http://localhost/ws").is_err());
    let v6 = parse_ws_url("ws://[::1]:7777/ws").unwrap();
    assert_eq!(v6.addr(), "[::1]:7777");
    let (t, path) = parse_http_url("http://127.0.0.1:9100/metrics?x=1").unwrap();
    assert_eq!((t.port, path.as_str()), (9100, "/metrics?x=1"));
    let c = BotConfig {
        metrics_url: Some("http://127.0.0.1:9100/m".into()),
        ..BotConfig::default()
    };
    assert_eq!(c.metrics_url().unwrap(), "http://127.0.0.1:9100/m");
    // A TLS server serves its metrics over https on the same port.
    let c = BotConfig {
        url: "wss://127.0.0.1:9443/ws".into(),
        ..BotConfig::default()
    };
    assert_eq!(c.metrics_url().unwrap(), "https://127.0.0.1:9443/metrics");
    assert!(
        parse_http_url("https://127.0.0.1:9443/metrics")
            .unwrap()
            .0
            .tls
    );
}

#[test]
fn tls_flags_need_a_tls_url_and_exclude_each_other() {
    let plain = BotConfig {
        insecure: true,
        ..BotConfig::default()
    };
    assert_eq!(flag_of(plain), "--insecure");
    let plain = BotConfig {
        ca_cert: Some("ca.pem".into()),
        ..BotConfig::default()
    };
    assert_eq!(flag_of(plain), "--ca-cert");
    let wss = BotConfig {
        url: "wss://127.0.0.1:9443/ws".into(),
        ..BotConfig::default()
    };
    let both = BotConfig {
        insecure: true,
        ca_cert: Some("ca.pem".into()),
        ..wss.clone()
    };
    assert_eq!(flag_of(both), "--insecure");
    assert!(
        BotConfig {
            insecure: true,
            ..wss.clone()
        }
        .validate()
        .is_ok()
    );
    assert!(parse(&["--insecure", "--ca-cert", "x.pem"]).is_err());
    // A CA file that is missing or holds no certificate names the flag.
    let missing = BotConfig {
        ca_cert: Some("/nonexistent/ca.pem".into()),
        ..wss.clone()
    };
    assert!(matches!(
        missing.tls_client(),
        Err(ConfigError::Invalid {
            flag: "--ca-cert",
            ..
        })
    ));
    let insecure = BotConfig {
        insecure: true,
        ..wss
    };
    assert!(insecure.tls_client().unwrap().unwrap().is_insecure());
    assert!(BotConfig::default().tls_client().unwrap().is_none());
}

#[test]
fn per_bot_options() {
    let c = BotConfig {
        reconnect: true,
        name_prefix: "load".into(),
        ..BotConfig::default()
    };
    let a = c.bot_options(0, 100, None);
    let b = c.bot_options(1, 100, None);
    assert_eq!(a.name.as_deref(), Some("load-0"));
    assert_eq!(b.name.as_deref(), Some("load-1"));
    assert_ne!(a.seed, b.seed);
    assert_eq!(c.bot_options(1, 100, None).seed, b.seed, "reproducible");
    assert_eq!(
        a.reconnect.map(|r| (r.min, r.max)),
        Some((Duration::from_millis(100), Duration::from_secs(5)))
    );
    assert!(
        BotConfig::default()
            .bot_options(0, 1, None)
            .reconnect
            .is_none()
    );
}

#[test]
fn the_first_verify_bots_verify() {
    let all = BotConfig::default();
    assert_eq!(all.bots_verifying(), 10);
    assert!(all.bot_options(9, 1, None).verify);
    let some = parse(&["--bots", "2000", "--verify", "50"]).unwrap();
    assert_eq!(some.bots_verifying(), 50);
    assert!(some.bot_options(49, 1, None).verify);
    assert!(!some.bot_options(50, 1, None).verify);
    let more = parse(&["--bots", "3", "--verify", "50"]).unwrap();
    assert_eq!(more.bots_verifying(), 3);
    assert_eq!(parse(&["--verify", "0"]).unwrap().bots_verifying(), 0);
}

#[test]
fn churn_needs_matchmaking_and_a_match_length() {
    assert!(
        parse(&["--churn", "3s"]).is_err(),
        "--churn without --matchmake"
    );
    let c = parse(&["--matchmake", "--kind", "squad", "--churn", "3s"]).unwrap();
    assert_eq!(c.churn, Some(Duration::from_secs(3)));
    assert_eq!(
        c.bot_options(0, 1, None).churn,
        Some(Duration::from_secs(3))
    );
    assert!(c.validate().is_ok());
    let zero = parse(&["--matchmake", "--churn", "0s"]).unwrap();
    assert!(matches!(
        zero.validate(),
        Err(ConfigError::Invalid {
            flag: "--churn",
            ..
        })
    ));
}
