//! Reading the server's tick statistics from its Prometheus endpoint at the end of
//! a run: a minimal HTTP/1.1 client over TCP or TLS (`https://`, also used by
//! `--matchmake`), and a parser for the few metrics the report needs.
//!
//! A run scrapes once before its bots start and once at the end, and reports the
//! difference, so a server that was up before the run (or idle for a while) does
//! not dilute the numbers. Quantiles are estimated the way a dashboard without
//! interpolation would: the upper bound of the first bucket whose cumulative
//! count reaches the rank, but never above the max.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use crate::config::parse_http_url;
use crate::error::ScrapeError;
use crate::tls::{self, TlsClient};

/// The tick duration histogram (seconds).
pub const TICK_DURATION: &str = "ticksync_tick_duration_seconds";
/// The longest tick so far (seconds, gauge).
pub const TICK_DURATION_MAX: &str = "ticksync_tick_duration_max_seconds";
/// Ticks that started late enough to be missed (counter).
pub const TICKS_MISSED: &str = "ticksync_ticks_missed_total";
/// Rooms open (gauge).
pub const ROOMS: &str = "ticksync_rooms";
/// Rooms opened (counter).
pub const ROOMS_CREATED: &str = "ticksync_rooms_created_total";
/// Rooms closed, by reason (counter).
pub const ROOMS_CLOSED: &str = "ticksync_rooms_closed_total";

/// Largest metrics response read.
const MAX_RESPONSE: u64 = 8 << 20;

/// The server's tick statistics; each is `None` when the server does not export it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickStats {
    /// Number of ticks in the histogram.
    pub ticks: Option<u64>,
    /// Median tick duration, in seconds (a bucket's upper bound).
    pub p50_s: Option<f64>,
    /// 99th percentile tick duration, in seconds (a bucket's upper bound).
    pub p99_s: Option<f64>,
    /// Longest tick, in seconds.
    pub max_s: Option<f64>,
    /// Ticks missed.
    pub ticks_missed: Option<u64>,
    /// Rooms opened (in the window, like the ticks).
    pub rooms_created: Option<u64>,
    /// Rooms closed, every reason (in the window).
    pub rooms_closed: Option<u64>,
    /// Rooms open at the (last) scrape.
    pub rooms_open: Option<u64>,
}

impl TickStats {
    /// Names of the metrics the report wanted but did not find.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if self.p50_s.is_none() {
            m.push(TICK_DURATION);
        }
        if self.max_s.is_none() {
            m.push(TICK_DURATION_MAX);
        }
        if self.ticks_missed.is_none() {
            m.push(TICKS_MISSED);
        }
        m
    }
}

/// One sample line: metric name, labels, value.
struct Sample<'a> {
    name: &'a str,
    labels: &'a str,
    value: f64,
}

fn parse_line(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = "";
    if rest.starts_with('{') {
        // Find the closing brace outside quoted label values.
        let (mut quoted, mut escaped, mut end) = (false, false, None);
        for (i, c) in rest.char_indices().skip(1) {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '}' if !quoted => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end?;
        labels = &rest[1..end];
        rest = &rest[end + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The value of label `key` in a label list like `a="1",le="0.5"`.
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = labels;
    while let Some(eq) = rest.find("=\"") {
        let k = rest[..eq].trim().trim_start_matches(',').trim();
        let after = &rest[eq + 2..];
        let close = after.find('"')?;
        if k == key {
            return Some(&after[..close]);
        }
        rest = &after[close + 1..];
    }
    None
}

/// The raw tick metrics of one scrape, kept so two scrapes can be subtracted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSample {
    /// Cumulative tick-duration buckets `(upper bound in seconds, count)`, sorted.
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    max: Option<f64>,
    missed: Option<f64>,
    rooms: Option<f64>,
    rooms_created: Option<f64>,
    rooms_closed: Option<f64>,
}

/// Parses Prometheus (or OpenMetrics) text. Series of the same metric with
/// different labels are added up.
pub fn parse_sample(text: &str) -> MetricsSample {
    let bucket = format!("{TICK_DURATION}_bucket");
    let count = format!("{TICK_DURATION}_count");
    let mut m = MetricsSample::default();
    for s in text.lines().filter_map(parse_line) {
        if s.name == bucket {
            let Some(le) = label(s.labels, "le") else {
                continue;
            };
            let le = match le {
                "+Inf" | "Inf" => f64::INFINITY,
                le => match le.parse::<f64>() {
                    Ok(v) => v,
                    Err(_) => continue,
                },
            };
            match m.buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, c)) => *c += s.value,
                None => m.buckets.push((le, s.value)),
            }
        } else if s.name == count {
            *m.count.get_or_insert(0.0) += s.value;
        } else if s.name == TICK_DURATION_MAX {
            m.max = Some(m.max.map_or(s.value, |x: f64| x.max(s.value)));
        } else if s.name == TICKS_MISSED {
            *m.missed.get_or_insert(0.0) += s.value;
        } else if s.name == ROOMS {
            *m.rooms.get_or_insert(0.0) += s.value;
        } else if s.name == ROOMS_CREATED {
            *m.rooms_created.get_or_insert(0.0) += s.value;
        } else if s.name == ROOMS_CLOSED {
            *m.rooms_closed.get_or_insert(0.0) += s.value;
        }
    }
    m.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if m.count.is_none() {
        m.count = m.buckets.last().map(|b| b.1);
    }
    m
}

/// Parses metrics text into the server's lifetime tick statistics.
pub fn parse_metrics(text: &str) -> TickStats {
    parse_sample(text).tick_stats(None)
}

