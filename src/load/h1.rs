//! A minimal HTTP/1.1 client connection for plain `http://` targets: the
//! load generator's fast path.
//!
//! The request is serialized once ([`wire_request`]) and written as is; the
//! response is parsed in place in one reusable buffer, reading only what
//! the exchange needs (status, `Content-Length`/`Transfer-Encoding`,
//! `Connection`, and optionally one header and the body for a version
//! label). No allocation, no channel and no extra task per request: the
//! per-request cost is two system calls, as in wrk. `https://` targets go
//! through hyper instead (see `conn`).

use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, Method, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Response heads and chunk-size lines longer than this are refused.
const MAX_HEAD: usize = 64 * 1024;
/// Read size; also the buffer's starting capacity.
const READ_SIZE: usize = 16 * 1024;

/// What a response told us.
#[derive(Debug, Default)]
pub(super) struct Response {
    pub status: u16,
    /// The value of the header asked for, if present.
    pub header: Option<String>,
}

/// Why an exchange failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The socket failed.
    Io(io::Error),
    /// The peer closed the connection before the response was complete.
    Closed {
        /// Whether any byte of the response had arrived.
        started: bool,
    },
    /// The response is not HTTP/1.x as this client reads it (a bad status
    /// line, header, length or chunk, or a head over 64 KiB).
    Protocol,
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Io(e)
    }
}

/// One open connection and its read buffer.
pub(super) struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Requests sent on it so far (a reused connection may have been closed
    /// by the server while idle).
    pub sent: u64,
}

