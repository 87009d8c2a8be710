//! Health probes of the stack's components through their own interfaces: an HTTP `GET` of a
//! component's health page (the gateway's `/health`, nats-server's `/healthz`), and what
//! nats-server's monitoring says of the clients connected to it (`/connz`) and of the
//! streams and consumers (`/jsz`).
//!
//! The HTTP client is deliberately tiny: one `GET`, `Connection: close`, to a loopback or
//! in-container address, with a deadline. It speaks just enough HTTP/1.1 for the servers it
//! talks to (content length or chunked bodies) and so needs no client crate.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

/// A probe that could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{url}: not an http:// URL")]
    Url { url: String },
    #[error("{url}: {source}")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: malformed HTTP answer ({why})")]
    Http { url: String, why: &'static str },
    #[error("{url}: answered {code}, not JSON: {source}")]
    Json {
        url: String,
        code: u16,
        #[source]
        source: serde_json::Error,
    },
}

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: u16,
    /// The status line and headers, as sent.
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.code)
    }

    pub fn json(&self, url: &str) -> Result<Value, ProbeError> {
        serde_json::from_slice(&self.body).map_err(|source| ProbeError::Json {
            url: url.to_string(),
            code: self.code,
            source,
        })
    }
}

/// `GET url` (plain `http://host:port/path`), answered within `timeout`.
pub fn get(url: &str, timeout: Duration) -> Result<Answer, ProbeError> {
    get_with(url, &[], timeout)
}

/// `GET url` with extra request headers (`Authorization`, say).
pub fn get_with(
    url: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Answer, ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError::Url { url: url.into() })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let io = |source| ProbeError::Io {
        url: url.to_string(),
        source,
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| ProbeError::Url { url: url.into() })?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: spm-stack\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    parse_answer(&raw).map_err(|why| ProbeError::Http {
        url: url.to_string(),
        why,
    })
}

/// `GET url` as JSON, whatever the status code (a 503 health page still says why).
pub fn get_json(url: &str, timeout: Duration) -> Result<(u16, Value), ProbeError> {
    let answer = get(url, timeout)?;
    Ok((answer.code, answer.json(url)?))
}

fn parse_answer(raw: &[u8]) -> Result<Answer, &'static str> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not text")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().ok_or("no status line")?;
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("no status code")?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &raw[split + 4..];
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(Answer {
        code,
        head: head.to_string(),
        body,
    })
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(body.len());
    loop {
        let eol = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line")?;
        let size = std::str::from_utf8(&body[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .ok_or("chunk size")?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size {
            return Err("chunk cut short");
        }
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

/// A client connection as nats-server's `/connz` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsClient {
    pub name: String,
    pub subscriptions: u64,
    /// Messages the server delivered to this client.
    pub delivered: u64,
    /// Messages this client published.
    pub published: u64,
}

/// The clients connected to the server whose monitoring endpoint is `monitor`
/// (`http://host:8222`).
pub fn nats_clients(monitor: &str, timeout: Duration) -> Result<Vec<NatsClient>, ProbeError> {
    let url = format!("{}/connz?limit=1024", monitor.trim_end_matches('/'));
    let (_, v) = get_json(&url, timeout)?;
    Ok(v["connections"]
        .as_array()
        .map(|conns| {
            conns
                .iter()
                .map(|c| NatsClient {
                    name: c["name"].as_str().unwrap_or_default().to_string(),
                    subscriptions: c["subscriptions"].as_u64().unwrap_or(0),
                    delivered: c["out_msgs"].as_u64().unwrap_or(0),
                    published: c["in_msgs"].as_u64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// A stream's message count and its consumers' acknowledgement floors, from `/jsz`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamFigures {
    pub name: String,
    pub messages: u64,
    pub last_seq: u64,
    /// (durable name, stream sequence acknowledged through, messages still pending).
    pub consumers: Vec<(String, u64, u64)>,
}

/// Every stream of every account, with its durable consumers.
pub fn nats_streams(monitor: &str, timeout: Duration) -> Result<Vec<StreamFigures>, ProbeError> {
    let url = format!(
        "{}/jsz?streams=true&consumers=true",
        monitor.trim_end_matches('/')
    );
    let (_, v) = get_json(&url, timeout)?;
    let mut out = Vec::new();
    for account in v["account_details"].as_array().into_iter().flatten() {
        for s in account["stream_detail"].as_array().into_iter().flatten() {
            out.push(StreamFigures {
                name: s["name"].as_str().unwrap_or_default().to_string(),
                messages: s["state"]["messages"].as_u64().unwrap_or(0),
                last_seq: s["state"]["last_seq"].as_u64().unwrap_or(0),
                consumers: s["consumer_detail"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| {
                        Some((
                            c["name"].as_str()?.to_string(),
                            c["ack_floor"]["stream_seq"].as_u64().unwrap_or(0),
                            c["num_pending"].as_u64().unwrap_or(0)
                                + c["num_ack_pending"].as_u64().unwrap_or(0),
                        ))
                    })
                    .collect(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_with_a_content_length_body_is_read_whole() {
        let a = parse_answer(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}")
            .expect("answer");
        assert_eq!(a.code, 503);
        assert_eq!(a.body, b"{}");
        assert!(!a.ok());
    }

    #[test]
    fn a_chunked_answer_is_put_back_together() {
        let a = parse_answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=1\r\n\":1}\r\n0\r\n\r\n",
        )
        .expect("answer");
        assert!(a.ok());
        assert_eq!(a.body, br#"{"a":1}"#);
    }

    #[test]
    fn a_cut_or_headless_answer_is_an_error_not_a_panic() {
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_answer(b"garbage\r\n\r\n").is_err());
        assert!(
            parse_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nab").is_err()
        );
    }

    #[test]
    fn only_plain_http_urls_are_probed() {
        assert!(matches!(
            get("https://127.0.0.1:1/", Duration::from_millis(10)),
            Err(ProbeError::Url { .. })
        ));
    }
}
