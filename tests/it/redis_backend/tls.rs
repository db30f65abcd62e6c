//! `rediss://`: a node talks to a TLS-only Redis port, verifying the server certificate
//! against `redis.tls_ca_file`; without that CA the same node refuses to start.
//!
//! The certificates are made here with the `openssl` command line (a throwaway CA and a
//! server certificate for 127.0.0.1); `redis-server` listens for TLS beside its plain port
//! (the plain port only serves the harness's readiness check).

use crate::common;
use crate::common::redis::{Node, RedisServer, free_port};
use common::KEY_A;
use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let bin = common::provision::ensure("openssl", "openssl");
    let out = Command::new(bin).args(args).current_dir(dir).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`ca.crt`) and a server certificate for 127.0.0.1 (`server.crt`, `server.key`).
fn certificates(dir: &Path) {
    let subj = |cn: &str| format!("/CN={cn}");
    openssl(
        dir,
        &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt"]
            .iter()
            .copied()
            .chain(["-days", "2", "-subj", &subj("switchboard test CA")])
            .collect::<Vec<_>>(),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &subj("127.0.0.1"),
        ],
    );
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
        ],
    );
}

#[tokio::test]
async fn a_node_uses_a_tls_redis_and_verifies_its_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    certificates(d);
    let tls_port = free_port();
    let file = |n: &str| d.join(n).to_string_lossy().to_string();
    let (cert, key, ca) = (file("server.crt"), file("server.key"), file("ca.crt"));
    let tls_port_s = tls_port.to_string();
    let redis = RedisServer::start_with(&[
        "--tls-port",
        &tls_port_s,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
        "--appendonly",
        "no",
    ])
    .await;
    let url = format!("rediss://127.0.0.1:{tls_port}");

    // Trusting the test CA: the node works end to end over TLS (store and pub/sub link).
    let ca_file = ca.clone();
    let node = Node::start_with(&url, false, move |c| c.redis.tls_ca_file = ca_file).await;
    let api = node.api(KEY_A);
    let c = api.conversation("over tls").await;
    api.webchat(&c, "alice").await;
    let mut ws = node.ws(&api.token("alice", &[&c]).await).await;
    ws.subscribe(&c, None).await;
    let (status, _) =
        api.post(&format!("/v1.0/conversations/{c}/messages"), serde_json::json!({"text": "secret"})).await;
    assert_eq!(status, 201);
    assert_eq!(ws.next_of("message").await["message"]["text"], "secret", "delivered through the TLS pub/sub link");
    let mut plain = redis.connection().await;
    let stored: i64 = redis::cmd("DBSIZE").query_async(&mut plain).await.unwrap();
    assert!(stored > 0, "the node wrote its state into this Redis");
    drop(node);

    // Without the CA the certificate is not trusted: the node refuses to start.
    let err = common::redis::serve_refused(&url, |c| c.redis.command_timeout_ms = 1000).await;
    assert!(err.contains("cannot reach Redis"), "{err}");

    // A CA file that is not a PEM certificate is a configuration error, said at start.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::test_config();
    cfg.store.backend = switchboard::config::Backend::Redis;
    cfg.redis.url = url;
    let path = dir.path().join("config.toml");
    std::fs::write(dir.path().join("bad.pem"), "not a certificate").unwrap();
    cfg.redis.tls_ca_file = dir.path().join("bad.pem").to_string_lossy().to_string();
    std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("redis.tls_ca_file"), "{said}");
}