/// The request as bytes on the wire: request line, headers (the caller's,
/// which include `Host`), `Content-Length` when there is a body or the
/// method expects one, and the body.
pub(super) fn wire_request(
    method: &Method,
    origin: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Bytes {
    let mut out = BytesMut::with_capacity(256 + body.len());
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(
        origin
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .as_bytes(),
    );
    out.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    let framed = headers.contains_key(http::header::CONTENT_LENGTH)
        || headers.contains_key(http::header::TRANSFER_ENCODING);
    let wants_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if !framed && (!body.is_empty() || wants_body) {
        out.put_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
    out.freeze()
}

impl Connection {
    /// Connects to `uri`'s host and port (80 by default), with `TCP_NODELAY`.
    pub async fn open(uri: &Uri) -> io::Result<Connection> {
        let host = uri
            .host()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let stream = TcpStream::connect((host, uri.port_u16().unwrap_or(80))).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buf: vec![0; READ_SIZE],
            start: 0,
            end: 0,
            sent: 0,
        })
    }

    /// Sends `wire` and reads the whole response. `header` names a header
    /// to return; `keep` collects up to `keep_limit` body bytes when given.
    /// Returns the response and whether the connection can be used again.
    pub async fn exchange(
        &mut self,
        wire: &[u8],
        head_only: bool,
        header: Option<&str>,
        mut keep: Option<&mut Vec<u8>>,
        keep_limit: usize,
    ) -> Result<(Response, bool), Failure> {
        self.sent += 1;
        self.stream.write_all(wire).await?;
        loop {
            let head = self.read_head(header).await?;
            // Informational responses (100 Continue, 103 Early Hints) precede the real one.
            if (100..200).contains(&head.response.status) && head.response.status != 101 {
                continue;
            }
            let no_body = head_only || matches!(head.response.status, 101 | 204 | 304);
            // After 101 the connection speaks another protocol.
            let mut reusable = head.keep_alive && head.response.status != 101;
            if !no_body {
                if head.chunked {
                    self.read_chunked(&mut keep, keep_limit).await?;
                } else if let Some(len) = head.length {
                    self.read_exact_body(len, &mut keep, keep_limit).await?;
                } else {
                    // Delimited by the end of the connection.
                    self.read_to_close(&mut keep, keep_limit).await?;
                    reusable = false;
                }
            }
            // A response never comes unasked: leftover bytes mean confusion.
            return Ok((head.response, reusable && self.start == self.end));
        }
    }

    /// Reads and parses one response head.
    async fn read_head(&mut self, header: Option<&str>) -> Result<Head, Failure> {
        let mut scanned: usize = 0;
        loop {
            let unread = &self.buf[self.start..self.end];
            if let Some(at) = find(&unread[scanned.saturating_sub(3)..], b"\r\n\r\n") {
                let len = scanned.saturating_sub(3) + at + 4;
                let head = parse_head(&unread[..len], header)?;
                self.start += len;
                return Ok(head);
            }
            scanned = unread.len();
            if scanned >= MAX_HEAD {
                return Err(Failure::Protocol);
            }
            let started = self.end > self.start;
            if self.fill().await? == 0 {
                return Err(Failure::Closed { started });
            }
        }
    }

    /// Consumes `len` body bytes.
    async fn read_exact_body(
        &mut self,
        mut len: u64,
        keep: &mut Option<&mut Vec<u8>>,
        limit: usize,
    ) -> Result<(), Failure> {
        loop {
            let available = (self.end - self.start) as u64;
            let take = available.min(len) as usize;
            self.consume(take, keep, limit);
            len -= take as u64;
            if len == 0 {
                return Ok(());
            }
            if self.fill().await? == 0 {
                return Err(Failure::Closed { started: true });
            }
        }
    }

    /// Consumes a chunked body, trailers included.
    async fn read_chunked(
        &mut self,
        keep: &mut Option<&mut Vec<u8>>,
        limit: usize,
    ) -> Result<(), Failure> {
        loop {
            let line = self.read_line().await?;
            let size = std::str::from_utf8(&line)
                .ok()
                .and_then(|l| l.split(';').next())
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                .ok_or(Failure::Protocol)?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.read_line().await?.is_empty() {}
                return Ok(());
            }
            self.read_exact_body(size, keep, limit).await?;
            if !self.read_line().await?.is_empty() {
                return Err(Failure::Protocol);
            }
        }
    }

    /// Consumes everything up to the end of the connection.
    async fn read_to_close(
        &mut self,
        keep: &mut Option<&mut Vec<u8>>,
        limit: usize,
    ) -> Result<(), Failure> {
        loop {
            self.consume(self.end - self.start, keep, limit);
            if self.fill().await? == 0 {
                return Ok(());
            }
        }
    }

    /// One CRLF-terminated line (without the CRLF).
    async fn read_line(&mut self) -> Result<Vec<u8>, Failure> {
        loop {
            if let Some(at) = find(&self.buf[self.start..self.end], b"\r\n") {
                let line = self.buf[self.start..self.start + at].to_vec();
                self.start += at + 2;
                return Ok(line);
            }
            if self.end - self.start >= MAX_HEAD {
                return Err(Failure::Protocol);
            }
            if self.fill().await? == 0 {
                return Err(Failure::Closed { started: true });
            }
        }
    }

    /// Drops `n` unread bytes, keeping them in `keep` up to `limit`.
    fn consume(&mut self, n: usize, keep: &mut Option<&mut Vec<u8>>, limit: usize) {
        if let Some(kept) = keep.as_deref_mut() {
            let room = limit.saturating_sub(kept.len()).min(n);
            kept.extend_from_slice(&self.buf[self.start..self.start + room]);
        }
        self.start += n;
    }

    /// Reads more bytes after the unread ones; 0 at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

/// A parsed response head.
#[derive(Debug)]
struct Head {
    response: Response,
    length: Option<u64>,
    chunked: bool,
    keep_alive: bool,
}

