//! Every run stops within a second of its first SIGINT or SIGTERM, whatever
//! it is waiting on: a Toxiproxy server that never answers (applying or
//! removing a toxic), an agent stopped with SIGSTOP, probes in flight. Each
//! test runs the real binary, signals it by PID once it is provably waiting
//! (the stand-in server holds its request), and measures the stop.
//!
//! [`HungServer`] is a real HTTP/1.1 listener on 127.0.0.1 that answers
//! what it is told to and holds every other request open, unanswered.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

mod agent;
mod probes;
mod toxiproxy;

/// The guarantee under test.
const STOP_BOUND: Duration = Duration::from_secs(1);
/// Allowance on top of [`STOP_BOUND`] for a 2-core machine shared with
/// builds: process start-up of the signal path is not what is measured,
/// but the assertion must not flap on a busy host.
const NOISE: Duration = Duration::from_millis(300);
/// Any single wait of these tests.
const LIMIT: Duration = Duration::from_secs(20);

/// Which requests a [`HungServer`] answers; every other one it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// None: it accepts connections and never answers.
    Nothing,
    /// `GET` only (a Toxiproxy whose proxy exists but that hangs on changes).
    Gets,
    /// `GET` and `POST` (a toxic is added, its removal hangs).
    GetsAndPosts,
}

/// A stand-in HTTP server that answers some requests and holds the rest.
pub struct HungServer {
    pub addr: std::net::SocketAddr,
    held: Arc<AtomicUsize>,
    posts: Arc<AtomicUsize>,
    healed: Arc<AtomicBool>,
    stop: CancellationToken,
}

impl HungServer {
    pub async fn start(answers: Answers) -> HungServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = HungServer {
            addr,
            held: Arc::default(),
            posts: Arc::default(),
            healed: Arc::default(),
            stop: CancellationToken::new(),
        };
        let (held, posts, healed, stop) = (
            server.held.clone(),
            server.posts.clone(),
            server.healed.clone(),
            server.stop.clone(),
        );
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    c = listener.accept() => c,
                    _ = stop.cancelled() => return,
                };
                let Ok((conn, _)) = conn else { continue };
                let (held, posts, healed, stop) =
                    (held.clone(), posts.clone(), healed.clone(), stop.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = serve(conn, answers, &held, &posts, &healed) => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests it holds unanswered right now (or ever held).
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// `POST`s it answered.
    pub fn posts(&self) -> usize {
        self.posts.load(Ordering::SeqCst)
    }

    /// From now on every request is answered (204 for a `DELETE`).
    pub fn heal(&self) {
        self.healed.store(true, Ordering::SeqCst);
    }

    /// Waits until it holds `n` requests.
    pub async fn wait_held(&self, n: usize) {
        let deadline = Instant::now() + LIMIT;
        while self.held() < n {
            assert!(
                Instant::now() < deadline,
                "the server never held {n} requests (holds {})",
                self.held()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for HungServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One keep-alive connection: answer what `answers` allows, hold the rest.
async fn serve(
    mut conn: TcpStream,
    answers: Answers,
    held: &AtomicUsize,
    posts: &AtomicUsize,
    healed: &AtomicBool,
) {
    let mut buf = Vec::new();
    loop {
        let Some((method, path)) = read_request(&mut conn, &mut buf).await else {
            return;
        };
        let answer = healed.load(Ordering::SeqCst)
            || match answers {
                Answers::Nothing => false,
                Answers::Gets => method == "GET",
                Answers::GetsAndPosts => method == "GET" || method == "POST",
            };
        if !answer {
            held.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        if method == "POST" {
            posts.fetch_add(1, Ordering::SeqCst);
        }
        let (status, body) = reply(&method, &path);
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if conn.write_all(head.as_bytes()).await.is_err()
            || conn.write_all(body.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

/// What a Toxiproxy would answer: a proxy named by the path, an added toxic
/// echoed, a removal with no content.
fn reply(method: &str, path: &str) -> (&'static str, String) {
    let name = path
        .trim_start_matches("/proxies/")
        .split('/')
        .next()
        .unwrap_or("svc");
    match method {
        "DELETE" => ("204 No Content", String::new()),
        "POST" => ("200 OK", "{}".into()),
        _ if path.starts_with("/proxies/") => (
            "200 OK",
            format!(
                r#"{{"name":"{name}","listen":"127.0.0.1:1","upstream":"127.0.0.1:2","enabled":true,"toxics":[]}}"#
            ),
        ),
        // A Prometheus-shaped or probe-shaped request: an empty success.
        _ => ("200 OK", "{}".into()),
    }
}

/// Reads one request head and its `content-length` body; `None` at EOF.
async fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, String)> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = conn.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..head_end + length);
    let mut words = head.split_whitespace();
    let method = words.next()?.to_string();
    let path = words.next()?.to_string();
    Some((method, path))
}

pub(crate) fn faultline() -> Command {
    crate::cli::faultline()
}

/// Starts `faultline run --out dir file`, its stderr captured.
pub fn start_run(dir: &std::path::Path, yaml: &str) -> Child {
    start_run_with(dir, yaml, &[])
}

/// [`start_run`] with extra environment variables.
pub fn start_run_with(dir: &std::path::Path, yaml: &str, env: &[(&str, &str)]) -> Child {
    let file = dir.join("e.yaml");
    std::fs::write(&file, yaml).expect("write experiment");
    faultline()
        .envs(env.iter().copied())
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start faultline run")
}

/// How a signalled run ended.
pub struct Stopped {
    pub code: Option<i32>,
    /// From the signal to the process's exit.
    pub took: Duration,
    pub stderr: String,
}

/// Sends `signal` to `child` (a process this test started) and waits for
/// it to exit, bounded by [`LIMIT`].
pub async fn signal_and_wait(mut child: Child, signal: Signal) -> Stopped {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let sent = Instant::now();
    kill(pid, signal).expect("signal the run");
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll") {
            break status;
        }
        if sent.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("faultline still ran {LIMIT:?} after {signal}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let took = sent.elapsed();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    eprintln!("stop latency after {signal}: {took:?}");
    Stopped {
        code: status.code(),
        took,
        stderr,
    }
}

impl Stopped {
    /// Exit 3 (aborted) within the bound.
    pub fn assert_aborted_in_time(&self) {
        assert_eq!(self.code, Some(3), "exit code; stderr:\n{}", self.stderr);
        assert!(
            self.took < STOP_BOUND + NOISE,
            "stopped {:?} after the signal (bound {STOP_BOUND:?}); stderr:\n{}",
            self.took,
            self.stderr
        );
    }
}

/// The JSON report of `dir`.
pub fn report(dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json is JSON")
}
