//! Messages to one topic through rskafka, each produce request acknowledged by all in-sync replicas (acks=all):
//! `Ok` means the brokers hold every message. Messages spread over the topic's partitions (round robin, as
//! Heapster's producer did, or by affinity for event versions) in requests cut below Kafka's default
//! `message.max.bytes`, so a large batch is not refused as one oversized record batch.
//!
//! A broker that cannot be reached (or answers with a transient error after rskafka's own retries) makes the whole
//! batch worth a retry; an error that the same messages would meet again (MessageTooLarge, UnknownTopicOrPartition,
//! authorization) is counted per cause and the batch rejected.

use super::config::{Compression, KafkaConfig, Tls};
use super::encoder::Message;
use crate::SinkError;
use crate::self_metrics::SinkCounters;
use rskafka::BackoffConfig;
use rskafka::client::error::{Error, ProtocolError};
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Uncompressed bytes per produce request: under the 1 MiB brokers take by default (`message.max.bytes`), with
/// room for the record batch's own headers.
pub const MAX_REQUEST_BYTES: usize = 900 * 1024;

/// How long rskafka retries a broker that does not answer before the batch goes back to the manager's queue
/// (Heapster's producer dialled for 10 s).
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Above the 30 s the brokers are given to gather acknowledgements: a broker that took the request and then went
/// silent is a retry, not a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);

pub struct Producer {
    brokers: Vec<String>,
    topic: String,
    compression: rskafka::client::partition::Compression,
    sasl: Option<(String, String)>,
    tls: Option<Arc<rustls::ClientConfig>>,
    deadline: Duration,
    counters: SinkCounters,
    state: tokio::sync::Mutex<State>,
    round_robin: AtomicUsize,
}

#[derive(Default)]
struct State {
    client: Option<Arc<Client>>,
    partitions: BTreeMap<i32, Arc<PartitionClient>>,
}

impl Producer {
    /// Reads the TLS files now, so that a missing or unreadable one is a start-up error naming its option.
    pub fn new(config: &KafkaConfig, topic: &str, deadline: Duration, counters: SinkCounters) -> Result<Self, String> {
        let tls = config.tls.as_ref().map(tls_config).transpose()?.map(Arc::new);
        Ok(Producer {
            brokers: config.brokers.clone(),
            topic: topic.to_owned(),
            compression: match config.compression {
                Compression::None => rskafka::client::partition::Compression::NoCompression,
                Compression::Gzip => rskafka::client::partition::Compression::Gzip,
                Compression::Snappy => rskafka::client::partition::Compression::Snappy,
            },
            sasl: config.sasl.clone(),
            tls,
            deadline,
            counters,
            state: tokio::sync::Mutex::new(State::default()),
            round_robin: AtomicUsize::new(0),
        })
    }

