//! How an entity of a model path maps to the embedded store.

use crate::error::ApiError;
pub use heapster_model::historical::Entity;
use heapster_store::{SetInfo, Store};

/// The entity's set, or 404. A set whose `type` label disagrees with the path does not count: a node name such as
/// `n1%2Fcontainer:x` must not reach the system container `node:n1/container:x`.
pub(super) fn lookup(entity: &Entity, store: &Store) -> Result<SetInfo, ApiError> {
    store
        .set_info(&entity.key())
        .filter(|info| info.set_type.is_none_or(|t| t == entity.set_type()))
        .ok_or_else(|| ApiError::not_found(format!("{entity} not found")))
}
