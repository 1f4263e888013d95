//! The data model every other heapster crate speaks: what a metric is, which metrics exist, how metric sets are
//! keyed and labelled, and what one scrape round (a [`DataBatch`]) holds.
//!
//! The catalog in [`catalog`] is the single source of truth for metric names, units and types: the HTTP APIs list
//! it, sinks derive their schemas from it, and the README's metric table is checked against it. Nothing here does
//! I/O, so every stage of the pipeline (sources -> processors -> store and sinks -> api) can depend on it.

pub mod batch;
pub mod cadvisor;
pub mod cardinality;
pub mod catalog;
pub mod docs;
pub mod events;
pub mod historical;
pub mod keys;
pub mod label_value;
pub mod labels;
pub mod metadata;
pub mod metric_map;
pub mod options;
pub mod quantity;
pub mod shared;
pub mod time;
pub mod uri;
pub mod varint;

pub use batch::{DataBatch, LabeledMetric, Labels, MetricSet, MetricValue, Timestamp};
pub use catalog::{CATALOG, MetricDescriptor, MetricType, Units, ValueType};
pub use keys::MetricSetType;
pub use label_value::LabelValue;
pub use metric_map::MetricMap;
pub use options::{ConfigError, KindDoc, OptionSpec, Options};
pub use uri::SpecUri;
