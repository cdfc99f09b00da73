//! A small SMTP sink on loopback for the tests: it speaks enough SMTP for lettre (EHLO, MAIL,
//! RCPT, DATA, RSET, NOOP, QUIT; no STARTTLS, no AUTH) and keeps every message, decoded
//! (multipart, quoted-printable, base64, RFC 2047 subjects) by a minimal MIME reader written here,
//! so that any crate's tests can include this file with tokio alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A message as received: the envelope, the raw message, and its decoded subject and bodies
/// (UTF-8, line ends as `\n`; empty when the message has no such part).
#[derive(Clone)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets.
    pub to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, line ends as sent (CRLF).
    pub raw: String,
    pub subject: String,
    /// The first `text/plain` part.
    pub text: String,
    /// The first `text/html` part.
    pub html: String,
}

/// Written by hand (a derived `Debug` would not count as a use of every field in the test
/// binaries that read only some of them).
impl std::fmt::Debug for ReceivedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedMail")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &self.text)
            .field("html", &self.html)
            .field("raw", &self.raw)
            .finish()
    }
}

impl ReceivedMail {
    /// Decodes a raw message (an `.eml` file, or what came after `DATA`).
    pub fn parse(from: String, to: Vec<String>, raw: String) -> Self {
        let normalized = raw.replace("\r\n", "\n");
        let (headers, body) = split_entity(&normalized);
        let subject = header(&headers, "subject").map(decode_words).unwrap_or_default();
        let (mut text, mut html) = (None, None);
        collect_bodies(&headers, body, &mut text, &mut html);
        Self { from, to, raw, subject, text: text.unwrap_or_default(), html: html.unwrap_or_default() }
    }
}

/// The sink: keeps every message it is sent, until dropped.
pub struct SmtpSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<ReceivedMail>>>,
    accept: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl SmtpSink {
    /// A sink that accepts every message.
    pub async fn start() -> Self {
        Self::start_failing(0).await
    }

    /// A sink that answers `451` (a temporary failure) to the first `failures` `DATA` commands,
    /// then accepts every message.
    pub async fn start_failing(failures: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the SMTP sink");
        let port = listener.local_addr().expect("the sink's address").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(AtomicUsize::new(failures));
        let kept = messages.clone();
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(converse(socket, kept.clone(), failures.clone()));
            }
        });
        Self { port, messages, accept }
    }

    /// The messages received so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.messages.lock().expect("messages").clone()
    }

    /// Waits until at least `n` messages arrived, or the timeout; returns what arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n || tokio::time::Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One SMTP connection; returns when the client quits or hangs up.
async fn converse(socket: TcpStream, kept: Arc<Mutex<Vec<ReceivedMail>>>, failures: Arc<AtomicUsize>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    if write.write_all(b"220 localhost ESMTP Cachet test sink\r\n").await.is_err() {
        return;
    }
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_owned();
        let verb = command.split([' ', ':']).next().unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "MAIL" => {
                from = address(&command);
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(address(&command));
                b"250 OK\r\n"
            }
            "RSET" => {
                from.clear();
                to.clear();
                b"250 OK\r\n"
            }
            "DATA" if to.is_empty() => b"503 RCPT first\r\n",
            "DATA" if failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() => {
                from.clear();
                to.clear();
                b"451 Temporary failure, try again later\r\n"
            }
            "DATA" => {
                if write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await.is_err() {
                    return;
                }
                let mut raw = Vec::new();
                loop {
                    line.clear();
                    if lines.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    // Dot-unstuffing: a line starting with a dot was sent with one more.
                    raw.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
                }
                let raw = String::from_utf8_lossy(&raw).into_owned();
                let mail = ReceivedMail::parse(std::mem::take(&mut from), std::mem::take(&mut to), raw);
                kept.lock().expect("messages").push(mail);
                b"250 OK: queued\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 Bye\r\n").await;
                return;
            }
            _ => b"502 Command not implemented\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// The address in `MAIL FROM:<a@b> BODY=8BITMIME` or `RCPT TO:<a@b>`.
fn address(command: &str) -> String {
    let start = command.find('<').map_or_else(|| command.find(':').map_or(0, |i| i + 1), |i| i + 1);
    let end = command[start..].find('>').map_or(command.len(), |i| start + i);
    command[start..end].trim().to_owned()
}

