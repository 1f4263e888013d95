//! Copies Kubernetes object labels onto metric sets, as Heapster's `metrics/util/label_copier.go`, configured by
//! the same flags: `--label_separator`, `--ignore_label` and `--store_label`.
//!
//! - Every label not ignored becomes `key:value`; the pairs are sorted and joined by the separator into the single
//!   metric label `labels` (`app:web,tier:front`). A pod without labels gets `labels=""`, as in Heapster, so the
//!   series always carries the tag.
//! - A stored label is also copied to a metric label of its own: `--store_label=app` copies `app` to `app`,
//!   `--store_label=application=app` copies the Kubernetes label `app` to the metric label `application`.
//!   Storing and ignoring are independent: a label can be stored and left out of `labels`.
//!
//! Neither keys nor values are escaped, so a value that contains the separator makes `labels` ambiguous; Heapster
//! had the same limit and users pick a separator their labels do not use.

use heapster_model::labels::LABELS;
use heapster_model::{LabelValue, Labels};
use std::collections::{HashMap, HashSet};

/// How pod (and node) labels become metric labels. The defaults are Heapster's flag defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEnricherConfig {
    /// `--label_separator`: joins `key:value` pairs in the `labels` label. Default `,`.
    pub label_separator: String,
    /// `--ignore_label`: Kubernetes label keys left out of `labels`.
    pub ignore_labels: Vec<String>,
    /// `--store_label`: `name` or `newName=name`; the Kubernetes label `name` is also copied to its own metric
    /// label (`name`, or `newName`).
    pub store_labels: Vec<String>,
}

impl Default for PodEnricherConfig {
    fn default() -> Self {
        PodEnricherConfig { label_separator: ",".to_owned(), ignore_labels: Vec::new(), store_labels: Vec::new() }
    }
}

/// [`PodEnricherConfig`], parsed once for the per-set path.
#[derive(Debug, Clone)]
pub struct LabelCopier {
    separator: String,
    /// Kubernetes label key -> metric label key.
    stored: HashMap<String, String>,
    ignored: HashSet<String>,
}

impl LabelCopier {
    /// Parses `--store_label` entries (`name` or `newName=name`, split at the first `=` as Heapster did).
    pub fn new(config: &PodEnricherConfig) -> Self {
        let stored = config
            .store_labels
            .iter()
            .map(|s| match s.split_once('=') {
                Some((new_name, name)) => (name.to_owned(), new_name.to_owned()),
                None => (s.clone(), s.clone()),
            })
            .collect();
        LabelCopier {
            separator: config.label_separator.clone(),
            stored,
            ignored: config.ignore_labels.iter().cloned().collect(),
        }
    }

    /// The `labels` value for these Kubernetes labels: sorted `key:value` pairs, ignored keys left out.
    pub fn joined(&self, k8s: &Labels) -> LabelValue {
        // Labels iterate by key, so the pairs come out sorted by key; Heapster sorted the `key:value` strings,
        // which orders the same except where one key is a prefix of another followed by a byte below ':'
        // (`a-b` vs `a`). Sort the strings to match Heapster exactly.
        let mut pairs: Vec<String> =
            k8s.iter().filter(|(k, _)| !self.ignored.contains(k.as_ref())).map(|(k, v)| format!("{k}:{v}")).collect();
        pairs.sort_unstable();
        pairs.join(&self.separator).into()
    }

    /// Sets `labels` and the stored labels on `out`.
    pub fn copy(&self, k8s: &Labels, out: &mut Labels) {
        self.copy_joined(k8s, &self.joined(k8s), out);
    }

    /// [`LabelCopier::copy`] with `joined` already made by [`LabelCopier::joined`] from the same `k8s` labels:
    /// every container of a pod gets the same `labels` value, so the pod enricher joins them once per pod.
    pub fn copy_joined(&self, k8s: &Labels, joined: &LabelValue, out: &mut Labels) {
        if !self.stored.is_empty() {
            for (key, value) in k8s {
                if let Some(metric_key) = self.stored.get(key.as_ref()) {
                    out.insert(metric_key.clone(), value.clone());
                }
            }
        }
        out.insert(LABELS, joined.clone());
    }
}

impl Default for LabelCopier {
    fn default() -> Self {
        LabelCopier::new(&PodEnricherConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k8s(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn joins_sorted_pairs_with_the_separator() {
        let c = LabelCopier::default();
        assert_eq!(c.joined(&k8s(&[("tier", "front"), ("app", "web")])), "app:web,tier:front");
        assert_eq!(c.joined(&k8s(&[])), "");
        let semi = LabelCopier::new(&PodEnricherConfig { label_separator: ";".into(), ..Default::default() });
        assert_eq!(semi.joined(&k8s(&[("tier", "front"), ("app", "web")])), "app:web;tier:front");
    }

    #[test]
    fn sorts_the_pair_strings_as_heapster_did() {
        // "a-b:1" < "a:2" because '-' (0x2d) < ':' (0x3a), although key "a" < key "a-b".
        assert_eq!(LabelCopier::default().joined(&k8s(&[("a", "2"), ("a-b", "1")])), "a-b:1,a:2");
    }

    #[test]
    fn ignores_and_stores() {
        let c = LabelCopier::new(&PodEnricherConfig {
            label_separator: ",".into(),
            ignore_labels: vec!["pod-template-hash".into(), "version".into()],
            store_labels: vec!["app".into(), "release=version".into()],
        });
        let mut out = Labels::new();
        c.copy(&k8s(&[("app", "web"), ("pod-template-hash", "5d9f"), ("version", "v2"), ("tier", "front")]), &mut out);
        assert_eq!(out[LABELS], "app:web,tier:front");
        assert_eq!(out["app"], "web");
        assert_eq!(out["release"], "v2", "stored under its new name even though ignored in `labels`");
        assert!(!out.contains_key("version"));
        assert!(!out.contains_key("tier"));
    }

    #[test]
    fn a_stored_label_the_object_lacks_is_not_set() {
        let c = LabelCopier::new(&PodEnricherConfig { store_labels: vec!["app".into()], ..Default::default() });
        let mut out = Labels::new();
        c.copy(&k8s(&[("tier", "front")]), &mut out);
        assert!(!out.contains_key("app"));
        assert_eq!(out[LABELS], "tier:front");
    }
}