    /// Produces every message; see the module docs for what `Ok`, `Retry` and `Reject` mean.
    pub async fn send(&self, messages: Vec<Message>) -> Result<(), SinkError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut state = self.state.lock().await;
        let result = self.send_locked(&mut state, messages).await;
        if matches!(result, Err(SinkError::Retry(_))) {
            // Start again from the bootstrap brokers: the cluster may have moved while it was away.
            *state = State::default();
        }
        result
    }

    async fn send_locked(&self, state: &mut State, messages: Vec<Message>) -> Result<(), SinkError> {
        let client = match &state.client {
            Some(c) => c.clone(),
            None => match self.connect().await {
                Ok(c) => {
                    let c = Arc::new(c);
                    state.client = Some(c.clone());
                    c
                }
                Err(SinkError::Reject(cause)) => {
                    self.counters.request("rejected");
                    self.counters.rejected(&cause, messages.len() as u64);
                    return Err(SinkError::Reject(self.describe(&format!("connect: {cause}"))));
                }
                Err(e) => return Err(e),
            },
        };
        let partitions = self.partitions(&client, state).await?;
        let Some(ids) = partitions else {
            let n = messages.len() as u64;
            self.counters.request("rejected");
            self.counters.rejected("UnknownTopicOrPartition", n);
            return Err(SinkError::Reject(format!(
                "{}: topic {:?} does not exist and the brokers did not create it",
                self.brokers.join(","),
                self.topic
            )));
        };
        let mut by_partition: BTreeMap<i32, Vec<rskafka::record::Record>> = BTreeMap::new();
        for m in messages {
            let i = match m.affinity {
                Some(a) => a as usize,
                None => self.round_robin.fetch_add(1, Ordering::Relaxed),
            };
            by_partition.entry(ids[i % ids.len()]).or_default().push(m.record);
        }
        let mut refused: Vec<String> = Vec::new();
        for (partition, records) in by_partition {
            let pc = self.partition_client(&client, state, partition).await?;
            for chunk in chunks(records) {
                let n = chunk.len() as u64;
                let produced = tokio::time::timeout(REQUEST_TIMEOUT, pc.produce(chunk, self.compression)).await;
                match produced {
                    Ok(Ok(_)) => {
                        self.counters.request("ok");
                        self.counters.written(n);
                    }
                    Err(_) => {
                        self.counters.request("timeout");
                        return Err(SinkError::Retry(self.describe(&format!("no answer within {REQUEST_TIMEOUT:?}"))));
                    }
                    Ok(Err(e)) => match verdict(&e) {
                        Verdict::Retry(outcome) => {
                            self.counters.request(outcome);
                            return Err(SinkError::Retry(self.describe(&e.to_string())));
                        }
                        Verdict::Reject(cause) => {
                            self.counters.request("rejected");
                            self.counters.rejected(&cause, n);
                            refused.push(format!("partition {partition}: {n} message(s): {cause}"));
                        }
                    },
                }
            }
        }
        match refused.is_empty() {
            true => Ok(()),
            false => Err(SinkError::Reject(self.describe(&format!("refused {}", refused.join("; "))))),
        }
    }

    fn describe(&self, what: &str) -> String {
        format!("kafka {} topic {}: {what}", self.brokers.join(","), self.topic)
    }

    async fn connect(&self) -> Result<Client, SinkError> {
        let mut b = ClientBuilder::new(self.brokers.clone()).client_id("heapster").backoff_config(BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
            deadline: Some(self.deadline),
        });
        if let Some(tls) = &self.tls {
            b = b.tls_config(tls.clone());
        }
        if let Some((user, password)) = &self.sasl {
            b = b.sasl_config(SaslConfig::Plain(Credentials::new(user.clone(), password.clone())));
        }
        match tokio::time::timeout(self.deadline + Duration::from_secs(5), b.build()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => match verdict(&e) {
                // The cause alone: it becomes the self-metrics' label.
                Verdict::Reject(cause) => Err(SinkError::Reject(cause)),
                Verdict::Retry(_) => {
                    self.counters.request("connect");
                    Err(SinkError::Retry(self.describe(&format!("connect: {}", heapster_net::error_chain(&e)))))
                }
            },
            Err(_) => {
                self.counters.request("connect");
                Err(SinkError::Retry(self.describe("connect: no answer")))
            }
        }
    }

    /// The topic's partitions, `None` when the brokers do not have (and would not create) the topic.
    async fn partitions(&self, client: &Client, state: &mut State) -> Result<Option<Vec<i32>>, SinkError> {
        let topics = client.list_topics().await.map_err(|e| self.retry_or_reject(e))?;
        if let Some(t) = topics.into_iter().find(|t| t.name == self.topic) {
            return Ok(Some(t.partitions.into_iter().collect()));
        }
        // Asking for the topic by name is what makes brokers with auto.create.topics.enable create it.
        match self.partition_client(client, state, 0).await {
            Ok(_) => Ok(Some(vec![0])),
            Err(SinkError::Reject(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn partition_client(
        &self,
        client: &Client,
        state: &mut State,
        partition: i32,
    ) -> Result<Arc<PartitionClient>, SinkError> {
        if let Some(pc) = state.partitions.get(&partition) {
            return Ok(pc.clone());
        }
        let pc = client
            .partition_client(self.topic.clone(), partition, UnknownTopicHandling::Error)
            .await
            .map_err(|e| self.retry_or_reject(e))?;
        let pc = Arc::new(pc);
        state.partitions.insert(partition, pc.clone());
        Ok(pc)
    }

    fn retry_or_reject(&self, e: Error) -> SinkError {
        match verdict(&e) {
            Verdict::Retry(outcome) => {
                self.counters.request(outcome);
                SinkError::Retry(self.describe(&heapster_net::error_chain(&e)))
            }
            Verdict::Reject(cause) => SinkError::Reject(self.describe(&cause)),
        }
    }
}

enum Verdict {
    /// Worth sending again, with the request outcome to count.
    Retry(&'static str),
    /// The same messages would be refused again, for this cause (Kafka's error name).
    Reject(String),
}

fn verdict(e: &Error) -> Verdict {
    use ProtocolError as P;
    match e {
        Error::ServerError { protocol_error, .. } => match protocol_error {
            // Transient by Kafka's own account (RetriableException subclasses) or a cluster in the middle of a move.
            P::RequestTimedOut
            | P::NetworkException
            | P::NotEnoughReplicas
            | P::NotEnoughReplicasAfterAppend
            | P::LeaderNotAvailable
            | P::NotLeaderOrFollower
            | P::BrokerNotAvailable
            | P::ReplicaNotAvailable
            | P::KafkaStorageError
            | P::CorruptMessage
            | P::ThrottlingQuotaExceeded => Verdict::Retry("server-busy"),
            other => Verdict::Reject(other.to_string()),
        },
        // rskafka retries a failed SASL exchange like a broken connection, until its deadline: the refusal is
        // found in the error's causes.
        _ => match sasl_refusal(e) {
            Some(cause) => Verdict::Reject(cause),
            None => Verdict::Retry("connect"),
        },
    }
}

/// The brokers' answer when they refused the SASL exchange (bad credentials, mechanism not enabled). rskafka
/// wraps it in its retry error without a `source()` link, so the typed error is looked for along the chain and,
/// past that break, in the text the wrapper keeps (`Sasl handshake failed: API error: <Kafka error name>`).
fn sasl_refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        match err.downcast_ref::<rskafka::SaslError>() {
            Some(rskafka::SaslError::ApiError(api)) => return Some(api.to_string()),
            Some(rskafka::SaslError::UnsupportedSaslMechanism) => return Some("UnsupportedSaslMechanism".to_owned()),
            _ => {}
        }
        cur = err.source();
    }
    const MARK: &str = "Sasl handshake failed: API error: ";
    let text = e.to_string();
    let at = text.find(MARK)? + MARK.len();
    let name: String = text[at..].chars().take_while(char::is_ascii_alphanumeric).collect();
    (!name.is_empty()).then_some(name)
}

/// Records in runs of at most [`MAX_REQUEST_BYTES`] (one record alone however large: the broker judges it).
fn chunks(records: Vec<rskafka::record::Record>) -> Vec<Vec<rskafka::record::Record>> {
    let mut out = vec![Vec::new()];
    let mut bytes = 0;
    for r in records {
        // Each record also carries about 20 bytes of lengths, deltas and attributes.
        let size = r.approximate_size() + 20;
        let current = out.last_mut().expect("never empty");
        if !current.is_empty() && bytes + size > MAX_REQUEST_BYTES {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        out.last_mut().expect("never empty").push(r);
    }
    out
}

fn tls_config(tls: &Tls) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if tls.insecure {
        // `insecuressl=true`: the brokers' certificates are taken unchecked.
        builder.dangerous().with_custom_certificate_verifier(Arc::new(heapster_net::AnyCertificate(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &tls.cacert {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("cacert={}: {e}", path.display()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("cacert={}: no certificate in the file", path.display()));
                }
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        builder.with_root_certificates(roots)
    };
    match &tls.cert_and_key {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cert={}: {e}", cert.display()))?;
            let k = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("key={}: {e}", key.display()))?;
            builder.with_client_auth_cert(certs, k).map_err(|e| format!("cert= and key=: {e}"))
        }
    }
}
