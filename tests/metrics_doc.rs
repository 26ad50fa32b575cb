//! docs/OPERATIONS.md section 4 and a fresh server's first `/metrics` scrape list
//! the same metric families, and every labelled counter is on the first scrape
//! with each label value the doc names, at 0: the doc and the code cannot drift,
//! and a dashboard's `rate()` has a series before the first incident.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ticksync_server::Config;

/// One row of the doc's metrics table.
#[derive(Debug)]
struct DocMetric {
    kind: String,
    /// The label name and its values, for a labelled counter.
    label: Option<(String, Vec<String>)>,
}

/// The backquoted words of a table cell.
fn quoted(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The metrics table of OPERATIONS.md section 4: metric name → row.
fn documented() -> BTreeMap<String, DocMetric> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/OPERATIONS.md");
    let doc = std::fs::read_to_string(&path).expect("read docs/OPERATIONS.md");
    let section = doc
        .split("\n## 4. Metrics")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("OPERATIONS.md has a section '## 4. Metrics'");
    let mut out = BTreeMap::new();
    let rows = section
        .lines()
        .filter(|l| l.starts_with("| `ticksync_") || l.starts_with("| `process_"));
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let name = quoted(cells[1]).remove(0);
        let mut label = quoted(cells[3]);
        let label = (!label.is_empty()).then(|| {
            let key = label.remove(0);
            (key, label)
        });
        let row = DocMetric {
            kind: cells[2].to_string(),
            label,
        };
        // The process collector reads /proc: Linux only.
        if name.starts_with("process_") && !cfg!(target_os = "linux") {
            continue;
        }
        assert!(out.insert(name.clone(), row).is_none(), "{name} twice");
    }
    assert!(
        out.len() >= 20,
        "only {} rows in the metrics table",
        out.len()
    );
    out
}

/// A scrape: family name as queried (a counter with its `_total`) → type, and
/// every sample line (`name{labels}` → value).
fn parse_scrape(text: &str) -> (BTreeMap<String, String>, BTreeMap<String, f64>) {
    let mut families = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            let name = match kind {
                "counter" => format!("{name}_total"),
                _ => name.to_string(),
            };
            families.insert(name, kind.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').expect("sample: series value");
            let value = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
            samples.insert(series.to_string(), value);
        }
    }
    (families, samples)
}

#[tokio::test]
async fn first_scrape_shows_every_documented_family_and_label_value_at_zero() {
    let doc = documented();
    let server = common::start_server(Config::for_tests()).await;
    let (status, text) = common::attack::http_get(server.local_addr(), "/metrics").await;
    assert_eq!(status, 200);
    let (families, samples) = parse_scrape(&text);

    let doc_families: BTreeMap<String, String> = doc
        .iter()
        .map(|(name, m)| (name.clone(), m.kind.clone()))
        .collect();
    assert_eq!(
        doc_families, families,
        "OPERATIONS.md section 4 (left) and /metrics (right) list different families"
    );

    for (name, metric) in &doc {
        let Some((key, values)) = &metric.label else {
            continue;
        };
        assert!(!values.is_empty(), "{name}: no label values documented");
        let exported: BTreeSet<String> = samples
            .keys()
            .filter_map(|s| s.strip_prefix(&format!("{name}{{{key}=\"")))
            .filter_map(|rest| rest.strip_suffix("\"}"))
            .map(str::to_string)
            .collect();
        let listed: BTreeSet<String> = values.iter().cloned().collect();
        assert_eq!(
            listed, exported,
            "{name}: label values in OPERATIONS.md (left) and on the first scrape (right)"
        );
        for value in values {
            let series = format!("{name}{{{key}=\"{value}\"}}");
            assert_eq!(samples[&series], 0.0, "{series} on a fresh server");
        }
    }
    common::shutdown(server).await;
}

/// The `process_*` families are this process's own figures, in the units
/// their names say (the server runs in the test's process, so the test reads
/// the same `/proc/self`).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn process_families_report_this_process_in_bytes_and_seconds() {
    let server = common::start_server(Config::for_tests()).await;
    // Some CPU time of our own first (a fixed amount of work, whatever the
    // machine's load), so the CPU counter has something to show.
    let mut x = 1u64;
    for i in 0..30_000_000u64 {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    assert_ne!(x, 0);
    let (status, text) = common::attack::http_get(server.local_addr(), "/metrics").await;
    assert_eq!(status, 200);
    let (_, samples) = parse_scrape(&text);
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let vm_rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    let rss = samples["process_resident_memory_bytes"];
    let ratio = rss / (vm_rss_kib * 1024.0);
    assert!(
        (0.8..1.25).contains(&ratio),
        "process_resident_memory_bytes {rss} against VmRSS {vm_rss_kib} kB"
    );
    assert!(samples["process_virtual_memory_bytes"] >= rss);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let started = samples["process_start_time_seconds"];
    assert!(
        started <= now + 1.0 && started > now - 600.0,
        "started at {started}, now {now}"
    );
    let cpu = samples["process_cpu_seconds_total"];
    assert!((0.01..600.0).contains(&cpu), "{cpu} s of CPU");
    // The listener and the test's own connection at least.
    assert!(samples["process_open_fds"] >= 2.0);
    assert!(samples["process_max_fds"] >= samples["process_open_fds"]);
    common::shutdown(server).await;
}
