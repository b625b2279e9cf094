//! The coordinated-omission target of `benches/compare.sh`: an HTTP/1.1
//! keep-alive server that answers `200 ok` at once, except that every
//! `EVERY`-th request freezes the whole server for `STALL_MS` (every request
//! that arrives before the freeze ends waits for its end), as a GC pause or
//! a stop-the-world hiccup would.
//!
//! Standard library only, one thread per connection, so the script compiles
//! it with a bare `rustc -O` and it needs nothing from a registry.
//!
//! Usage: `stall_target ADDR EVERY STALL_MS` (e.g. `127.0.0.1:18082 1000 500`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n";

/// What every connection thread shares: the request count and the end of
/// the current freeze (microseconds since `epoch`).
struct Stall {
    epoch: Instant,
    every: u64,
    stall: Duration,
    requests: AtomicU64,
    until_us: AtomicU64,
}

impl Stall {
    /// Counts one request and returns how long it must wait before its answer.
    fn wait_for(&self) -> Duration {
        let now_us = self.epoch.elapsed().as_micros() as u64;
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if self.every > 0 && n % self.every == 0 {
            let until = now_us + self.stall.as_micros() as u64;
            self.until_us.fetch_max(until, Ordering::Relaxed);
        }
        let until = self.until_us.load(Ordering::Relaxed);
        Duration::from_micros(until.saturating_sub(now_us))
    }
}

fn serve(mut conn: TcpStream, stall: &Stall) {
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    let mut filled = 0;
    loop {
        // Answer every complete request head in the buffer (bodies are not
        // expected: the benchmark only sends GETs).
        while let Some(end) = find_head_end(&buf[..filled]) {
            let wait = stall.wait_for();
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            if conn.write_all(RESPONSE).is_err() {
                return;
            }
            buf.copy_within(end..filled, 0);
            filled -= end;
        }
        if filled == buf.len() {
            return;
        }
        match conn.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
    }
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: stall_target ADDR EVERY STALL_MS");
        std::process::exit(2);
    }
    let listener = TcpListener::bind(&args[1]).expect("bind");
    let stall = Arc::new(Stall {
        epoch: Instant::now(),
        every: args[2].parse().expect("EVERY is a number"),
        stall: Duration::from_millis(args[3].parse().expect("STALL_MS is a number")),
        requests: AtomicU64::new(0),
        until_us: AtomicU64::new(0),
    });
    for conn in listener.incoming().flatten() {
        let stall = Arc::clone(&stall);
        std::thread::spawn(move || serve(conn, &stall));
    }
}
