//! What the JSON-batch HTTP sinks (Honeycomb, Librato, Hawkular) share: items cut into JSON array bodies under an
//! API's count and size limits, one POST judged into written / refused-by-cause / retry, and a record of what a
//! batch already delivered so that the manager's retry of the same batch does not send it twice.
//!
//! These APIs answer a whole request (Librato, Hawkular) or each item of it (Honeycomb's batch API) and have no
//! idempotency key, so the only way not to duplicate on a retry is not to send again what was already taken.

use crate::SinkError;
use crate::util::http::{Answer, HttpClient, Verdict};
use heapster_model::{Labels, MetricSet, MetricValue};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

/// One request body: a JSON document holding `items` items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonBody {
    pub text: String,
    pub items: usize,
    /// The caller's keys of the items, in order (for per-item answers and [`Delivered`]).
    pub keys: Vec<String>,
}

/// Items (each already JSON) cut into bodies `open item,item,... close` of at most `max_items` items and
/// `max_bytes` bytes. An item that alone is over `max_bytes` is refused by [`JsonArrays::push`], for the caller to
/// count: the server would refuse the request it is in.
#[derive(Debug)]
pub struct JsonArrays {
    max_items: usize,
    max_bytes: usize,
    open: String,
    close: &'static str,
    done: Vec<JsonBody>,
    body: String,
    keys: Vec<String>,
}

impl JsonArrays {
    /// `open` and `close` wrap the items: `[` and `]` for a bare array, `{"tags":{..},"measurements":[` and `]}`
    /// for Librato's object.
    pub fn new(max_items: usize, max_bytes: usize, open: impl Into<String>, close: &'static str) -> Self {
        let open = open.into();
        JsonArrays {
            max_items: max_items.max(1),
            max_bytes,
            body: open.clone(),
            open,
            close,
            done: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Adds one item under `key`; false (and nothing added) when the item alone does not fit in a body.
    pub fn push(&mut self, key: impl Into<String>, item: &str) -> bool {
        let frame = self.open.len() + self.close.len();
        if item.len() + frame > self.max_bytes {
            return false;
        }
        let comma = usize::from(!self.keys.is_empty());
        if !self.keys.is_empty() && self.body.len() + comma + item.len() + self.close.len() > self.max_bytes {
            self.cut();
        }
        if !self.keys.is_empty() {
            self.body.push(',');
        }
        self.body.push_str(item);
        self.keys.push(key.into());
        if self.keys.len() >= self.max_items {
            self.cut();
        }
        true
    }

    fn cut(&mut self) {
        let mut text = std::mem::replace(&mut self.body, self.open.clone());
        text.push_str(self.close);
        let keys = std::mem::take(&mut self.keys);
        self.done.push(JsonBody { text, items: keys.len(), keys });
    }

    /// The bodies, in the order the items came.
    pub fn finish(mut self) -> Vec<JsonBody> {
        if !self.keys.is_empty() {
            self.cut();
        }
        self.done
    }
}

/// Points refused, by cause, over one export: counted as they come, and told in one line at the end.
#[derive(Debug, Default)]
pub struct Refusals {
    causes: BTreeMap<String, u64>,
    example: Option<String>,
}

impl Refusals {
    pub fn add(&mut self, cause: &str, points: u64, example: &str) {
        *self.causes.entry(cause.to_owned()).or_default() += points;
        self.example.get_or_insert_with(|| short(example).to_owned());
    }

    pub fn is_empty(&self) -> bool {
        self.causes.is_empty()
    }

    /// `Ok` when nothing was refused, else the `Reject` the manager counts and does not retry: `server` refused
    /// `N` points (causes): the first message.
    pub fn into_result(self, server: &str) -> Result<(), SinkError> {
        if self.causes.is_empty() {
            return Ok(());
        }
        let n: u64 = self.causes.values().sum();
        let causes: Vec<&str> = self.causes.keys().map(String::as_str).collect();
        Err(SinkError::Reject(format!(
            "{server} refused {n} points ({}): {}",
            causes.join(", "),
            self.example.unwrap_or_default()
        )))
    }
}

/// What one POST came to once the transport and 5xx were taken care of.
pub enum Posted {
    Accepted(Answer),
    Refused { cause: String, answer: Answer },
}

/// Sends `request` through `http` (judged by `judge`, else by status) and returns the answer when it was
/// accepted or refused; a retryable answer is a [`SinkError::Retry`] naming `server`, the status and the answer.
pub async fn post(
    http: &HttpClient,
    request: reqwest::RequestBuilder,
    server: &str,
    judge: impl FnOnce(&Answer) -> Option<Verdict>,
) -> Result<Posted, SinkError> {
    let (verdict, answer) = http.send(request, judge).await?;
    match verdict {
        Verdict::Accepted => Ok(Posted::Accepted(answer)),
        Verdict::Retry { cause } => {
            Err(SinkError::Retry(format!("{server} answered {} ({cause}): {}", answer.status, short(&answer.text))))
        }
        Verdict::Reject { cause } => Ok(Posted::Refused { cause: cause.into_owned(), answer }),
    }
}

/// The first 300 characters of a server's message, trimmed: enough to read, never a whole page in a log line.
pub fn short(text: &str) -> &str {
    let t = text.trim();
    match t.char_indices().nth(300) {
        Some((i, _)) => &t[..i],
        None => t,
    }
}

/// The keys of the items a batch already delivered, kept while the manager or the eventer retries that batch (it
/// retries the same batch, first in line, until it is taken), so a retry sends only what the server did not take.
/// A new batch forgets the last one's keys: memory stays one batch.
#[derive(Debug, Default)]
pub struct Delivered {
    inner: Mutex<(u64, HashSet<String>)>,
}

impl Delivered {
    /// Starts the batch with identity `batch`, or resumes it when it is the one last begun (a retry).
    pub fn begin(&self, batch: u64) -> DeliveredBatch<'_> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 != batch {
            *g = (batch, HashSet::new());
        }
        DeliveredBatch { owner: self }
    }
}

