//! Tests of the metrics text parser and the HTTP response handling.

use super::*;

const TEXT: &str = r#"# HELP ticksync_tick_duration_seconds Time spent in one tick.
# TYPE ticksync_tick_duration_seconds histogram
ticksync_tick_duration_seconds_bucket{le="0.0005"} 600
ticksync_tick_duration_seconds_bucket{le="0.001"} 900
ticksync_tick_duration_seconds_bucket{le="0.005"} 995
ticksync_tick_duration_seconds_bucket{le="0.01"} 1000
ticksync_tick_duration_seconds_bucket{le="+Inf"} 1000
ticksync_tick_duration_seconds_sum 0.61
ticksync_tick_duration_seconds_count 1000
# TYPE ticksync_tick_duration_max_seconds gauge
ticksync_tick_duration_max_seconds 0.0071
# TYPE ticksync_ticks_missed counter
ticksync_ticks_missed_total 3
ticksync_connections 12
# EOF
"#;

#[test]
fn parses_tick_histogram_max_and_missed() {
    let s = parse_metrics(TEXT);
    assert_eq!(s.ticks, Some(1000));
    assert_eq!(s.p50_s, Some(0.0005));
    assert_eq!(s.p99_s, Some(0.005));
    assert_eq!(s.max_s, Some(0.0071));
    assert_eq!(s.ticks_missed, Some(3));
    assert!(s.missing().is_empty());
}

#[test]
fn tail_beyond_the_last_bucket_uses_the_max() {
    let text = "ticksync_tick_duration_seconds_bucket{le=\"0.001\"} 1\n\
                ticksync_tick_duration_seconds_bucket{le=\"+Inf\"} 10\n\
                ticksync_tick_duration_max_seconds 0.25\n";
    let s = parse_metrics(text);
    // No _count line: the +Inf bucket is the total.
    assert_eq!(s.ticks, Some(10));
    assert_eq!(s.p99_s, Some(0.25));
    assert_eq!(s.ticks_missed, None);
    assert_eq!(s.missing(), [TICKS_MISSED]);
}

#[test]
fn labels_exemplars_and_series_are_handled() {
    let text = "ticksync_tick_duration_seconds_bucket{world=\"a}\",le=\"0.002\"} 4 # {trace=\"x\"} 0.001\n\
                ticksync_tick_duration_seconds_bucket{world=\"b\",le=\"0.002\"} 6\n\
                ticksync_tick_duration_seconds_bucket{le=\"+Inf\",world=\"a}\"} 4\n\
                ticksync_tick_duration_seconds_bucket{le=\"+Inf\",world=\"b\"} 6\n\
                not a metric line at all {\n\
                ticksync_ticks_missed_total{world=\"a\"} 1\n\
                ticksync_ticks_missed_total{world=\"b\"} 2.0\n";
    let s = parse_metrics(text);
    assert_eq!(s.ticks, Some(10));
    assert_eq!(s.p50_s, Some(0.002));
    assert_eq!(s.ticks_missed, Some(3));
}

#[test]
fn quantiles_never_exceed_the_max() {
    let text = "ticksync_tick_duration_seconds_bucket{le=\"0.0005\"} 10\n\
                ticksync_tick_duration_seconds_bucket{le=\"+Inf\"} 10\n\
                ticksync_tick_duration_max_seconds 0.0003\n";
    let s = parse_metrics(text);
    assert_eq!((s.p50_s, s.p99_s), (Some(0.0003), Some(0.0003)));
}

#[test]
fn empty_or_missing_metrics_are_none() {
    let s = parse_metrics("# EOF\n");
    assert_eq!(s, TickStats::default());
    assert_eq!(s.missing().len(), 3);
    let zero = "ticksync_tick_duration_seconds_bucket{le=\"+Inf\"} 0\n\
                ticksync_tick_duration_seconds_count 0\n";
    assert_eq!(parse_metrics(zero).p50_s, None);
}

#[test]
fn http_responses_plain_chunked_and_errors() {
    let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(parse_response(plain).unwrap(), (200, b"hello".to_vec()));
    let chunked =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
    assert_eq!(parse_response(chunked).unwrap().1, b"hello world");
    let missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope";
    assert_eq!(parse_response(missing), Ok((404, b"nope".to_vec())));
    assert!(parse_response(b"garbage").is_err());
    let truncated = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nabc";
    assert!(parse_response(truncated).is_err());
}

#[tokio::test]
async fn scrape_reads_from_a_local_listener_and_reports_failures() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut req = vec![0u8; 1024];
        let n = sock.read(&mut req).await.unwrap();
        let req = String::from_utf8_lossy(&req[..n]).to_string();
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{TEXT}",
            TEXT.len()
        );
        sock.write_all(resp.as_bytes()).await.unwrap();
        req
    });
    let url = format!("http://{addr}/metrics");
    let stats = scrape(&url, None, Duration::from_secs(5))
        .await
        .unwrap()
        .tick_stats(None);
    assert_eq!(stats.ticks_missed, Some(3));
    let req = server.await.unwrap();
    assert!(req.starts_with("GET /metrics HTTP/1.1\r\n"), "{req}");

    // Nothing listens there any more.
    let err = scrape(&url, None, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, ScrapeError::Http(_)), "{err:?}");
}

fn sample(buckets: &[(f64, u64)], max: f64, missed: u64) -> String {
    let mut t = String::new();
    for (le, c) in buckets {
        let le = if le.is_finite() {
            le.to_string()
        } else {
            "+Inf".into()
        };
        t += &format!("ticksync_tick_duration_seconds_bucket{{le=\"{le}\"}} {c}\n");
    }
    t += &format!(
        "ticksync_tick_duration_max_seconds {max}\nticksync_ticks_missed_total {missed}\n"
    );
    t
}

#[test]
fn a_baseline_scrape_limits_the_stats_to_the_run() {
    let inf = f64::INFINITY;
    // 1000 idle ticks before the run, all under 0.1 ms, one 9 ms tick long ago.
    let before = parse_sample(&sample(
        &[(0.0001, 999), (0.001, 999), (0.01, 1000), (inf, 1000)],
        0.009,
        2,
    ));
    // During the run: 100 ticks between 0.1 and 1 ms, no new max.
    let after = parse_sample(&sample(
        &[(0.0001, 999), (0.001, 1099), (0.01, 1100), (inf, 1100)],
        0.009,
        5,
    ));
    let lifetime = after.tick_stats(None);
    assert_eq!(lifetime.p50_s, Some(0.0001));
    let run = after.tick_stats(Some(&before));
    assert_eq!(run.ticks, Some(100));
    assert_eq!((run.p50_s, run.p99_s), (Some(0.001), Some(0.001)));
    // The 9 ms max predates the run: the run's max is bounded by its buckets.
    assert_eq!(run.max_s, Some(0.001));
    assert_eq!(run.ticks_missed, Some(3));

    // A new max during the run is exact.
    let longer = parse_sample(&sample(
        &[(0.0001, 999), (0.001, 1099), (0.01, 1101), (inf, 1101)],
        0.0095,
        5,
    ));
    assert_eq!(longer.tick_stats(Some(&before)).max_s, Some(0.0095));

    // Counters that went down (a restarted server): the baseline is ignored.
    let restarted = parse_sample(&sample(&[(0.001, 10), (inf, 10)], 0.0005, 0));
    assert_eq!(restarted.tick_stats(Some(&before)).ticks, Some(10));
}
