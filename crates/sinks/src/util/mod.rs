//! What sinks share, so that a new sink is its own folder and nothing else (Vector's `sinks/util`, our size):
//! [`http`] for the sinks that speak HTTP, [`transport`] for those that write TCP lines, UDP datagrams or framed
//! TCP.

pub mod google;
pub mod http;
pub mod json_batch;
#[cfg(test)]
pub mod test_support;
pub mod transport;