/// One batch's view of [`Delivered`].
pub struct DeliveredBatch<'a> {
    owner: &'a Delivered,
}

impl DeliveredBatch<'_> {
    pub fn done(&self, key: &str) -> bool {
        self.owner.inner.lock().unwrap_or_else(|e| e.into_inner()).1.contains(key)
    }

    pub fn mark(&self, keys: impl IntoIterator<Item = String>) {
        self.owner.inner.lock().unwrap_or_else(|e| e.into_inner()).1.extend(keys);
    }
}

/// Every value of a metric set: its metrics, then its labelled metrics with their own labels.
pub fn values(set: &MetricSet) -> impl Iterator<Item = (&str, MetricValue, Option<&Labels>)> {
    let plain = set.metrics.iter().map(|(name, v)| (&**name, *v, None));
    plain.chain(set.labeled_metrics.iter().map(|m| (&*m.name, m.value, Some(&*m.labels))))
}

/// An identity of a batch for [`Delivered`]: a hash of what distinguishes it (its timestamp and its keys).
pub fn batch_identity<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = foldhash::fast::FixedState::with_seed(0x6865_6170).build_hasher();
    for p in parts {
        h.write(p.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_cut_by_count_and_bytes_and_an_oversize_item_is_refused() {
        let cut = |max_items, max_bytes, items: &[&str]| {
            let mut a = JsonArrays::new(max_items, max_bytes, "[", "]");
            let took: Vec<bool> = items.iter().enumerate().map(|(i, it)| a.push(i.to_string(), it)).collect();
            (took, a.finish().into_iter().map(|b| (b.text, b.keys)).collect::<Vec<_>>())
        };
        let (_, bodies) = cut(2, usize::MAX, &["1", "2", "3"]);
        assert_eq!(
            bodies,
            [("[1,2]".to_owned(), vec!["0".to_owned(), "1".to_owned()]), ("[3]".into(), vec!["2".into()])]
        );
        // 9 bytes at most: "[111,222]" fits exactly, "333" opens the next.
        let (_, bodies) = cut(10, 9, &["111", "222", "333"]);
        assert_eq!(bodies.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(), ["[111,222]", "[333]"]);
        let (took, bodies) = cut(10, 9, &["1", "12345678", "2"]);
        assert_eq!(took, [true, false, true]);
        assert_eq!(bodies.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(), ["[1,2]"]);
        let mut a = JsonArrays::new(10, 100, "{\"m\":[", "]}");
        a.push("a", "{}");
        assert_eq!(a.finish()[0].text, "{\"m\":[{}]}");
        assert!(JsonArrays::new(1, 10, "[", "]").finish().is_empty());
    }

    #[test]
    fn refusals_are_one_reject_naming_every_cause() {
        let mut r = Refusals::default();
        assert!(Refusals::default().into_result("S").is_ok());
        r.add("http 400", 3, "  bad name\n");
        r.add("unauthorized", 1, "later");
        r.add("http 400", 2, "x");
        assert_eq!(
            r.into_result("S").unwrap_err(),
            SinkError::Reject("S refused 6 points (http 400, unauthorized): bad name".into())
        );
    }

    #[test]
    fn a_retried_batch_remembers_what_it_delivered_and_a_new_one_forgets() {
        let d = Delivered::default();
        let id = batch_identity(["1000", "a"]);
        let b = d.begin(id);
        b.mark(["x".to_owned()]);
        assert!(d.begin(id).done("x") && !d.begin(id).done("y"));
        assert!(!d.begin(batch_identity(["2000", "a"])).done("x"));
        assert_ne!(batch_identity(["ab", "c"]), batch_identity(["a", "bc"]));
    }
}
