//! The Grafana dashboard (`deploy/grafana/ticksync.json`) and the Prometheus
//! alert rules (`deploy/prometheus/ticksync-alerts.yml`) query only what the
//! server exports: every PromQL expression's metric names, label matchers
//! (names and literal values), `by`/`without`/`on`/`ignoring` labels and
//! `label_values(...)` queries are checked against a fresh server's first
//! `/metrics` scrape (histogram `_bucket`/`_sum`/`_count` series included).
//! Labels Prometheus adds itself (`job`, `instance`) and its `up` series are
//! allowed. A renamed metric or label fails here, not on an operator's empty
//! panel.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;
use ticksync_server::Config;

/// Labels Prometheus attaches to every scraped series.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];
/// Series Prometheus makes for every target.
const PROMETHEUS_SERIES: [&str; 1] = ["up"];

/// PromQL's aggregation operators: their `by (...)` may come before the `(`.
const AGGREGATIONS: [&str; 14] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Words of PromQL that are not metric names.
const KEYWORDS: [&str; 12] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    /// Numbers and durations (`0.99`, `5m`), Grafana variables (`$job`).
    Other(String),
    Punct(String),
}

/// Splits a PromQL expression (with Grafana's `$var` / `${var}` variables) into
/// tokens.
fn tokenize(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            i += 1;
            let mut s = String::new();
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c != '`' {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            assert!(i < chars.len(), "unterminated string in {expr}");
            i += 1;
            out.push(Token::Str(s));
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() || c == '.' || c == '$' {
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "._{}".contains(chars[i]))
            {
                i += 1;
            }
            out.push(Token::Other(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = ["=~", "!~", "!=", "==", ">=", "<="]
                .into_iter()
                .find(|op| two == *op)
                .map_or_else(|| c.to_string(), str::to_string);
            i += op.chars().count();
            out.push(Token::Punct(op));
        }
    }
    out
}

/// What one expression names.
#[derive(Debug, Default, PartialEq)]
struct Names {
    metrics: BTreeSet<String>,
    /// (metric, label, operator, value) of every matcher in a selector.
    matchers: Vec<(String, String, String, String)>,
    /// Labels of `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`,
    /// `group_left (...)`, `group_right (...)`.
    grouping: BTreeSet<String>,
}

fn punct(t: Option<&Token>, p: &str) -> bool {
    matches!(t, Some(Token::Punct(x)) if x == p)
}

/// The metric names, matchers and grouping labels of a PromQL expression.
fn names(expr: &str) -> Names {
    let tokens = tokenize(expr);
    let mut out = Names::default();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            // A range or subquery: `[5m]`, `[$__rate_interval]`, `[1h:5m]`.
            Token::Punct(p) if p == "[" => {
                while i < tokens.len() && !punct(tokens.get(i), "]") {
                    i += 1;
                }
                i += 1;
            }
            Token::Ident(word) if KEYWORDS.contains(&word.as_str()) => {
                i += 1;
                if word == "offset" {
                    i += 1;
                } else if punct(tokens.get(i), "(") {
                    i += 1;
                    while let Some(Token::Ident(label)) = tokens.get(i) {
                        out.grouping.insert(label.clone());
                        i += 1;
                        if punct(tokens.get(i), ",") {
                            i += 1;
                        }
                    }
                    assert!(punct(tokens.get(i), ")"), "unclosed label list in {expr}");
                    i += 1;
                }
            }
            // A function or an aggregation.
            Token::Ident(f)
                if punct(tokens.get(i + 1), "(") || AGGREGATIONS.contains(&f.as_str()) =>
            {
                i += 1
            }
            // A selector: a metric name, matchers, or both.
            Token::Ident(_) | Token::Punct(_) if selector_start(&tokens, i) => {
                let mut metric = match &tokens[i] {
                    Token::Ident(name) => {
                        i += 1;
                        Some(name.clone())
                    }
                    _ => None,
                };
                let mut matchers = Vec::new();
                if punct(tokens.get(i), "{") {
                    i += 1;
                    while let (
                        Some(Token::Ident(label)),
                        Some(Token::Punct(op)),
                        Some(Token::Str(value)),
                    ) = (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2))
                    {
                        matchers.push((label.clone(), op.clone(), value.clone()));
                        i += 3;
                        if punct(tokens.get(i), ",") {
                            i += 1;
                        }
                    }
                    assert!(punct(tokens.get(i), "}"), "bad matchers in {expr}");
                    i += 1;
                }
                if let Some(pos) = matchers
                    .iter()
                    .position(|(l, op, _)| l == "__name__" && op == "=")
                {
                    metric = Some(matchers.remove(pos).2);
                }
                let metric =
                    metric.unwrap_or_else(|| panic!("a selector without a metric name in {expr}"));
                for (label, op, value) in matchers {
                    out.matchers.push((metric.clone(), label, op, value));
                }
                out.metrics.insert(metric);
            }
            _ => i += 1,
        }
    }
    out
}

