//! Customer webhooks on the Redis backend: a SIGKILLed node's pending deliveries are
//! delivered by the restarted node, attempts kept; and the webhook events of messages it
//! acknowledged just before dying are not lost (they enter the outbox with the message).

use super::*;
use common::redis::{RedisServer, free_port, wait_until as redis_wait};
use std::process::{Child, Command, Stdio};

/// A `switchboard` process on Redis with webhook settings for this test.
struct Node {
    port: u16,
    config: std::path::PathBuf,
    log: std::path::PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(redis_url: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut c = config();
        c.server.listen = format!("127.0.0.1:{port}");
        c.store.backend = switchboard::config::Backend::Redis;
        c.redis.url = redis_url.to_string();
        c.webhooks.retry_base_ms = 200;
        c.webhooks.retry_max_ms = 400;
        c.webhooks.lease_secs = 1;
        c.log.filter = "warn,switchboard=info".into();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, toml::to_string(&c).unwrap()).unwrap();
        let log = dir.path().join("node.log");
        let mut n = Node { port, config, log, child: None, _dir: dir };
        n.spawn().await;
        n
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        eventually(|| async { reqwest::get(&url).await.ok().filter(|r| r.status() == 200).map(|_| ()) }).await;
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn api(&self, key: &str) -> common::Api {
        common::Api { client: reqwest::Client::new(), base: format!("http://127.0.0.1:{}", self.port), key: key.into() }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn pending_deliveries_survive_a_node_sigkill() {
    let redis = RedisServer::start().await;
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let stub =
        Stub::start(
            move |_, _| {
                if flag.load(Ordering::SeqCst) { Answer::status(200, "ok") } else { Answer::status(503, "later") }
            },
        )
        .await;
    let mut node = Node::start(&redis.url()).await;
    let api = node.api(KEY_A);
    let (hook, secret) = webhook(&api, json!({"url": stub.url, "events": ["message.created"]})).await;
    let c = api.conversation("durable").await;
    for i in 1..=5 {
        let (s, _) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": format!("m{i}")})).await;
        assert_eq!(s, 201);
    }
    stub.wait_for(2).await; // the first delivery is being retried, the others wait behind it
    node.kill();
    up.store(true, Ordering::SeqCst);
    let killed_at = stub.requests().len();
    node.spawn().await;

    let ok = eventually(|| async {
        let v: Vec<Value> = stub.requests()[killed_at..].iter().map(|r| check(r, &secret)).collect();
        (v.len() >= 5).then_some(v)
    })
    .await;
    let texts: Vec<&str> = ok.iter().map(|e| e["data"]["text"].as_str().unwrap()).collect();
    assert_eq!(texts[..5], ["m1", "m2", "m3", "m4", "m5"], "resumed in order");
    let ds = eventually(|| async {
        let ds = deliveries(&node.api(KEY_A), &hook).await;
        (ds.len() == 5 && ds.iter().all(|d| d["status"] == "delivered")).then_some(ds)
    })
    .await;
    assert!(ds.iter().any(|d| d["attempt_count"].as_u64().unwrap() >= 2), "attempts before the kill are kept");
}

#[tokio::test]
async fn acknowledged_messages_reach_webhooks_though_the_node_died_right_after_the_acks() {
    let redis = RedisServer::start().await;
    let stub = ok_stub().await;
    let mut node = Node::start(&redis.url()).await;
    let api = node.api(KEY_A);
    let (_, secret) = webhook(&api, json!({"url": stub.url, "events": ["message.created"]})).await;
    let c = api.conversation("burst").await;
    api.webchat(&c, "alice").await;
    let token = api.token("alice", &[&c]).await;
    let mut ws = common::Ws::connect(&format!("ws://127.0.0.1:{}/v1.0/ws?token={token}", node.port)).await;
    ws.subscribe(&c, None).await;
    // A burst: the node acknowledges it at once, while (before the fix) its webhook events
    // were still on their way through in-process channels to the outbox.
    const N: usize = 200;
    for i in 0..N {
        ws.send(json!({"type": "send", "conversation_id": c, "text": format!("m{i}")})).await;
    }
    let mut acked = std::collections::BTreeSet::new();
    while acked.len() < N {
        acked.insert(ws.next_of("ack").await["message_id"].as_str().unwrap().to_string());
    }
    node.kill(); // right after the last ack: whatever lived only in that process is gone

    node.spawn().await;
    let mut missing = acked.clone();
    redis_wait(Duration::from_secs(30), "a webhook for every acknowledged message", || {
        for r in stub.requests() {
            let e = check(&r, &secret);
            if e["type"] == "message.created" {
                missing.remove(e["data"]["id"].as_str().unwrap());
            }
        }
        let done = missing.is_empty();
        async move { done }
    })
    .await;
}