/// Parses `HTTP/1.x SSS reason\r\n(name: value\r\n)*\r\n`.
fn parse_head(head: &[u8], wanted: Option<&str>) -> Result<Head, Failure> {
    let text = std::str::from_utf8(head).map_err(|_| Failure::Protocol)?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return Err(Failure::Protocol),
    };
    let status = parts
        .next()
        .filter(|s| s.len() == 3)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(Failure::Protocol)?;
    let mut out = Head {
        response: Response {
            status,
            header: None,
        },
        length: None,
        chunked: false,
        keep_alive: minor == 1,
    };
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(Failure::Protocol);
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            out.length = Some(value.parse().map_err(|_| Failure::Protocol)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            out.chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    out.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    out.keep_alive = true;
                }
            }
        }
        if wanted.is_some_and(|w| name.eq_ignore_ascii_case(w)) && out.response.header.is_none() {
            out.response.header = Some(value.to_string());
        }
    }
    Ok(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpListener;

    use super::*;

    fn parse(head: &str) -> Head {
        parse_head(head.as_bytes(), Some("x-version")).expect("parses")
    }

    #[test]
    fn a_head_gives_status_framing_and_connection() {
        let h = parse("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-Version: v2\r\n\r\n");
        assert_eq!(
            (h.response.status, h.length, h.chunked, h.keep_alive),
            (200, Some(12), false, true)
        );
        assert_eq!(h.response.header.as_deref(), Some("v2"));
        let h = parse("HTTP/1.1 503 Unavailable\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n");
        assert_eq!(
            (h.response.status, h.chunked, h.keep_alive),
            (503, true, false)
        );
        let h = parse("HTTP/1.0 200 OK\r\n\r\n");
        assert!(!h.keep_alive, "HTTP/1.0 closes unless told otherwise");
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n", None).is_err());
        assert!(parse_head(b"HTTP/1.1 2000 OK\r\n\r\n", None).is_err());
    }

    #[test]
    fn the_wire_request_carries_host_and_a_length_when_needed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::HOST,
            "example.com:8080".parse().expect("valid"),
        );
        let get = wire_request(
            &Method::GET,
            &"/a?b=1".parse().expect("uri"),
            &headers,
            &Bytes::new(),
        );
        assert_eq!(
            &get[..],
            b"GET /a?b=1 HTTP/1.1\r\nhost: example.com:8080\r\n\r\n"
        );
        let post = wire_request(
            &Method::POST,
            &"/".parse().expect("uri"),
            &headers,
            &Bytes::from_static(b"{}"),
        );
        assert!(post.ends_with(b"content-length: 2\r\n\r\n{}"), "{post:?}");
    }

    /// A server that answers each request with the next canned response.
    async fn canned(responses: Vec<&'static [u8]>) -> Uri {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            for r in responses {
                let mut got = Vec::new();
                while find(&got, b"\r\n\r\n").is_none() {
                    let n = s.read(&mut buf).await.expect("read");
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                s.write_all(r).await.expect("write");
            }
        });
        format!("http://{addr}/").parse().expect("uri")
    }

    #[tokio::test]
    async fn bodies_of_every_framing_are_read_and_the_connection_reused() {
        tokio::time::timeout(Duration::from_secs(5), async {
            let uri = canned(vec![
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\n{\"v\r\n6\r\n\":\"b\"}\r\n0\r\nT: 1\r\n\r\n",
                b"HTTP/1.1 204 No Content\r\n\r\n",
                b"HTTP/1.1 200 OK\r\n\r\nuntil close",
            ])
            .await;
            let mut c = Connection::open(&uri).await.expect("connects");
            let wire = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
            let (r, reuse) = c.exchange(wire, false, None, None, 0).await.expect("sized");
            assert_eq!((r.status, reuse), (200, true));
            let mut kept = Vec::new();
            let (r, reuse) = c.exchange(wire, false, None, Some(&mut kept), 1024).await.expect("chunked");
            assert_eq!((r.status, reuse, kept.as_slice()), (200, true, &b"{\"v\":\"b\"}"[..]));
            let (r, reuse) = c.exchange(wire, false, None, None, 0).await.expect("no body");
            assert_eq!((r.status, reuse), (204, true));
            let mut kept = Vec::new();
            let closed = c.exchange(wire, false, None, Some(&mut kept), 4).await;
            // The server task ends after its last answer, closing the socket.
            let (r, reuse) = closed.expect("close-delimited");
            assert_eq!((r.status, reuse, kept.as_slice()), (200, false, &b"unti"[..]));
        })
        .await
        .expect("test timed out");
    }

    #[tokio::test]
    async fn a_response_cut_short_is_a_closed_failure() {
        tokio::time::timeout(Duration::from_secs(5), async {
            let uri = canned(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]).await;
            let mut c = Connection::open(&uri).await.expect("connects");
            let got = c
                .exchange(b"GET / HTTP/1.1\r\n\r\n", false, None, None, 0)
                .await;
            assert!(
                matches!(got, Err(Failure::Closed { started: true })),
                "{got:?}"
            );
        })
        .await
        .expect("test timed out");
    }
}
