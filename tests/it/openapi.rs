//! `/openapi.json` describes the API as served: unique operationIds, every route (provider
//! hooks, media, WebSocket, metrics included), the answers the server really gives, and links
//! between operations; then schemathesis fuzzes the live server against it, every check on.

use crate::common::{KEY_A, TestServer, provision};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The schemathesis release the suite is written against.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

async fn document(srv: &TestServer) -> Value {
    reqwest::get(srv.url("/openapi.json")).await.unwrap().json().await.unwrap()
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            out.push((path.clone(), method.clone(), op.clone()));
        }
    }
    out
}

#[tokio::test]
async fn operation_ids_are_unique_and_every_route_is_described() {
    let srv = TestServer::start().await;
    let doc = document(&srv).await;
    let ops = operations(&doc);
    let mut seen = HashSet::new();
    for (path, method, op) in &ops {
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(seen.insert(id.to_string()), "operationId {id} is repeated ({method} {path})");
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.contains_key("429"), "{method} {path} lacks 429");
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            for code in ["401", "403"] {
                assert!(responses.contains_key(code), "{method} {path} is secured but lacks {code}");
            }
        }
        if op["requestBody"]["content"].get("application/json").is_some() {
            for code in ["400", "413", "422"] {
                assert!(responses.contains_key(code), "{method} {path} takes JSON but lacks {code}");
            }
        }
    }
    for (path, method) in [
        ("/v1.0/hooks/{provider}/{account_id}", "post"),
        ("/v1.0/hooks/{provider}/{account_id}", "get"),
        ("/v1.0/hooks/email/{account_id}", "post"),
        ("/v1.0/hooks/smtp/{account_id}", "post"),
        ("/v1.0/media/{account_id}/{reference}", "get"),
        ("/v1.0/ws", "get"),
        ("/metrics", "get"),
        ("/v1.0/conversations", "post"),
        ("/v1.0/webhooks/{id}/deliveries/{delivery_id}/redeliver", "post"),
    ] {
        assert!(doc["paths"][path].get(method).is_some(), "openapi lacks {method} {path}");
    }
    let ttl = &doc["components"]["schemas"]["TokenRequest"]["properties"]["ttl"];
    assert_eq!(
        (ttl["minimum"].as_u64(), ttl["maximum"].as_u64()),
        (Some(1), Some(srv.state.config.auth.token_max_ttl_secs))
    );
    // The server reads what the schema admits: JSON has no int/float split, so `60.0` is 60.
    let api = srv.api(KEY_A);
    let (s, t) =
        api.post("/v1.0/tokens", serde_json::json!({"identity": "op", "all_conversations": true, "ttl": 60.0})).await;
    assert_eq!(s, 201, "{t}");
    let (s, e) =
        api.post("/v1.0/tokens", serde_json::json!({"identity": "op", "all_conversations": true, "ttl": 1.5})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("invalid_fields")), "{e}");
    let links = &doc["paths"]["/v1.0/conversations"]["post"]["responses"]["201"]["links"];
    assert_eq!(links["messages_list"]["parameters"]["id"], "$response.body#/id", "{links}");
    assert_eq!(links["messages_list"]["operationId"], "messages_list");
    srv.stop().await;
}

/// `python3 -m venv` works, installing `python3-venv` with apt-get when it does not.
fn ensure_venv_module(python: &Path) {
    let works = || Command::new(python).args(["-c", "import venv, ensurepip"]).status().is_ok_and(|s| s.success());
    if !works() {
        provision::apt_install("python3-venv", "python3 cannot make a venv");
        assert!(works(), "python3-venv installed, yet `python3 -m venv` still cannot work");
    }
}

/// `st` from a venv under the target dir, created and filled from PyPI on first use.
fn schemathesis() -> PathBuf {
    let python = provision::ensure("python3", "python3");
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("schemathesis-venv");
    let st = venv.join("bin/st");
    if st.is_file() {
        return st;
    }
    ensure_venv_module(&python);
    let ok = Command::new(&python).args(["-m", "venv"]).arg(&venv).status();
    assert!(matches!(ok, Ok(s) if s.success()), "python3 -m venv {} failed", venv.display());
    let pip = Command::new(venv.join("bin/pip")).args(["install", "--quiet", SCHEMATHESIS]).status();
    assert!(matches!(pip, Ok(s) if s.success()), "pip install {SCHEMATHESIS} failed");
    assert!(st.is_file(), "schemathesis installed no `st`");
    st
}

/// What schemathesis may see from a request that its schema allows. Beyond its defaults:
/// 422 — business rules no schema expresses (a token for a non-participant, an unknown provider,
/// a phone number that is not E.164, a byte limit hit by multi-byte text).
/// For requests the schema refuses, 413 is also a refusal: text over `limits.max_text_bytes` is
/// `payload_too_large`, as documented.
const CONFIG: &str = r#"
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

# An upload's type is sniffed from its bytes: fuzzed bytes are mostly not an accepted type (415).
[[operations]]
include-path = "/v1.0/media"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "413", "415", "422", "429"]
# A multipart body's extra or odd parts are ignored, as form handlers do (not a schema breach).
checks.negative_data_rejection.enabled = false
phases.stateful.enabled = false

# A made-up invite token is gone (410 `invite_invalid`), whatever the password.
[[operations]]
include-path = "/v1.0/invites/accept"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "410", "422", "429"]
checks.negative_data_rejection.expected-statuses = ["400", "410", "413", "415", "422", "429"]

# A plain GET is not a WebSocket upgrade, and fuzzing cannot make one: 400 is its right answer.
[[operations]]
include-path = "/v1.0/ws"
checks.positive_data_acceptance.expected-statuses = ["400"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_on_any_operation() {
    let st = tokio::task::spawn_blocking(schemathesis).await.unwrap();
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let started = Instant::now();
    let out = tokio::process::Command::new(&st)
        .arg("--config-file")
        .arg(&config)
        .args(["run", &srv.url("/openapi.json"), "--checks", "all", "--max-examples", "30", "--workers", "1"])
        .args(["--seed", "1", "--request-timeout", "10", "--no-color"])
        .args(["-H", &format!("Authorization: Bearer {KEY_A}")])
        .current_dir(dir.path())
        .kill_on_drop(true)
        .output();
    // 66 operations on a machine shared with the rest of the suite: generous, only a hang trips it.
    let out = tokio::time::timeout(Duration::from_secs(420), out).await.expect("schemathesis within 420 s").unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text.rfind("SUMMARY").map_or(&text[..], |i| &text[i..]);
    eprintln!("schemathesis took {:?}:\n{summary}", started.elapsed());
    assert!(out.status.success(), "schemathesis failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("Tested: 68"),
        "not every operation was tested:
{text}"
    );
    assert!(text.contains("✅ Stateful"), "the stateful (links) phase did not pass:\n{summary}");
    srv.stop().await;
}
