//! A strict single-broker stand-in for Kafka, for the default suite (a real broker, `tansu`, takes half an hour to
//! build here: `scripts/kafka-tansu` runs the same tests against one). It speaks the published wire protocol
//! (size-prefixed frames, request header v1/v2, the message schemas of Kafka's `clients/src/main/resources/common/
//! message/*.json`) through the `kafka-protocol` crate, an implementation independent of the sink's client, and
//! answers enough for a producer and for an independent consumer (`kafka-python`) to read back what was produced:
//! ApiVersions, Metadata, Produce (record batches v2, their CRC-32C checked), ListOffsets, Fetch, and SASL PLAIN
//! when told to require it.
//!
//! Strict: a request that does not decode, leaves bytes over, uses an API or version it did not advertise, comes
//! before SASL authentication when that is required, or produces with other than acks=all is a violation: logged
//! on stderr, kept for the test to assert on ([`KafkaFake::violations`]), and the connection closed. Refusals a
//! real broker makes are answered as it does: UNKNOWN_TOPIC_OR_PARTITION for a topic it does not have (topics are
//! created up front; there is no auto-creation), MESSAGE_TOO_LARGE for a record batch over `message.max.bytes`,
//! and whatever error code the test asks for the next partitions produced.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, decode_request_header_from_buffer};
use kafka_protocol::records::RecordBatchDecoder;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A default message with some fields set: the crate's messages are non-exhaustive.
macro_rules! make {
    ($t:ty { $($f:ident : $v:expr),* $(,)? }) => {{
        let mut x = <$t>::default();
        $(x.$f = $v;)*
        x
    }};
}

/// Kafka's error codes the fake answers with (`org.apache.kafka.common.protocol.Errors`).
pub mod errors {
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
}

/// Kafka's default `message.max.bytes`: the largest record batch a broker appends.
pub const MESSAGE_MAX_BYTES: usize = 1_048_588;

/// The APIs and versions advertised: each version below was checked against the crate's schema for it. Produce
/// from v3 and Fetch from v4 carry record batches v2 only; Fetch stops before v13 (topic ids instead of names).
const APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 8),
    (ApiKey::Fetch, 4, 11),
    (ApiKey::ListOffsets, 1, 5),
    (ApiKey::Metadata, 0, 8),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// One record as produced, after the fake decoded its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
}

/// One record batch as appended to a partition's log: its bytes as the producer sent them (the base offset set by
/// the broker, as Kafka does; it is outside the CRC) and what it held.
struct Batch {
    bytes: Bytes,
    base_offset: i64,
    records: Vec<Record>,
    compression: String,
}

#[derive(Default)]
struct State {
    topics: BTreeMap<String, Vec<Vec<Batch>>>,
    max_message_bytes: usize,
    sasl: Option<(String, String)>,
    /// Error codes to answer the next produced partitions with, first first.
    refuse: Vec<i16>,
    drop_next: usize,
    violations: Vec<String>,
    produce_requests: usize,
}

/// A fake Kafka broker (node 0) on a free 127.0.0.1 port, until dropped.
pub struct KafkaFake {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl KafkaFake {
    /// A broker holding `topics` (name, partitions), all empty.
    pub fn start(topics: &[(&str, usize)]) -> KafkaFake {
        Self::start_on(0, topics)
    }