fn selector_start(tokens: &[Token], i: usize) -> bool {
    match &tokens[i] {
        Token::Ident(_) => true,
        Token::Punct(p) => p == "{",
        _ => false,
    }
}

/// A scrape's series: metric name → label name → values seen.
type Exported = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn exported(text: &str) -> Exported {
    let mut out: Exported = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let series = line.rsplit_once(' ').expect("series value").0;
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        let entry = out.entry(name.to_string()).or_default();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (label, value) = pair.split_once("=\"").expect("label=\"value\"");
            entry
                .entry(label.to_string())
                .or_default()
                .insert(value.trim_end_matches('"').to_string());
        }
    }
    for series in PROMETHEUS_SERIES {
        out.insert(series.to_string(), BTreeMap::new());
    }
    out
}

/// Every way `expr` names something the server does not export.
fn problems(expr: &str, exported: &Exported) -> Vec<String> {
    let n = names(expr);
    let mut out = Vec::new();
    if n.metrics.is_empty() {
        out.push("names no metric".to_string());
    }
    let mut labels: BTreeSet<&str> = TARGET_LABELS.into_iter().collect();
    for m in &n.metrics {
        match exported.get(m) {
            Some(l) => labels.extend(l.keys().map(String::as_str)),
            None => out.push(format!("metric {m} is not exported")),
        }
    }
    for (metric, label, op, value) in &n.matchers {
        let known = exported.get(metric);
        if TARGET_LABELS.contains(&label.as_str()) || known.is_none() {
            continue;
        }
        match known.and_then(|l| l.get(label)) {
            None => out.push(format!("{metric} has no label {label}")),
            Some(values) if op == "=" || op == "!=" => {
                if !values.contains(value) {
                    out.push(format!("{metric}{{{label}}} never has the value {value:?}"));
                }
            }
            // A regex: each plain alternative must be a value.
            Some(values) => {
                for alt in value.split('|').filter(|a| !a.contains(['$', '.', '*'])) {
                    if !values.contains(alt) {
                        out.push(format!("{metric}{{{label}}} never has the value {alt:?}"));
                    }
                }
            }
        }
    }
    for g in &n.grouping {
        if !labels.contains(g.as_str()) {
            out.push(format!("groups by {g}, a label none of its metrics has"));
        }
    }
    out
}

/// `label_values(selector, label)` of a Grafana variable query.
fn label_values_problems(query: &str, exported: &Exported) -> Vec<String> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a label_values query: {query}"));
    let (selector, label) = inner
        .rsplit_once(',')
        .expect("label_values(selector, label)");
    let mut out = problems(selector, exported);
    let label = label.trim();
    let metrics = names(selector).metrics;
    let has = TARGET_LABELS.contains(&label)
        || metrics
            .iter()
            .any(|m| exported.get(m).is_some_and(|l| l.contains_key(label)));
    if !has {
        out.push(format!(
            "label_values of {label}, which {metrics:?} do not have"
        ));
    }
    out
}

fn repo_file(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `expr` of the dashboard's panels (rows' nested panels too), and the
/// variables' queries.
fn dashboard_queries(dashboard: &Value) -> (Vec<String>, Vec<String>) {
    fn walk(v: &Value, exprs: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(e)) = map.get("expr") {
                    exprs.push(e.clone());
                }
                map.values().for_each(|v| walk(v, exprs));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, exprs)),
            _ => {}
        }
    }
    let mut exprs = Vec::new();
    walk(&dashboard["panels"], &mut exprs);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .expect("a query variable's query")
                .to_string()
        })
        .collect();
    (exprs, variables)
}