/// Splits an entity (line ends as `\n`) into its unfolded headers (names in lower case) and body.
fn split_entity(entity: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = match entity.find("\n\n") {
        Some(i) => (&entity[..i], &entity[i + 2..]),
        None if entity.starts_with('\n') => ("", &entity[1..]),
        None => (entity, ""),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    (headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Walks a MIME tree and keeps the first text and the first HTML body.
fn collect_bodies(headers: &[(String, String)], body: &str, text: &mut Option<String>, html: &mut Option<String>) {
    let content_type = header(headers, "content-type").unwrap_or("text/plain");
    let mut params = content_type.split(';').map(str::trim);
    let mime = params.next().unwrap_or_default().to_ascii_lowercase();
    if mime.starts_with("multipart/") {
        let Some(boundary) = params.find_map(|p| {
            let (key, value) = p.split_once('=')?;
            key.trim().eq_ignore_ascii_case("boundary").then(|| value.trim().trim_matches('"').to_owned())
        }) else {
            return;
        };
        let (delimiter, close) = (format!("--{boundary}"), format!("--{boundary}--"));
        let mut part: Option<Vec<&str>> = None;
        for line in body.split('\n') {
            let line_trimmed = line.trim_end();
            if line_trimmed == delimiter || line_trimmed == close {
                if let Some(lines) = part.take() {
                    let entity = lines.join("\n");
                    let (part_headers, part_body) = split_entity(&entity);
                    collect_bodies(&part_headers, part_body, text, html);
                }
                if line_trimmed == close {
                    return;
                }
                part = Some(Vec::new());
            } else if let Some(lines) = part.as_mut() {
                lines.push(line);
            }
        }
        return;
    }
    let slot = match mime.as_str() {
        "text/plain" => text,
        "text/html" => html,
        _ => return,
    };
    if slot.is_some() {
        return;
    }
    let encoding = header(headers, "content-transfer-encoding").unwrap_or("7bit").to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "base64" => base64(body),
        "quoted-printable" => quoted_printable(body),
        _ => body.as_bytes().to_vec(),
    };
    *slot = Some(String::from_utf8_lossy(&bytes).replace("\r\n", "\n"));
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn quoted_printable(body: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut lines = body.split('\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.trim_end_matches([' ', '\t', '\r']);
        let (line, soft) = match line.strip_suffix('=') {
            Some(line) => (line, true),
            None => (line, false),
        };
        out.extend(decode_q(line.as_bytes(), false));
        if !soft && lines.peek().is_some() {
            out.push(b'\n');
        }
    }
    out
}

/// Quoted-printable escapes (`=XX`); in RFC 2047 `Q` words, `_` is also a space.
fn decode_q(bytes: &[u8], underscore_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if i + 2 < bytes.len() && hex(bytes[i + 1]).is_some() && hex(bytes[i + 2]).is_some() => {
                out.push(hex(bytes[i + 1]).unwrap_or(0) * 16 + hex(bytes[i + 2]).unwrap_or(0));
                i += 3;
                continue;
            }
            b'_' if underscore_is_space => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    out
}

fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.bytes().take_while(|&c| c != b'=') {
        let Some(v) = value(c) else { continue };
        buffer = (buffer << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).unwrap_or(0));
        }
    }
    out
}

/// Decodes the RFC 2047 encoded words of a header value (UTF-8 assumed); the white space between
/// two adjacent encoded words is dropped, and their bytes joined before decoding, so that a
/// character split across two words survives.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        let word = &rest[start + 2..];
        let decoded = word.split_once('?').and_then(|(_charset, word)| {
            let (encoding, word) = word.split_once('?')?;
            let end = word.find("?=")?;
            let bytes = match encoding {
                "b" | "B" => base64(&word[..end]),
                "q" | "Q" => decode_q(&word.as_bytes()[..end], true),
                _ => return None,
            };
            Some((bytes, &word[end + 2..]))
        });
        let Some((bytes, after)) = decoded else {
            break;
        };
        let between = &rest[..start];
        if pending.is_empty() || !between.trim().is_empty() {
            out.push_str(&String::from_utf8_lossy(&pending));
            pending.clear();
            out.push_str(between);
        }
        pending.extend(bytes);
        rest = after;
    }
    out.push_str(&String::from_utf8_lossy(&pending));
    out.push_str(rest);
    out
}