    /// [`KafkaFake::start`] on a given port (0: any free one), for a broker that comes back where it was.
    pub fn start_on(port: u16, topics: &[(&str, usize)]) -> KafkaFake {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = make!(State {
            topics: topics.iter().map(|(t, n)| ((*t).to_owned(), (0..*n).map(|_| Vec::new()).collect())).collect(),
            max_message_bytes: MESSAGE_MAX_BYTES
        });
        let (state, stop) = (Arc::new(Mutex::new(state)), Arc::new(AtomicBool::new(false)));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s, st) = (s.clone(), st.clone());
                        std::thread::spawn(move || serve(conn, port, &s, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        KafkaFake { port, state, stop }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requires SASL PLAIN with this user and password before any request but ApiVersions.
    pub fn require_sasl(&self, user: &str, password: &str) {
        self.state.lock().unwrap().sasl = Some((user.to_owned(), password.to_owned()));
    }

    /// The broker's `message.max.bytes`.
    pub fn set_max_message_bytes(&self, n: usize) {
        self.state.lock().unwrap().max_message_bytes = n;
    }

    /// Answers the next produced partitions with these error codes, one each.
    pub fn refuse_next(&self, codes: &[i16]) {
        self.state.lock().unwrap().refuse.extend_from_slice(codes);
    }

    /// Closes the connection instead of answering the next `n` produce requests (their records are not kept).
    pub fn drop_next(&self, n: usize) {
        self.state.lock().unwrap().drop_next = n;
    }

    /// Every record of a topic, partition by partition, in offset order.
    pub fn records(&self, topic: &str) -> Vec<Vec<Record>> {
        let s = self.state.lock().unwrap();
        s.topics[topic].iter().map(|p| p.iter().flat_map(|b| b.records.clone()).collect()).collect()
    }

    /// The compression of every batch appended to `topic`, as the batches' attributes said.
    pub fn compressions(&self, topic: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.topics[topic].iter().flatten().map(|b| b.compression.clone()).collect()
    }

    /// Record batches appended to `topic`.
    pub fn batches(&self, topic: &str) -> usize {
        self.state.lock().unwrap().topics[topic].iter().map(Vec::len).sum()
    }

    pub fn produce_requests(&self) -> usize {
        self.state.lock().unwrap().produce_requests
    }

    /// Requests that broke the protocol, in order; a passing test expects none.
    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }
}

impl Drop for KafkaFake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What to do after one request.
enum Next {
    Answer(BytesMut),
    Close,
}

fn serve(mut conn: TcpStream, port: u16, state: &Mutex<State>, stop: &AtomicBool) {
    conn.set_nonblocking(false).unwrap();
    let mut authenticated = false;
    let mut handshaken = false;
    loop {
        let body = match crate::read_frame(&mut conn, stop, 100 << 20) {
            crate::Frame::Body(body) => body,
            crate::Frame::TooLarge(size) => {
                violation(state, format!("frame size {}", size as i32));
                return;
            }
            crate::Frame::Closed => return,
        };
        let next = handle(Bytes::from(body), port, state, &mut handshaken, &mut authenticated).unwrap_or_else(|why| {
            violation(state, why);
            Next::Close
        });
        match next {
            Next::Answer(frame) => {
                if conn.write_all(&frame).is_err() {
                    return;
                }
            }
            Next::Close => return,
        }
    }
}

fn violation(state: &Mutex<State>, why: String) {
    eprintln!("kafka fake: protocol violation: {why}");
    state.lock().unwrap().violations.push(why);
}

/// Decodes a request body of the given version, refusing bytes left over.
fn body<T: Decodable>(buf: &mut Bytes, version: i16, what: &str) -> Result<T, String> {
    let t = T::decode(buf, version).map_err(|e| format!("{what} v{version} does not decode: {e:#}"))?;
    if buf.has_remaining() {
        return Err(format!("{what} v{version}: {} bytes after the request", buf.remaining()));
    }
    Ok(t)
}

fn handle(
    mut buf: Bytes,
    port: u16,
    state: &Mutex<State>,
    handshaken: &mut bool,
    authenticated: &mut bool,
) -> Result<Next, String> {
    if buf.len() < 4 {
        return Err(format!("request of {} bytes", buf.len()));
    }
    let header = decode_request_header_from_buffer(&mut buf).map_err(|e| format!("request header: {e:#}"))?;
    let key = ApiKey::try_from(header.request_api_key).map_err(|_| "unknown API key".to_owned())?;
    let v = header.request_api_version;
    let advertised = APIS.iter().find(|(k, _, _)| *k == key);
    let answer = |response: &dyn Fn(&mut BytesMut) -> anyhow_free::Result, version: i16| {
        frame(header.correlation_id, key.response_header_version(version), response)
            .map_err(|e| format!("{key:?} v{version}: {e}"))
    };
    if key == ApiKey::ApiVersions {
        let supported = v <= 3;
        let (request_ok, version) = if supported { (true, v) } else { (false, 0) };
        if supported {
            body::<ApiVersionsRequest>(&mut buf, v, "ApiVersions")?;
        }
        // An unknown newer version is answered in v0 with the versions there are, as Kafka does.
        let r = make!(ApiVersionsResponse {
            error_code: if request_ok { 0 } else { errors::UNSUPPORTED_VERSION },
            api_keys: APIS
                .iter()
                .map(|(k, min, max)| make!(ApiVersion { api_key: *k as i16, min_version: *min, max_version: *max }))
                .collect()
        });
        return answer(&|b| r.encode(b, version).map_err(|e| e.to_string()), version);
    }
    let Some((_, min, max)) = advertised else {
        return Err(format!("{key:?} was not advertised"));
    };
    if !(*min..=*max).contains(&v) {
        return Err(format!("{key:?} v{v} is outside the advertised v{min}-v{max}"));
    }
    let sasl = state.lock().unwrap().sasl.clone();
    match key {
        ApiKey::SaslHandshake => {
            let r: SaslHandshakeRequest = body(&mut buf, v, "SaslHandshake")?;
            let plain = r.mechanism.as_str() == "PLAIN";
            *handshaken = plain;
            let resp = make!(SaslHandshakeResponse {
                error_code: if plain && sasl.is_some() { 0 } else { errors::UNSUPPORTED_SASL_MECHANISM },
                mechanisms: sasl.iter().map(|_| StrBytes::from_static_str("PLAIN")).collect()
            });
            return answer(&|b| resp.encode(b, v).map_err(|e| e.to_string()), v);
        }
        ApiKey::SaslAuthenticate => {
            let r: SaslAuthenticateRequest = body(&mut buf, v, "SaslAuthenticate")?;
            if !*handshaken {
                return Err("SaslAuthenticate before a PLAIN SaslHandshake".to_owned());
            }
            // RFC 4616: [authzid] NUL authcid NUL passwd.
            let parts: Vec<&[u8]> = r.auth_bytes.split(|b| *b == 0).collect();
            let ok = match (&sasl, parts.as_slice()) {
                (Some((u, p)), [_, user, pass]) => user == &u.as_bytes() && pass == &p.as_bytes(),
                _ => false,
            };
            *authenticated = ok;
            let resp = make!(SaslAuthenticateResponse {
                error_code: if ok { 0 } else { errors::SASL_AUTHENTICATION_FAILED },
                error_message: (!ok)
                    .then(|| StrBytes::from_static_str("Authentication failed: Invalid username or password"))
            });
            return answer(&|b| resp.encode(b, v).map_err(|e| e.to_string()), v);
        }
        _ if sasl.is_some() && !*authenticated => {
            return Err(format!("{key:?} before SASL authentication"));
        }
        _ => {}
    }
    match key {
        ApiKey::Metadata => {
            let r: MetadataRequest = body(&mut buf, v, "Metadata")?;
            let s = state.lock().unwrap();
            // v0: an empty list means every topic; v1+: null does.
            let names: Vec<String> = match r.topics {
                Some(t) if !(v == 0 && t.is_empty()) => {
                    t.into_iter().filter_map(|t| t.name.map(|n| n.0.to_string())).collect()
                }
                _ => s.topics.keys().cloned().collect(),
            };
            let topics = names
                .into_iter()
                .map(|name| {
                    let partitions = s.topics.get(&name).map(Vec::len);
                    make!(MetadataResponseTopic {
                        error_code: if partitions.is_some() { 0 } else { errors::UNKNOWN_TOPIC_OR_PARTITION },
                        name: Some(TopicName(StrBytes::from_string(name))),
                        partitions: (0..partitions.unwrap_or(0) as i32)
                            .map(|p| make!(MetadataResponsePartition {
                                partition_index: p,
                                leader_id: BrokerId(0),
                                // Fields a version lacks stay at their defaults, or they cannot be encoded.
                                leader_epoch: if v >= 7 { 0 } else { -1 },
                                replica_nodes: vec![BrokerId(0)],
                                isr_nodes: vec![BrokerId(0)]
                            }))
                            .collect()
                    })
                })
                .collect();
            let resp = make!(MetadataResponse {
                brokers: vec![make!(MetadataResponseBroker {
                    node_id: BrokerId(0),
                    host: StrBytes::from_static_str("127.0.0.1"),
                    port: i32::from(port)
                })],
                cluster_id: (v >= 2).then(|| StrBytes::from_static_str("heapster-test")),
                controller_id: BrokerId(if v >= 1 { 0 } else { -1 }),
                topics: topics
            });
            answer(&|b| resp.encode(b, v).map_err(|e| e.to_string()), v)
        }
        ApiKey::Produce => {
            let r: ProduceRequest = body(&mut buf, v, "Produce")?;
            if r.acks != -1 {
                return Err(format!("Produce with acks={} (the sink must ask for acks=all, -1)", r.acks));
            }
            let mut s = state.lock().unwrap();
            s.produce_requests += 1;
            if s.drop_next > 0 {
                s.drop_next -= 1;
                return Ok(Next::Close);
            }
            let mut responses = Vec::new();
            for t in r.topic_data {
                let name = t.name.0.to_string();
                let mut partition_responses = Vec::new();
                for p in t.partition_data {
                    let (error_code, base_offset) = append(&mut s, &name, p.index, p.records)?;
                    partition_responses.push(make!(PartitionProduceResponse {
                        index: p.index,
                        error_code: error_code,
                        base_offset: base_offset,
                        log_append_time_ms: -1,
                        log_start_offset: if v >= 5 { 0 } else { -1 }
                    }));
                }
                responses.push(make!(TopicProduceResponse { name: t.name, partition_responses: partition_responses }));
            }
            let resp = make!(ProduceResponse { responses: responses });
            answer(&|b| resp.encode(b, v).map_err(|e| e.to_string()), v)
        }
        ApiKey::ListOffsets => {
            let r: ListOffsetsRequest = body(&mut buf, v, "ListOffsets")?;
            let s = state.lock().unwrap();
            let topics = r
                .topics
                .into_iter()
                .map(|t| {
                    let log = s.topics.get(t.name.0.as_str());
                    let partitions = t
                        .partitions
                        .into_iter()
                        .map(|p| {
                            let end = log.and_then(|l| l.get(p.partition_index as usize)).map(|b| end_offset(b));
                            let (error_code, offset) = match (end, p.timestamp) {
                                (None, _) => (errors::UNKNOWN_TOPIC_OR_PARTITION, -1),
                                (Some(_), -2) => (0, 0),
                                (Some(end), _) => (0, end),
                            };
                            make!(ListOffsetsPartitionResponse {
                                partition_index: p.partition_index,
                                error_code: error_code,
                                timestamp: -1,
                                offset: offset,
                                leader_epoch: if v >= 4 { 0 } else { -1 }
                            })
                        })
                        .collect();
                    make!(ListOffsetsTopicResponse { name: t.name, partitions: partitions })
                })
                .collect();
            let resp = make!(ListOffsetsResponse { topics: topics });
            answer(&|b| resp.encode(b, v).map_err(|e| e.to_string()), v)
        }
        ApiKey::Fetch => {
            let r: FetchRequest = body(&mut buf, v, "Fetch")?;
            let build = |s: &State| -> (FetchResponse, bool) {
                let mut any = false;
                let responses = r
                    .topics
                    .iter()
                    .map(|t| {
                        let log = s.topics.get(t.topic.0.as_str());
                        let partitions = t
                            .partitions
                            .iter()
                            .map(|p| {
                                let mut d = make!(PartitionData { partition_index: p.partition });
                                match log.and_then(|l| l.get(p.partition as usize)) {
                                    None => d.error_code = errors::UNKNOWN_TOPIC_OR_PARTITION,
                                    Some(batches) => {
                                        let end = end_offset(batches);
                                        d.high_watermark = end;
                                        d.last_stable_offset = end;
                                        d.log_start_offset = if v >= 5 { 0 } else { -1 };
                                        d.aborted_transactions = Some(Vec::new());
                                        if p.fetch_offset < 0 || p.fetch_offset > end {
                                            d.error_code = errors::OFFSET_OUT_OF_RANGE;
                                        } else {
                                            let mut out = BytesMut::new();
                                            for b in batches
                                                .iter()
                                                .filter(|b| b.base_offset + b.records.len() as i64 > p.fetch_offset)
                                            {
                                                // At least one batch, then whole batches up to the partition's limit.
                                                if !out.is_empty()
                                                    && out.len() + b.bytes.len() > p.partition_max_bytes as usize
                                                {
                                                    break;
                                                }
                                                out.put_slice(&b.bytes);
                                            }
                                            any |= !out.is_empty();
                                            d.records = Some(out.freeze());
                                        }
                                    }
                                }
                                d
                            })
                            .collect();
                        make!(FetchableTopicResponse { topic: t.topic.clone(), partitions: partitions })
                    })
                    .collect();
                (make!(FetchResponse { responses: responses }), any)
            };
            // Long polling, as a broker does: wait up to max_wait_ms (capped) for records.
            let deadline = std::time::Instant::now() + Duration::from_millis(r.max_wait_ms.clamp(0, 500) as u64);
            let resp = loop {
                let (resp, any) = build(&state.lock().unwrap());
                if any || std::time::Instant::now() >= deadline {
                    break resp;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            answer(&|b| resp.encode(b, v).map_err(|e| e.to_string()), v)
        }
        other => Err(format!("{other:?} is not served")),
    }
}

fn end_offset(batches: &[Batch]) -> i64 {
    batches.last().map(|b| b.base_offset + b.records.len() as i64).unwrap_or(0)
}

/// Checks and appends one partition's records; the error code and base offset to answer, or a violation.
fn append(s: &mut State, topic: &str, partition: i32, records: Option<Bytes>) -> Result<(i16, i64), String> {
    let Some(mut raw) = records else {
        return Err(format!("Produce to {topic}/{partition} without records"));
    };
    let size = raw.len();
    let max = s.max_message_bytes;
    let mut check = raw.clone();
    let sets = RecordBatchDecoder::decode_all(&mut check).map_err(|e| format!("{topic}/{partition}: {e:#}"))?;
    if sets.len() != 1 {
        return Err(format!(
            "{topic}/{partition}: {} record batches in one produce (a producer sends one)",
            sets.len()
        ));
    }
    let set = &sets[0];
    if set.version != 2 {
        return Err(format!("{topic}/{partition}: record batch v{}", set.version));
    }
    // The producer numbers records from 0 within the batch (Kafka's LogValidator refuses anything else).
    if set.records.iter().enumerate().any(|(i, r)| r.offset != i as i64) {
        return Err(format!("{topic}/{partition}: record offsets are not 0..n-1"));
    }
    if !s.refuse.is_empty() {
        return Ok((s.refuse.remove(0), -1));
    }
    let Some(log) = s.topics.get_mut(topic).and_then(|t| t.get_mut(partition as usize)) else {
        return Ok((errors::UNKNOWN_TOPIC_OR_PARTITION, -1));
    };
    if size > max {
        return Ok((errors::MESSAGE_TOO_LARGE, -1));
    }
    let base = end_offset(log);
    let mut bytes = BytesMut::with_capacity(size);
    bytes.put_i64(base);
    raw.advance(8);
    bytes.put_slice(&raw);
    log.push(Batch {
        bytes: bytes.freeze(),
        base_offset: base,
        records: set
            .records
            .iter()
            .map(|r| Record {
                offset: base + r.offset,
                key: r.key.as_ref().map(|k| k.to_vec()),
                value: r.value.as_ref().map(|k| k.to_vec()),
                timestamp: r.timestamp,
            })
            .collect(),
        compression: format!("{:?}", set.compression),
    });
    Ok((0, base))
}

/// Small error alias for response encoders, so the closure type stays short.
mod anyhow_free {
    pub type Result = std::result::Result<(), String>;
}

/// A size-prefixed response: header of `header_version`, then the body.
fn frame(
    correlation_id: i32,
    header_version: i16,
    body: &dyn Fn(&mut BytesMut) -> anyhow_free::Result,
) -> Result<Next, String> {
    let mut b = BytesMut::new();
    b.put_i32(0);
    let header = make!(ResponseHeader { correlation_id: correlation_id });
    header.encode(&mut b, header_version).map_err(|e| format!("response header: {e}"))?;
    body(&mut b).map_err(|e| format!("response body (header v{header_version}): {e}"))?;
    let n = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&n.to_be_bytes());
    Ok(Next::Answer(b))
}

/// The env var that points the Kafka tests at a real broker (`HOST:PORT`, set by `scripts/kafka-tansu`) instead of
/// the fake. Its topics must be creatable by the tests.
pub const REAL_BROKER_ENV: &str = "HEAPSTER_TEST_KAFKA";

/// The real broker to test against, if [`REAL_BROKER_ENV`] names one.
pub fn real_broker() -> Option<String> {
    std::env::var(REAL_BROKER_ENV).ok().filter(|s| !s.is_empty())
}

/// One message as kafka-python read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ReadBack {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<String>,
    pub value: Option<String>,
}

/// Every message of `topic` as the independent Python client (`kafka-python`, installed by scripts/test) reads it
/// from the broker at `bootstrap`, partition by partition in offset order.
pub fn read_back(bootstrap: &str, topic: &str, sasl: Option<(&str, &str)>) -> Vec<ReadBack> {
    let python = crate::find_program(&["python3"]).expect("python3 is not on the PATH (Debian package python3)");
    let has_module =
        std::process::Command::new(&python).args(["-c", "import kafka"]).status().map(|s| s.success()).unwrap_or(false);
    assert!(
        has_module,
        "the Python module kafka is missing: python3 -m pip install kafka-python==2.2.15 (scripts/test)"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/kafka_read.py");
    let mut cmd = std::process::Command::new(python);
    cmd.arg(script).arg(bootstrap).arg(topic);
    if let Some((u, p)) = sasl {
        cmd.arg(u).arg(p);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "kafka_read.py failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}
