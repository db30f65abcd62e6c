//! `MONITOR` on a test's own `redis-server`: the commands a node really sends, for tests that
//! count round trips (a burst's outbox writes, a steady message's cost).

/// `MONITOR` on the test's own `redis-server`: every command it executes, as it logs them.
pub struct Monitor {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Monitor {
    pub async fn start(port: u16) -> Monitor {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(b"MONITOR\r\n").await.unwrap();
        let mut reader = tokio::io::BufReader::new(stream);
        let mut ok = String::new();
        reader.read_line(&mut ok).await.unwrap();
        assert_eq!(ok.trim(), "+OK");
        let lines: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut lines = reader.lines();
            while let Ok(Some(l)) = lines.next_line().await {
                sink.lock().unwrap().push(l);
            }
        });
        Monitor { lines }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// The client address of a `MONITOR` line (`<time> [<db> <addr>] "CMD" …`).
pub fn monitor_client(line: &str) -> &str {
    line.split_once(" [").and_then(|(_, r)| r.split_once(']')).map_or("", |(c, _)| c)
}
