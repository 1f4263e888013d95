//! Real servers for the sinks' tests and benchmarks, so that a sink is checked against what it will talk to in
//! production rather than against a mock of our own reading of the protocol.
//!
//! Every server is a [`Server`]: its program found on the PATH (the panic names the Debian or npm package that
//! scripts/test installs), a free 127.0.0.1 port, a temporary directory for its config, data and log, a readiness
//! probe waited for before the test goes on, and on drop the process killed and the directory removed (kept, and
//! named on stderr, when the test panicked, so its log can be read). The per-server modules only say how to
//! configure and probe one, and what to ask it afterwards.

pub mod bench;
pub mod carbon;
pub mod elasticsearch;
pub mod google;
pub mod hawkular;
pub mod honeycomb;
pub mod influxd;
pub mod json_api;
pub mod kafka;
pub mod librato;
pub mod otelsink;
pub mod otlp_fake;
pub mod prometheus;
pub mod riemann;
pub mod statsd;
pub mod victoria_metrics;
pub mod wavefront;

pub use carbon::Carbon;
pub use elasticsearch::ElasticsearchFake;
pub use hawkular::HawkularFake;
pub use honeycomb::HoneycombFake;
pub use influxd::Influxd;
pub use kafka::KafkaFake;
pub use librato::LibratoFake;
pub use otelsink::Otelsink;
pub use otlp_fake::OtlpFake;
pub use prometheus::Prometheus;
pub use riemann::RiemannFake;
pub use statsd::{Statsd, StatsdSetup};
pub use victoria_metrics::VictoriaMetrics;
pub use wavefront::WavefrontProxy;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its probe: influxd and carbon need a few seconds on a loaded machine.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A 127.0.0.1 port nothing listens on right now. Another process may take it before the server binds it; that
/// is rare enough on a test machine, and shows as a probe timeout with the server's bind error in its log.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The first of `programs` on the PATH, if any.
pub fn find_program(programs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    programs.iter().find_map(|p| std::env::split_paths(&path).map(|d| d.join(p)).find(|f| f.is_file()))
}

/// Status and body of one HTTP request; status 0 when nothing answered (a server still starting).
pub fn http(method: &str, url: &str, body: Option<&[u8]>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = heapster_net::client_builder(Duration::from_secs(10)).build().unwrap();
        let mut req = client.request(method.parse().unwrap(), url);
        if let Some(body) = body {
            req = req.body(body.to_vec());
        }
        match req.send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    })
}

/// Polls until `ok` holds, for at most `limit`: servers store what they are sent a moment later, and heapster
/// writes on its own schedule.
pub fn wait(what: &str, limit: Duration, ok: impl Fn() -> bool) {
    let until = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < until, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An axum app served on a thread and runtime of its own, so that a fake can be started from a test's runtime or
/// outside one; dropping it stops the server and joins the thread.
pub struct AppThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AppThread {
    /// Serves `app` on `listener` (bound by the caller, who may need its address first); `name` names the thread
    /// and the panic if the server fails.
    pub fn serve(name: &str, listener: std::net::TcpListener, app: axum::Router) -> AppThread {
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let what = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    tokio::select! {
                        r = axum::serve(listener, app) => r.unwrap_or_else(|e| panic!("{what}: the server failed: {e}")),
                        _ = stopped => {}
                    }
                });
            })
            .unwrap();
        AppThread { stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for AppThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What tells that a server is up.
#[derive(Debug, Clone)]
pub enum Probe {
    /// `GET url` answers this status.
    Http { url: String, status: u16 },
    /// A TCP connection to this loopback port is accepted (servers without an HTTP side: carbon, statsd).
    Tcp(u16),
    /// TCP connections to every one of these loopback ports are accepted: a server that binds several ports one
    /// after the other may answer on the first and then exit because a later one was taken.
    TcpAll(Vec<u16>),
}

impl Probe {
    fn ready(&self) -> bool {
        match self {
            Probe::Http { url, status } => http("GET", url, None).0 == *status,
            Probe::Tcp(port) => std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok(),
            Probe::TcpAll(ports) => ports.iter().all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok()),
        }
    }
}

/// One server process with its own temporary directory and log file.
pub struct Server {
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    probe: Option<Probe>,
    dir: Option<tempfile::TempDir>,
    child: Option<Child>,
}

