//! The entities a model path can name, and how each maps to a store key.

use crate::error::ApiError;
use heapster_model::{MetricSetType, keys};
use heapster_store::{SetInfo, Store};
use std::fmt;

/// One entity of the model, as named by a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    Cluster,
    Node(String),
    /// A node's system container (`freecontainers`): node, container.
    FreeContainer(String, String),
    Namespace(String),
    /// Namespace, pod.
    Pod(String, String),
    /// Namespace, pod, container.
    PodContainer(String, String, String),
}

impl Entity {
    /// The store key, built as the pipeline builds it.
    pub fn key(&self) -> String {
        match self {
            Entity::Cluster => keys::cluster_key(),
            Entity::Node(n) => keys::node_key(n),
            Entity::FreeContainer(n, c) => keys::node_container_key(n, c),
            Entity::Namespace(ns) => keys::namespace_key(ns),
            Entity::Pod(ns, p) => keys::pod_key(ns, p),
            Entity::PodContainer(ns, p, c) => keys::pod_container_key(ns, p, c),
        }
    }

    pub fn set_type(&self) -> MetricSetType {
        match self {
            Entity::Cluster => MetricSetType::Cluster,
            Entity::Node(_) => MetricSetType::Node,
            Entity::FreeContainer(..) => MetricSetType::SysContainer,
            Entity::Namespace(_) => MetricSetType::Namespace,
            Entity::Pod(..) => MetricSetType::Pod,
            Entity::PodContainer(..) => MetricSetType::PodContainer,
        }
    }

    /// The entity's set, or 404. A set whose `type` label disagrees with the path does not count: a node name
    /// such as `n1%2Fcontainer:x` must not reach the system container `node:n1/container:x`.
    pub fn lookup(&self, store: &Store) -> Result<SetInfo, ApiError> {
        store
            .set_info(&self.key())
            .filter(|info| info.set_type.is_none_or(|t| t == self.set_type()))
            .ok_or_else(|| ApiError::not_found(format!("{self} not found")))
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entity::Cluster => write!(f, "cluster"),
            Entity::Node(n) => write!(f, "node {n:?}"),
            Entity::FreeContainer(n, c) => write!(f, "free container {c:?} of node {n:?}"),
            Entity::Namespace(ns) => write!(f, "namespace {ns:?}"),
            Entity::Pod(ns, p) => write!(f, "pod {p:?} of namespace {ns:?}"),
            Entity::PodContainer(ns, p, c) => write!(f, "container {c:?} of pod {p:?} of namespace {ns:?}"),
        }
    }
}