impl MetricsSample {
    /// The tick statistics of the ticks after `since` (an earlier scrape of the
    /// same server), or of the server's whole life without it. A counter that went
    /// down (the server restarted) makes the earlier scrape useless: it is ignored.
    pub fn tick_stats(&self, since: Option<&MetricsSample>) -> TickStats {
        let diff = since.and_then(|b| self.minus(b));
        let Some(d) = &diff else {
            return self.stats(self.max);
        };
        // The max gauge covers the server's life: it is this window's max only if it
        // grew during it; otherwise the window's max is at most the upper bound of
        // its highest non-empty bucket.
        let max = match (self.max, since.and_then(|b| b.max)) {
            (Some(now), Some(before)) if now > before => Some(now),
            (Some(now), Some(_)) => d.upper_bound().map(|b| b.min(now)),
            (m, _) => m,
        };
        d.stats(max)
    }

    fn minus(&self, before: &MetricsSample) -> Option<MetricsSample> {
        let sub = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if a >= b => Some(Some(a - b)),
            (Some(_), Some(_)) => None,
            (a, _) => Some(a),
        };
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for &(le, c) in &self.buckets {
            let b = before
                .buckets
                .iter()
                .find(|x| x.0 == le)
                .map_or(0.0, |x| x.1);
            if c < b {
                return None;
            }
            buckets.push((le, c - b));
        }
        Some(MetricsSample {
            buckets,
            count: sub(self.count, before.count)?,
            max: self.max,
            missed: sub(self.missed, before.missed)?,
            rooms: self.rooms,
            rooms_created: sub(self.rooms_created, before.rooms_created)?,
            rooms_closed: sub(self.rooms_closed, before.rooms_closed)?,
        })
    }

    /// The bound of the first bucket that holds every tick.
    fn upper_bound(&self) -> Option<f64> {
        let total = self.count.filter(|t| *t > 0.0)?;
        self.buckets.iter().find(|b| b.1 >= total).map(|b| b.0)
    }

    fn stats(&self, max: Option<f64>) -> TickStats {
        let quantile = |q: f64| -> Option<f64> {
            let total = self.count.filter(|t| *t > 0.0)?;
            let rank = q * total;
            let (le, _) = self.buckets.iter().find(|(_, cum)| *cum >= rank)?;
            if le.is_finite() {
                Some(*le)
            } else {
                // Beyond the last bound: the max is the best estimate there is.
                max.or_else(|| {
                    self.buckets
                        .iter()
                        .rev()
                        .map(|b| b.0)
                        .find(|b| b.is_finite())
                })
            }
        };
        // A bucket bound can lie above the longest tick; no quantile exceeds the max.
        let capped = |q: Option<f64>| match (q, max) {
            (Some(q), Some(m)) => Some(q.min(m)),
            (q, _) => q,
        };
        TickStats {
            ticks: self.count.map(|t| t as u64),
            p50_s: capped(quantile(0.5)),
            p99_s: capped(quantile(0.99)),
            max_s: max,
            ticks_missed: self.missed.map(|m| m as u64),
            rooms_created: self.rooms_created.map(|m| m as u64),
            rooms_closed: self.rooms_closed.map(|m| m as u64),
            rooms_open: self.rooms.map(|m| m as u64),
        }
    }
}

/// Fetches `url` (`http://`, or `https://` verified with `tls`: the system's
/// roots when `None`) and parses its tick metrics.
pub async fn scrape(
    url: &str,
    tls: Option<&TlsClient>,
    limit: Duration,
) -> Result<MetricsSample, ScrapeError> {
    let text = timeout(limit, http_get(url, tls))
        .await
        .map_err(|_| ScrapeError::Http(format!("no answer within {limit:?}")))??;
    Ok(parse_sample(&text))
}

async fn http_get(url: &str, tls: Option<&TlsClient>) -> Result<String, ScrapeError> {
    let (status, body) = http_request(url, "GET", &[("Accept", "text/plain")], b"", tls).await?;
    if status != 200 {
        return Err(ScrapeError::Status(status));
    }
    String::from_utf8(body).map_err(|_| ScrapeError::Parse("body is not UTF-8".into()))
}

/// One HTTP/1.1 request (`Connection: close`) to `url` (`http://` or
/// `https://`): the answer's status and body, whatever the status.
pub(crate) async fn http_request(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    tls: Option<&TlsClient>,
) -> Result<(u16, Vec<u8>), ScrapeError> {
    let (target, path) = parse_http_url(url).map_err(|e| ScrapeError::Http(e.to_string()))?;
    let io = |e: std::io::Error| ScrapeError::Http(e.to_string());
    let mut stream = tls::open(&target, tls)
        .await
        .map_err(|e| ScrapeError::Http(e.to_string()))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        target.addr()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.map_err(io)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .await
        .map_err(io)?;
    parse_response(&raw)
}

/// Splits an HTTP/1.1 response into its status and body, undoing chunked
/// transfer encoding.
pub(crate) fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), ScrapeError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(ScrapeError::Http("incomplete response".into()));
        }
        Err(e) => return Err(ScrapeError::Http(format!("bad response: {e}"))),
    };
    let code = resp.code.unwrap_or(0);
    let chunked = resp.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
    });
    let body = &raw[head_len..];
    if !chunked {
        return Ok((code, body.to_vec()));
    }
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    loop {
        let bad = || ScrapeError::Http("bad chunked encoding".into());
        let line_end = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| bad())?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok((code, out));
        }
        let chunk = rest.get(..size).ok_or_else(bad)?;
        out.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or_else(bad)?;
    }
}

#[cfg(test)]
mod tests;
