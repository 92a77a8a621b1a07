//! Blocking keep-alive HTTPS to one cell, for the latency-critical fan-out (private-key
//! partials): the calling thread writes every cell's request itself, does its own work while
//! the cells compute, then reads each answer from its socket. No runtime worker stands
//! between the caller and the socket, so neither a request nor an answer waits for a thread
//! hand-over (two per cell and operation through the async client; docs/BENCHMARKS.md).
//! Every other call goes through the pooled async client (cell.rs).
//!
//! HTTP/1.1 as the cells speak it: requests with Content-Length, answers framed by
//! Content-Length (every cell answer is); anything else is refused and the connection closed.
//! A connection goes back to the pool only after a complete answer, and one idle for longer
//! than `IDLE_LIMIT` (below the cells' 30 s header-read timeout, which also ends idle
//! connections) is closed instead of reused.

use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyfrag_proto::{LOGIN_HEADER, REQUEST_ID_HEADER, WIRE_HEADER};
use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use zeroize::Zeroizing;

/// Idle connections older than this are closed, not reused.
const IDLE_LIMIT: Duration = Duration::from_secs(20);
/// Idle connections kept per cell (one per concurrent operation is all that is ever used).
const MAX_IDLE: usize = 64;
/// Largest answer head accepted (a cell's is a few hundred bytes).
const MAX_HEAD: usize = 16 * 1024;
/// Largest answer body accepted (an RSA-8192 partial is about 2 KB of JSON).
const MAX_BODY: usize = 1024 * 1024;

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// One cell's blocking endpoint and its idle connections.
pub(crate) struct Direct {
    tls: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    /// host:port, resolved at each connect (as the async client does).
    authority: String,
    /// The URL's path prefix, without a trailing slash.
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
    idle: Mutex<Vec<(Tls, Instant)>>,
}

/// Why an exchange failed.
pub(crate) enum DirectError {
    /// No complete answer (connect, TLS, write, read or framing failed): the request may be
    /// sent again on a new connection if it is idempotent.
    Transport(String),
    /// Never sent: a path or header value that would not be one token on the wire (a uid
    /// from elsewhere must not add headers or requests to what goes to a cell).
    Refused(&'static str),
}

/// Path bytes sent as they are: a cell's routes and hex uids need no others.
fn safe_path(path: &str) -> bool {
    !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
}

/// A header value without spaces, controls or non-ASCII (access keys, login tokens, ids).
fn safe_value(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic())
}

/// A complete answer: status, the wire-version header, body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) wire: Option<String>,
    pub(crate) body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A request written on a connection, its answer not yet read.
pub(crate) struct InFlight<'a> {
    direct: &'a Direct,
    conn: Tls,
    /// The connection came from the pool: a failure before any answer byte may only mean
    /// that the cell closed it while idle.
    reused: bool,
    request: Zeroizing<Vec<u8>>,
}