#[test]
fn the_checker_finds_what_a_server_does_not_export() {
    let scrape = "# TYPE a counter\na_total{reason=\"x\"} 0\n\
                  # TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_sum 0\nh_count 0\n# EOF\n";
    let e = exported(scrape);
    for good in [
        r#"sum by (reason) (rate(a_total{job=~"$job",reason="x"}[$__rate_interval]))"#,
        r#"histogram_quantile(0.99, sum by (le, instance) (rate(h_bucket[5m]))) > 0.02"#,
        r#"sum(rate(h_sum[5m])) / sum(rate(h_count[5m])) offset 1h"#,
        r#"{__name__="a_total", reason!~"x|$var"} and on (instance) up == 1"#,
    ] {
        assert_eq!(problems(good, &e), Vec::<String>::new(), "{good}");
    }
    for (bad, why) in [
        ("rate(b_total[5m])", "metric b_total"),
        ("sum by (color) (a_total)", "groups by color"),
        (r#"a_total{reason="y"}"#, "value \"y\""),
        (r#"a_total{reason=~"x|z"}"#, "value \"z\""),
        (r#"a_total{kind="x"}"#, "no label kind"),
        ("histogram_quantile(0.5, rate(h[5m]))", "metric h is"),
        (
            "sum(rate(h_bucket[5m])) without (reason)",
            "groups by reason",
        ),
        ("1 + 2", "names no metric"),
    ] {
        let found = problems(bad, &e);
        assert!(found.iter().any(|p| p.contains(why)), "{bad}: {found:?}");
    }
    assert!(label_values_problems("label_values(a_total, instance)", &e).is_empty());
    assert!(!label_values_problems("label_values(a_total, le)", &e).is_empty());
}

#[tokio::test]
async fn dashboard_and_alerts_query_only_what_the_server_exports() {
    let server = common::start_server(Config::for_tests()).await;
    let (status, text) = common::attack::http_get(server.local_addr(), "/metrics").await;
    assert_eq!(status, 200);
    let exported = exported(&text);
    common::shutdown(server).await;

    let dashboard: Value =
        serde_json::from_str(&repo_file("deploy/grafana/ticksync.json")).expect("valid JSON");
    let (exprs, variables) = dashboard_queries(&dashboard);
    assert!(exprs.len() >= 30, "only {} expressions", exprs.len());
    let alerts = repo_file("deploy/prometheus/ticksync-alerts.yml");
    let rules: Vec<String> = alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(|e| e.trim().to_string())
        .collect();
    assert!(rules.len() >= 5, "only {} alert rules", rules.len());

    let mut failures = Vec::new();
    let mut used = BTreeSet::new();
    for expr in exprs.iter().chain(&rules) {
        failures.extend(
            problems(expr, &exported)
                .into_iter()
                .map(|p| format!("{expr}: {p}")),
        );
        used.extend(names(expr).metrics);
    }
    for query in &variables {
        failures.extend(
            label_values_problems(query, &exported)
                .into_iter()
                .map(|p| format!("{query}: {p}")),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // What the operator looks at first is there.
    for family in [
        "ticksync_tick_duration_seconds_bucket",
        "ticksync_tick_lateness_seconds_bucket",
        "ticksync_ticks_missed_total",
        "ticksync_players",
        "ticksync_rooms",
        "ticksync_bytes_sent_total",
        "ticksync_inputs_rejected_total",
        "ticksync_disconnects_total",
        "ticksync_connections_refused_total",
        "ticksync_rtt_seconds_bucket",
        "ticksync_matchmakes_total",
        "process_resident_memory_bytes",
    ] {
        assert!(
            used.contains(family),
            "the dashboard does not show {family}"
        );
    }
    // Every panel has a unique id, and no two panels overlap on the grid.
    let panels = dashboard["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    let mut cells = BTreeSet::new();
    for p in panels {
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_u64().expect("gridPos"));
        assert!(x + w <= 24, "{} is wider than the grid", p["title"]);
        for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
            assert!(cells.insert(cell), "{} overlaps another panel", p["title"]);
        }
    }
}
