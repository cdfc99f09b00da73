//! A small SMTP sink on loopback for the tests: it speaks enough SMTP for lettre (EHLO, MAIL,
//! RCPT, DATA, RSET, NOOP, QUIT; no STARTTLS) and keeps every message, decoded with
//! mail-parser (quoted-printable, base64, RFC 2047 subjects).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A message as received.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct SmtpSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<ReceivedMail>>>,
}

fn address(argument: &str) -> String {
    let start = argument.find('<').map_or(0, |i| i + 1);
    let end = argument.rfind('>').unwrap_or(argument.len());
    argument[start..end.max(start)].trim().to_owned()
}

fn decode(from: String, to: Vec<String>, raw: &[u8]) -> ReceivedMail {
    let parsed = mail_parser::MessageParser::default().parse(raw);
    let (subject, text, html) = match &parsed {
        Some(message) => (
            message.subject().unwrap_or_default().to_owned(),
            message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            message.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        ),
        None => Default::default(),
    };
    ReceivedMail { from, to, subject, text, html }
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the SMTP sink");
        let port = listener.local_addr().expect("address").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let kept = messages.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read);
                    let _ = write.write_all(b"220 localhost ESMTP sink\r\n").await;
                    let (mut from, mut to) = (String::new(), Vec::new());
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let command = line.trim_end().to_owned();
                        let verb = command.split([' ', ':']).next().unwrap_or_default().to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" => b"250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
                            "HELO" | "NOOP" => b"250 OK\r\n",
                            "MAIL" => {
                                from = address(&command);
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
                            "DATA" => {
                                let _ = write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await;
                                let mut raw = Vec::new();
                                loop {
                                    let mut data = String::new();
                                    if lines.read_line(&mut data).await.unwrap_or(0) == 0 {
                                        return;
                                    }
                                    if data == ".\r\n" || data == ".\n" {
                                        break;
                                    }
                                    // Dot-unstuffing.
                                    let data = data.strip_prefix('.').unwrap_or(&data);
                                    raw.extend_from_slice(data.as_bytes());
                                }
                                let mail = decode(std::mem::take(&mut from), std::mem::take(&mut to), &raw);
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
                });
            }
        });
        Self { port, messages }
    }

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