impl Direct {
    /// None for a URL the blocking path cannot serve (the async client then serves it).
    pub(crate) fn new(
        url: &str,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Option<Direct> {
        let url = reqwest::Url::parse(url).ok()?;
        if url.scheme() != "https" || url.query().is_some() {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        // An IPv6 literal keeps its brackets in host_str; the TLS name and connect do not.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare.to_string()).ok()?;
        let authority = if bare.contains(':') {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        };
        Some(Direct {
            tls,
            server_name,
            authority,
            prefix: url.path().trim_end_matches('/').to_string(),
            timeout,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Writes a POST of a JSON body; the answer is read by `InFlight::finish`.
    pub(crate) fn send(
        &self,
        path: &str,
        body: &[u8],
        access_key: &str,
        login: Option<&str>,
        request_id: &str,
    ) -> Result<InFlight<'_>, DirectError> {
        if !safe_path(path) {
            return Err(DirectError::Refused(
                "request path with characters a cell never uses",
            ));
        }
        if ![access_key, request_id]
            .iter()
            .chain(&login)
            .all(|v| safe_value(v))
        {
            return Err(DirectError::Refused(
                "header value with spaces or control characters",
            ));
        }
        // Written in place (the head carries the access key and the login token): no
        // intermediate string outlives the zeroized buffer.
        let mut request = Zeroizing::new(Vec::with_capacity(1024 + body.len()));
        let written = write!(
            request,
            "POST {}/v1/{path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {access_key}\r\n\
             {REQUEST_ID_HEADER}: {request_id}\r\n",
            self.prefix, self.authority
        )
        .and_then(|()| match login {
            Some(l) => write!(request, "{LOGIN_HEADER}: {l}\r\n"),
            None => Ok(()),
        })
        .and_then(|()| {
            write!(
                request,
                "content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
        });
        written.map_err(|e| transport(format!("request: {e}")))?;
        request.extend_from_slice(body);
        let (conn, reused) = match self.checkout() {
            Some(mut conn) => match write_all(&mut conn, &request) {
                Ok(()) => (conn, true),
                // The cell closed the idle connection: once more on a new one.
                Err(_) => (self.fresh(&request)?, false),
            },
            None => (self.fresh(&request)?, false),
        };
        Ok(InFlight {
            direct: self,
            conn,
            reused,
            request,
        })
    }

    /// A new connection carrying `request`.
    fn fresh(&self, request: &[u8]) -> Result<Tls, DirectError> {
        let mut conn = self.connect()?;
        write_all(&mut conn, request)?;
        Ok(conn)
    }

    fn checkout(&self) -> Option<Tls> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE_LIMIT {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, conn: Tls) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }

    fn connect(&self) -> Result<Tls, DirectError> {
        let addrs: Vec<SocketAddr> = self
            .authority
            .to_socket_addrs()
            .map_err(|e| transport(format!("cannot resolve {}: {e}", self.authority)))?
            .collect();
        let mut last = format!("{} resolves to no address", self.authority);
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(tcp) => {
                    tcp.set_nodelay(true)
                        .and_then(|()| tcp.set_read_timeout(Some(self.timeout)))
                        .and_then(|()| tcp.set_write_timeout(Some(self.timeout)))
                        .map_err(|e| transport(format!("socket setup: {e}")))?;
                    let conn = ClientConnection::new(self.tls.clone(), self.server_name.clone())
                        .map_err(|e| transport(format!("TLS setup: {e}")))?;
                    return Ok(StreamOwned::new(conn, tcp));
                }
                Err(e) => last = format!("connect {addr}: {e}"),
            }
        }
        Err(transport(last))
    }
}

impl InFlight<'_> {
    /// Reads the answer; the connection returns to the pool if the cell keeps it open.
    pub(crate) fn finish(mut self) -> Result<Answer, DirectError> {
        match read_answer(&mut self.conn) {
            Ok((answer, keep)) => {
                if keep {
                    self.direct.checkin(self.conn);
                }
                Ok(answer)
            }
            Err(ReadFailure::Nothing(msg)) if self.reused => {
                // Closed while idle, before any answer byte: the request was never read.
                tracing::debug!("idle connection to {} closed: {msg}", self.direct.authority);
                self.conn = self.direct.fresh(&self.request)?;
                self.reused = false;
                self.finish()
            }
            Err(e) => Err(e.into_error()),
        }
    }
}

/// How reading an answer failed.
enum ReadFailure {
    /// Before any byte of the answer.
    Nothing(String),
    /// Part-way, or the answer is malformed.
    Broken(String),
}

impl ReadFailure {
    fn into_error(self) -> DirectError {
        match self {
            ReadFailure::Nothing(m) | ReadFailure::Broken(m) => transport(m),
        }
    }
}

fn transport(msg: String) -> DirectError {
    DirectError::Transport(msg)
}

fn write_all(conn: &mut Tls, bytes: &[u8]) -> Result<(), DirectError> {
    conn.write_all(bytes)
        .and_then(|()| conn.flush())
        .map_err(|e| transport(format!("write: {}", io_reason(&e))))
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        IoKind::WouldBlock | IoKind::TimedOut => "timed out".into(),
        _ => e.to_string(),
    }
}

