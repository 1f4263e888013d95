//! The metric and label tables of `docs/metrics.md`, rendered from the catalog so the docs cannot drift from the
//! code: a test fails when the file differs, and `UPDATE_DOCS=1 cargo test -p heapster-model` rewrites it.

use crate::catalog::CATALOG;
use crate::labels;
use std::fmt::Write;

/// Markdown tables of every metric and label.
pub fn metrics_markdown() -> String {
    let mut s = String::from(
        "# Metrics and labels\n\n\
         Generated from `crates/model/src/catalog.rs` and `labels.rs` by `UPDATE_DOCS=1 cargo test -p heapster-model`;\n\
         do not edit by hand. Rates are per second, in the units of their counter.\n\n\
         | metric | type | value | units | labelled | description |\n|---|---|---|---|---|---|\n",
    );
    for d in CATALOG {
        let value = match d.value_type {
            crate::ValueType::Int64 => "int64",
            crate::ValueType::Float => "float",
        };
        let labelled = if d.labeled { "yes" } else { "" };
        let _ = writeln!(
            s,
            "| `{}` | {} | {value} | {} | {labelled} | {} |",
            d.name,
            d.metric_type.as_str(),
            d.units.as_str(),
            d.description
        );
    }
    s.push_str("\n| label | description |\n|---|---|\n");
    for l in labels::ALL {
        let _ = writeln!(s, "| `{}` | {} |", l.key, l.description);
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_metrics_md_matches_the_catalog() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md");
        let want = super::metrics_markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(have == want, "docs/metrics.md is out of date: run UPDATE_DOCS=1 cargo test -p heapster-model");
    }
}
