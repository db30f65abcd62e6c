//! A stub provider API on 127.0.0.1: records every request and answers from a script, so
//! tests see exactly what Switchboard sent and can make the "provider" fail on demand.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
    pub fn form_field(&self, name: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A scripted answer: status, extra headers, body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Answer {
    pub fn status(status: u16, body: &str) -> Answer {
        Answer { status, headers: vec![], body: body.into() }
    }
}

type Default = Arc<dyn Fn(&Recorded, usize) -> Answer + Send + Sync>;

#[derive(Clone)]
pub struct Stub {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

impl Stub {
    /// Starts a stub whose unscripted answers come from `default(request, index)`.
    pub async fn start(default: impl Fn(&Recorded, usize) -> Answer + Send + Sync + 'static) -> Stub {
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<Answer>>> = Arc::default();
        let default: Default = Arc::new(default);
        let (r, s) = (requests.clone(), script.clone());
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (r, s, d) = (r.clone(), s.clone(), default.clone());
            async move {
                let rec = Recorded { method, path: uri.to_string(), headers, body };
                let index = {
                    let mut all = r.lock().unwrap();
                    all.push(rec.clone());
                    all.len() - 1
                };
                let answer = s.lock().unwrap().pop_front().unwrap_or_else(|| d(&rec, index));
                let mut res: Response = (StatusCode::from_u16(answer.status).unwrap(), answer.body).into_response();
                for (k, v) in answer.headers {
                    res.headers_mut().insert(k, v.parse().unwrap());
                }
                res
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Stub { url, requests, script }
    }

    /// The next unscripted requests get these answers, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        eventually(|| async { (self.requests().len() >= n).then(|| self.requests()) }).await
    }
}

/// Polls `f` until it yields `Some`, for at most 10 seconds.
pub async fn eventually<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not reached within 10s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
