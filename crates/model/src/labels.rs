//! Label names, as Heapster spelled them (`metrics/core/labels.go`), plus their descriptions for the docs.

use serde::Serialize;

/// The metric-set type: `pod_container`, `pod`, `ns`, `node`, `sys_container` or `cluster`.
pub const TYPE: &str = "type";
pub const POD_ID: &str = "pod_id";
pub const POD_NAME: &str = "pod_name";
/// The seed's name for the namespace of a pod; Heapster 1.x kept it beside `namespace_name`.
pub const POD_NAMESPACE: &str = "pod_namespace";
pub const NAMESPACE_NAME: &str = "namespace_name";
pub const NAMESPACE_ID: &str = "namespace_id";
pub const CONTAINER_NAME: &str = "container_name";
pub const CONTAINER_BASE_IMAGE: &str = "container_base_image";
pub const LABELS: &str = "labels";
pub const NODENAME: &str = "nodename";
pub const HOSTNAME: &str = "hostname";
pub const HOST_ID: &str = "host_id";
pub const RESOURCE_ID: &str = "resource_id";
pub const SCHEDULABLE: &str = "schedulable";
pub const CLUSTER_NAME: &str = "cluster_name";
pub const ACCELERATOR_MAKE: &str = "make";
pub const ACCELERATOR_MODEL: &str = "model";
pub const ACCELERATOR_ID: &str = "accelerator_id";
/// The replica that wrote a namespace or cluster roll-up of its own nodes (`--shard_export_rollups`). Added on the
/// way to the sinks only, never to the model's sets, so it is not in [`ALL`] (the export schema's labels).
pub const SHARD: &str = "shard";

/// A label name with what it means, for `metric-export-schema` and the docs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LabelDescriptor {
    pub key: &'static str,
    pub description: &'static str,
}

/// Every label heapster sets on metric sets or on labelled metrics.
pub const ALL: &[LabelDescriptor] = &[
    LabelDescriptor {
        key: TYPE,
        description: "Type of the metric set: pod_container, pod, ns, node, sys_container or cluster",
    },
    LabelDescriptor { key: POD_ID, description: "Unique ID of a pod" },
    LabelDescriptor { key: POD_NAME, description: "User-provided name of a pod" },
    LabelDescriptor { key: POD_NAMESPACE, description: "The namespace of a pod (the seed's name for namespace_name)" },
    LabelDescriptor { key: NAMESPACE_NAME, description: "The namespace of a pod or namespace" },
    LabelDescriptor { key: NAMESPACE_ID, description: "UID of the namespace" },
    LabelDescriptor {
        key: CONTAINER_NAME,
        description: "User-provided name of the container, or the cgroup path for system containers",
    },
    LabelDescriptor { key: CONTAINER_BASE_IMAGE, description: "Base image of the container" },
    LabelDescriptor { key: LABELS, description: "Comma-separated list of user-provided labels, each 'key:value'" },
    LabelDescriptor { key: NODENAME, description: "Node name where the container ran" },
    LabelDescriptor { key: HOSTNAME, description: "Hostname where the container ran" },
    LabelDescriptor { key: HOST_ID, description: "Identifier specific to a host, set by the cloud provider or user" },
    LabelDescriptor {
        key: RESOURCE_ID,
        description: "Identifier of one of several resources of the same kind, e.g. a filesystem or disk device",
    },
    LabelDescriptor { key: SCHEDULABLE, description: "Whether the node is schedulable" },
    LabelDescriptor { key: CLUSTER_NAME, description: "Name of the cluster, set by sinks that ask for it" },
    LabelDescriptor { key: ACCELERATOR_MAKE, description: "Make of the accelerator (nvidia, amd, google, ...)" },
    LabelDescriptor { key: ACCELERATOR_MODEL, description: "Model of the accelerator" },
    LabelDescriptor { key: ACCELERATOR_ID, description: "ID of the accelerator" },
];

/// The label map `{resource_id: id}` of a filesystem or disk metric, shared.
///
/// Every container has `resource_id=/` and `resource_id=logs`; one shared map per id (per thread, up to a few
/// thousand ids, then started afresh) instead of one per metric keeps a batch's labelled metrics small.
pub fn resource_id(id: &str) -> std::sync::Arc<crate::Labels> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::Arc;
    const MAX_CACHED: usize = 4096;
    thread_local! {
        static CACHE: RefCell<HashMap<String, Arc<crate::Labels>>> = RefCell::new(HashMap::new());
    }
    CACHE.with_borrow_mut(|cache| {
        if let Some(l) = cache.get(id) {
            return l.clone();
        }
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        let l = Arc::new(crate::Labels::from([(RESOURCE_ID.to_owned(), id.to_owned())]));
        cache.insert(id.to_owned(), l.clone());
        l
    })
}