impl Server {
    /// Finds the first of `programs` on the PATH and makes the server's directory; starts nothing yet, so that
    /// the caller can write a config file there first. Panics naming `package` when no program is installed.
    pub fn new(programs: &[&str], package: &str) -> Server {
        let program = find_program(programs).unwrap_or_else(|| {
            panic!("{} is not on the PATH: install {package} (scripts/test does)", programs.join(" or "),)
        });
        let name = program.file_name().unwrap().to_string_lossy().into_owned();
        let dir = tempfile::TempDir::with_prefix(format!("heapster-{name}-")).expect("a temporary directory");
        Server { name, program, args: Vec::new(), probe: None, dir: Some(dir), child: None }
    }

    /// The program found on the PATH.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The server's own directory: config, data and `<program>.log` go here.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    /// Where the server's stdout and stderr go.
    pub fn log_path(&self) -> PathBuf {
        self.dir().join(format!("{}.log", self.name))
    }

    /// The log so far (empty if none), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs the program with `args` and waits until `probe` answers; [`Server::launch`] later runs it again the
    /// same way, on the same ports and data.
    pub fn start<I, S>(mut self, args: I, probe: Probe) -> Server
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self.probe = Some(probe);
        self.launch();
        self
    }

    /// Starts the process again after [`Server::stop`], and waits until it answers. Panics with the log's end
    /// when it exits or does not answer in time.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let child = Command::new(&self.program)
            .args(&self.args)
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.program.display()));
        self.child = Some(child);
        let probe = self.probe.clone().expect("start() sets the probe");
        let until = Instant::now() + READY_WITHIN;
        while !probe.ready() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("{} exited ({status}) before it answered {probe:?}:\n{}", self.name, self.log_tail());
            }
            assert!(
                Instant::now() < until,
                "{} did not answer {probe:?} within {READY_WITHIN:?}:\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Another process may hold the port the probe reached (a free port is only free when it is picked), and
        // the server itself then exits on its failed bind: say so here, not as a refused connection in the test.
        std::thread::sleep(Duration::from_millis(100));
        if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
            self.child = None;
            panic!("{} exited ({status}) right after it answered {probe:?}:\n{}", self.name, self.log_tail());
        }
    }

    /// Kills the process; its directory stays for [`Server::launch`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// User plus system CPU seconds the server has used so far, from `/proc/PID/stat`: what a benchmark charges to
    /// the server's side of a write.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("/proc/PID/stat");
        // After the command name (in parentheses, which may hold spaces): state is field 3, utime and stime are
        // fields 14 and 15, in clock ticks.
        let fields: Vec<&str> = stat.rsplit_once(')').expect("/proc/PID/stat").1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / rustix::param::clock_ticks_per_second() as f64
    }

    /// The last lines of the log, with its path.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("{tail}\n(log: {})", self.log_path().display())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("{}'s directory is kept for the failed test: {}", self.name, dir.keep().display());
        }
    }
}

/// One message of a protocol that sends a 4-byte big-endian length before each (Riemann, Kafka).
pub enum Frame {
    Body(Vec<u8>),
    /// A length over the caller's bound: a strict fake reports it and closes.
    TooLarge(u32),
    /// The peer closed, a read failed, or the fake is stopping.
    Closed,
}

/// Waits for the next length-prefixed frame on a fake server's connection, looking at `stop` every 200 ms so the
/// server's thread ends when the test drops it.
pub fn read_frame(conn: &mut std::net::TcpStream, stop: &std::sync::atomic::AtomicBool, max: u32) -> Frame {
    use std::io::Read;
    use std::sync::atomic::Ordering;
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut head = [0u8; 4];
    loop {
        match conn.read_exact(&mut head) {
            Ok(()) => break,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if stop.load(Ordering::Relaxed) {
                    return Frame::Closed;
                }
            }
            Err(_) => return Frame::Closed,
        }
    }
    if stop.load(Ordering::Relaxed) {
        return Frame::Closed;
    }
    let size = u32::from_be_bytes(head);
    if size > max {
        return Frame::TooLarge(size);
    }
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut body = vec![0; size as usize];
    match conn.read_exact(&mut body) {
        Ok(()) => Frame::Body(body),
        Err(_) => Frame::Closed,
    }
}
