//! A strict stand-in for a Riemann server (no Riemann package installs here): its TCP protocol as the published
//! `proto.proto` and Riemann's transport define it. Each message is a 4-byte big-endian length and a protobuf
//! `Msg`; each is answered with a `Msg` whose `ok` says whether its events were taken, and whose `error` says why
//! not. The fake decodes with the sink's own proto definitions (whose bytes the sink's tests pin to the published
//! field numbers) and refuses what Riemann's index could not use: an event without a service, more than one
//! metric field, a metric or ttl that is not a finite positive number (ttl) or finite number (metric), a state
//! over 255 bytes, an empty tag or attribute key, a negative time. It keeps what it took for the tests, and can
//! be told to refuse or to drop the connection for the next messages.

#[allow(dead_code, reason = "the fake reads the fields it checks; the sink uses the rest")]
#[path = "../../sinks/src/riemann/proto.rs"]
mod proto;

pub use proto::{Attribute, Event, Msg};

use prost::Message as _;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct State {
    events: Vec<Event>,
    /// Every `error` answered, in order.
    refusals: Vec<String>,
    refuse_next: usize,
    drop_next: usize,
    /// Messages received, answered or not.
    messages: usize,
}

/// A fake Riemann on a free 127.0.0.1 port, until dropped.
pub struct RiemannFake {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl RiemannFake {
    pub fn start() -> RiemannFake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let (state, stop) = (Arc::new(Mutex::new(State::default())), Arc::new(AtomicBool::new(false)));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s, st) = (s.clone(), st.clone());
                        std::thread::spawn(move || serve(conn, &s, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        RiemannFake { port, state, stop }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The events taken so far, in the order received.
    pub fn events(&self) -> Vec<Event> {
        self.state.lock().unwrap().events.clone()
    }

    /// The errors answered so far.
    pub fn refusals(&self) -> Vec<String> {
        self.state.lock().unwrap().refusals.clone()
    }

    /// Messages received so far, taken or not.
    pub fn messages(&self) -> usize {
        self.state.lock().unwrap().messages
    }

    /// Answers the next `n` messages `ok=false`, as Riemann does when its streams throw.
    pub fn refuse_next(&self, n: usize) {
        self.state.lock().unwrap().refuse_next = n;
    }

    /// Closes the connection instead of answering the next `n` messages (their events are not kept).
    pub fn drop_next(&self, n: usize) {
        self.state.lock().unwrap().drop_next = n;
    }
}

impl Drop for RiemannFake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    conn.set_nonblocking(false).unwrap();
    loop {
        let crate::Frame::Body(body) = crate::read_frame(&mut conn, stop, 100 << 20) else {
            return;
        };
        let answer = {
            let mut s = state.lock().unwrap();
            s.messages += 1;
            if s.drop_next > 0 {
                s.drop_next -= 1;
                return;
            }
            let verdict = match Msg::decode(body.as_slice()) {
                Err(e) => Err(format!("cannot decode the message: {e}")),
                Ok(_) if s.refuse_next > 0 => {
                    s.refuse_next -= 1;
                    Err("refused by the test: stream threw".to_owned())
                }
                Ok(msg) => msg.events.iter().try_for_each(check).map(|()| msg.events),
            };
            match verdict {
                Ok(events) => {
                    s.events.extend(events);
                    Msg { ok: Some(true), ..Default::default() }
                }
                Err(why) => {
                    s.refusals.push(why.clone());
                    Msg { ok: Some(false), error: Some(why), ..Default::default() }
                }
            }
        };
        let bytes = answer.encode_to_vec();
        let mut frame = (bytes.len() as u32).to_be_bytes().to_vec();
        frame.extend(bytes);
        if conn.write_all(&frame).is_err() {
            return;
        }
    }
}

/// What Riemann's index needs of one event.
fn check(e: &Event) -> Result<(), String> {
    let service = e.service.as_deref().unwrap_or("");
    if service.is_empty() {
        return Err(format!("event without a service (host {:?})", e.host));
    }
    let metrics = [e.metric_sint64.is_some(), e.metric_d.is_some(), e.metric_f.is_some()];
    if metrics.iter().filter(|m| **m).count() > 1 {
        return Err(format!("{service}: more than one metric field"));
    }
    if e.metric_d.is_some_and(|m| !m.is_finite()) || e.metric_f.is_some_and(|m| !m.is_finite()) {
        return Err(format!("{service}: metric is not a finite number"));
    }
    if e.ttl.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
        return Err(format!("{service}: ttl {:?} is not a positive number", e.ttl));
    }
    if e.state.as_ref().is_some_and(|s| s.len() > 255) {
        return Err(format!("{service}: state longer than 255 bytes"));
    }
    if e.tags.iter().any(String::is_empty) {
        return Err(format!("{service}: empty tag"));
    }
    if e.attributes.iter().any(|a| a.key.is_empty()) {
        return Err(format!("{service}: attribute without a key"));
    }
    if e.time.is_some_and(|t| t < 0) {
        return Err(format!("{service}: negative time"));
    }
    Ok(())
}
