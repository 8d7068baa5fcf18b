//! deploy/grafana/dbmazz.json only queries metrics that /metrics exports.

use std::collections::BTreeSet;

/// Every sample name the exposition can contain: counters with `_total`, histograms with
/// `_bucket`/`_sum`/`_count`, gauges as is.
fn exported_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_string());
            }
        }
    }
    names
}

fn metric_names_in(expression: &str) -> Vec<String> {
    let bytes = expression.as_bytes();
    let mut names = Vec::new();
    let mut index = 0;
    while let Some(found) = expression[index..].find("dbmazz_") {
        let start = index + found;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        names.push(expression[start..end].to_string());
        index = end;
    }
    names
}

#[test]
fn grafana_dashboard_queries_only_exported_metrics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/dbmazz.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let exported = exported_names(&dbmazz::ops::metrics().render());
    assert!(exported.contains("dbmazz_rows_total"), "{exported:?}");
    let mut queried = BTreeSet::new();
    let mut expressions = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            expressions.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"].as_str() {
            expressions.push(query.to_string());
        }
    }
    for expression in &expressions {
        for name in metric_names_in(expression) {
            assert!(
                exported.contains(&name),
                "the dashboard queries {name}, which /metrics does not export ({expression})"
            );
            queried.insert(name);
        }
    }
    // Every metric family has a panel.
    for name in &exported {
        let family = name
            .trim_end_matches("_total")
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            queried.iter().any(|queried| queried.starts_with(family)),
            "no dashboard panel shows {name}"
        );
    }
}

#[test]
fn the_http_api_doc_lists_every_exported_metric() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/http-api.md"
    ))
    .unwrap();
    for name in exported_names(&dbmazz::ops::metrics().render()) {
        let family = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            doc.contains(family),
            "docs/http-api.md does not mention {family}"
        );
    }
}
