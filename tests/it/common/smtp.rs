//! A tiny SMTP receiver on 127.0.0.1 for the email tests: speaks just enough of RFC 5321
//! (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, no TLS, no AUTH), records every accepted
//! message, and can be told to answer the end of DATA with an error code (451 → the sender
//! retries, 550 → it gives up) to exercise the outbox's retry policy.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message as received.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA payload, dot-unstuffed, CRLF line ends.
    pub data: String,
}

impl Mail {
    /// A top-level header, unfolded; `None` when absent.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = found.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                found = Some(v.trim().to_string());
            }
        }
        found
    }
}

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    /// Codes for the next DATA ends (250 when empty).
    script: Arc<Mutex<VecDeque<u16>>>,
    /// Every DATA end answered, whatever the code.
    attempts: Arc<Mutex<usize>>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = SmtpServer {
            port: listener.local_addr().unwrap().port(),
            mails: Arc::default(),
            script: Arc::default(),
            attempts: Arc::default(),
        };
        let server = s.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let _ = server.session(sock).await;
                });
            }
        });
        s
    }

    /// The next DATA ends are answered with these codes (e.g. `[451, 451]`, `[550]`).
    pub fn fail_next(&self, codes: impl IntoIterator<Item = u16>) {
        self.script.lock().unwrap().extend(codes);
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// DATA transactions answered so far (accepted or refused).
    pub fn attempts(&self) -> usize {
        *self.attempts.lock().unwrap()
    }

    /// Waits until at least `n` messages were accepted and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        super::stub::eventually(|| async { (self.mails().len() >= n).then(|| self.mails()) }).await
    }

    async fn session(&self, sock: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = sock.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 localhost test ESMTP\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        while let Some(line) = lines.next_line().await? {
            let upper = line.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250 localhost".into()
            } else if upper.starts_with("MAIL FROM:") {
                from = angle(&line);
                to.clear();
                "250 2.1.0 OK".into()
            } else if upper.starts_with("RCPT TO:") {
                to.push(angle(&line));
                "250 2.1.5 OK".into()
            } else if upper == "DATA" {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                while let Some(l) = lines.next_line().await? {
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push_str("\r\n");
                }
                *self.attempts.lock().unwrap() += 1;
                match self.script.lock().unwrap().pop_front().unwrap_or(250) {
                    250 => {
                        let mail = Mail { from: from.clone(), to: to.clone(), data };
                        self.mails.lock().unwrap().push(mail);
                        "250 2.0.0 queued".into()
                    }
                    451 => "451 4.3.0 try again later".into(),
                    code => format!("{code} 5.1.1 refused"),
                }
            } else if upper == "QUIT" {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
                "250 2.0.0 OK".into()
            } else {
                "502 5.5.2 not implemented".into()
            };
            write.write_all(format!("{reply}\r\n").as_bytes()).await?;
        }
        Ok(())
    }
}

/// The address between `<` and `>` of a MAIL/RCPT line.
fn angle(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_string()
}
