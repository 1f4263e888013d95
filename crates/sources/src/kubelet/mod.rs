//! The kubelet Summary API (`GET /stats/summary`) as a metric source: [`summary`] decodes the document,
//! [`convert`] turns it into heapster's node, system-container, pod and container sets.
//!
//! Decoding and conversion are separate, pure steps, so that they can be tested against recorded kubelet responses
//! and benchmarked without a network; [`client`] fetches the document and only feeds them, and [`source`] is the
//! two as one kubelet's [`crate::MetricsSource`].

pub mod client;
pub mod convert;
pub mod source;
pub mod summary;

pub use client::{ClientConfig, KEPT_RESERVE, KubeletClient, KubeletTls, ScrapeError, kept_connection_budget};
pub use convert::{Duplicates, summary_to_sets, summary_to_sets_counted};
pub use source::KubeletSource;
pub use summary::{Summary, decode};

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod tests;