/// One answer and whether the connection may carry another request.
fn read_answer(conn: &mut impl Read) -> Result<(Answer, bool), ReadFailure> {
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let (head_len, status, wire, length, keep) = loop {
        let n = match conn.read(&mut chunk) {
            Ok(0) if buf.is_empty() => {
                return Err(ReadFailure::Nothing("closed by the cell".into()));
            }
            Ok(0) => return Err(ReadFailure::Broken("answer cut short".into())),
            Ok(n) => n,
            Err(e)
                if buf.is_empty()
                    && e.kind() != IoKind::WouldBlock
                    && e.kind() != IoKind::TimedOut =>
            {
                return Err(ReadFailure::Nothing(format!("read: {e}")));
            }
            Err(e) => return Err(ReadFailure::Broken(format!("read: {}", io_reason(&e)))),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = resp.code.unwrap_or(0);
                let mut wire = None;
                let mut length = None;
                let mut keep = resp.version == Some(1);
                for h in resp.headers.iter() {
                    let value = std::str::from_utf8(h.value).unwrap_or("").trim();
                    if h.name.eq_ignore_ascii_case("content-length") {
                        length = value.parse::<usize>().ok();
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(ReadFailure::Broken(format!(
                            "answer framed by transfer-encoding {value:?}, not a length"
                        )));
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        keep &= !value.eq_ignore_ascii_case("close");
                    } else if h.name.eq_ignore_ascii_case(WIRE_HEADER) {
                        wire = Some(value.to_string());
                    }
                }
                let length = length
                    .filter(|&l| l <= MAX_BODY)
                    .ok_or_else(|| ReadFailure::Broken("answer without a usable length".into()))?;
                break (len, status, wire, length, keep);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(ReadFailure::Broken("answer head too long".into()));
            }
            Err(e) => return Err(ReadFailure::Broken(format!("malformed answer: {e}"))),
        }
    };
    let mut body = buf.split_off(head_len);
    if body.len() > length {
        // Bytes past the answer: the connection's state is unknown, so it is not reused.
        return Err(ReadFailure::Broken(
            "more bytes than the answer's length".into(),
        ));
    }
    let have = body.len();
    body.resize(length, 0);
    conn.read_exact(&mut body[have..])
        .map_err(|e| ReadFailure::Broken(format!("answer body: {}", io_reason(&e))))?;
    Ok((Answer { status, wire, body }, keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<(Answer, bool), String> {
        read_answer(&mut std::io::Cursor::new(bytes.to_vec())).map_err(|e| match e {
            ReadFailure::Nothing(m) => format!("nothing: {m}"),
            ReadFailure::Broken(m) => format!("broken: {m}"),
        })
    }

    #[test]
    fn an_answer_framed_by_its_length_is_read_and_keeps_the_connection() {
        let (a, keep) = read(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-keyfrag-wire: 2\r\n\
              content-length: 7\r\n\r\n{\"a\":1}",
        )
        .unwrap();
        assert_eq!(
            (a.status, a.wire.as_deref(), &a.body[..]),
            (200, Some("2"), &b"{\"a\":1}"[..])
        );
        assert!(keep);
        let (a, keep) =
            read(b"HTTP/1.1 409 Conflict\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
                .unwrap();
        assert_eq!((a.status, a.wire, &a.body[..]), (409, None, &b"{}"[..]));
        assert!(!keep, "the cell closes it");
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(read(b"").unwrap_err(), "nothing: closed by the cell");
        for (bytes, why) in [
            (&b"HTTP/1.1 200 OK\r\ncontent-len"[..], "answer cut short"),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}",
                "answer body",
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                "transfer-encoding",
            ),
            (b"HTTP/1.1 200 OK\r\n\r\n{}", "without a usable length"),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 99999999\r\n\r\n",
                "without a usable length",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n{}",
                "more bytes",
            ),
            (b"SMTP ready\r\n\r\n", "malformed answer"),
        ] {
            let err = read(bytes).unwrap_err();
            assert!(err.starts_with("broken: ") && err.contains(why), "{err}");
        }
    }

    #[test]
    fn nothing_but_one_token_goes_into_the_request_line_and_headers() {
        assert!(safe_path("keys/0a1b/rsa-partial"));
        for bad in [
            "",
            "keys/a b/x",
            "keys/a\r\nx-evil: 1/x",
            "keys/a?b",
            "keys/é",
        ] {
            assert!(!safe_path(bad), "{bad:?}");
        }
        assert!(safe_value("0123abcdef"));
        for bad in ["", "a b", "a\r\nb", "a\nb", "é"] {
            assert!(!safe_value(bad), "{bad:?}");
        }
        let t = Duration::from_secs(1);
        let d = Direct::new(
            "https://127.0.0.1:1",
            Arc::new(crate::tls::test_config()),
            t,
            t,
        )
        .unwrap();
        let refused = |path, login| match d.send(path, b"{}", "key", login, "id") {
            Err(DirectError::Refused(why)) => why,
            _ => panic!("sent"),
        };
        assert!(refused("keys/x\r\n\r\nDELETE /v1/keys/y/rsa-partial", None).contains("path"));
        assert!(refused("keys/x/rsa-partial", Some("tok\r\nx: y")).contains("header"));
    }

    #[test]
    fn only_https_urls_take_the_blocking_path() {
        let tls = Arc::new(crate::tls::test_config());
        let t = Duration::from_secs(1);
        let d = Direct::new("https://127.0.0.1:7001/", tls.clone(), t, t).unwrap();
        assert_eq!(
            (d.authority.as_str(), d.prefix.as_str()),
            ("127.0.0.1:7001", "")
        );
        let d = Direct::new("https://[::1]:7001/cells/a", tls.clone(), t, t).unwrap();
        assert_eq!(
            (d.authority.as_str(), d.prefix.as_str()),
            ("[::1]:7001", "/cells/a")
        );
        let d = Direct::new("https://cell.example", tls.clone(), t, t).unwrap();
        assert_eq!(d.authority, "cell.example:443");
        assert!(Direct::new("http://127.0.0.1:7001", tls.clone(), t, t).is_none());
        assert!(Direct::new("not a url", tls, t, t).is_none());
    }
}
