//! Riemann's wire messages, from its published `proto.proto` (riemann/riemann-java-client, as vendored by
//! riemann-go-client): the fields heapster sends and the server answers, with their numbers and types. Written out
//! with prost's derive rather than generated, so no `protoc` is needed to build; testkit's fake decodes with this
//! same file, and the golden bytes in the tests pin it to the published field numbers.

/// A request (`events`) or an answer (`ok`, `error`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Msg {
    #[prost(bool, optional, tag = "2")]
    pub ok: Option<bool>,
    #[prost(string, optional, tag = "3")]
    pub error: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub query: Option<Query>,
    #[prost(message, repeated, tag = "6")]
    pub events: Vec<Event>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Query {
    #[prost(string, optional, tag = "1")]
    pub string: Option<String>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Event {
    /// Seconds since the epoch.
    #[prost(int64, optional, tag = "1")]
    pub time: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub state: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub service: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub host: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub description: Option<String>,
    #[prost(string, repeated, tag = "7")]
    pub tags: Vec<String>,
    /// Seconds the event stays valid in Riemann's index.
    #[prost(float, optional, tag = "8")]
    pub ttl: Option<f32>,
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<Attribute>,
    #[prost(sint64, optional, tag = "13")]
    pub metric_sint64: Option<i64>,
    #[prost(double, optional, tag = "14")]
    pub metric_d: Option<f64>,
    #[prost(float, optional, tag = "15")]
    pub metric_f: Option<f32>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Attribute {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn bytes_as_the_published_proto_numbers_them() {
        let e = Event {
            time: Some(1),
            service: Some("s".into()),
            host: Some("h".into()),
            ttl: Some(60.0),
            tags: vec!["t".into()],
            attributes: vec![Attribute { key: "k".into(), value: Some("v".into()) }],
            metric_sint64: Some(-2),
            ..Default::default()
        };
        let msg = Msg { events: vec![e], ..Default::default() }.encode_to_vec();
        #[rustfmt::skip]
        let want = [
            0x32, 26, // events (6, length-delimited)
            0x08, 1, // time (1, varint)
            0x1a, 1, b's', // service (3)
            0x22, 1, b'h', // host (4)
            0x3a, 1, b't', // tags (7)
            0x45, 0x00, 0x00, 0x70, 0x42, // ttl (8, 32-bit float 60.0)
            0x4a, 6, 0x0a, 1, b'k', 0x12, 1, b'v', // attributes (9): key (1), value (2)
            0x68, 3, // metric_sint64 (13, zigzag: -2 -> 3)
        ];
        assert_eq!(msg, want);
        assert_eq!(Msg { ok: Some(true), ..Default::default() }.encode_to_vec(), [0x10, 1]);
    }
}
