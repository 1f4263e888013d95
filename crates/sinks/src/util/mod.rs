//! What sinks share, so that a new sink is its own folder and nothing else (Vector's `sinks/util`, our size):
//! [`http`] for the sinks that speak HTTP.

pub mod http;
