//! The S3 backend against a real S3-compatible server: moto's server mode, installed from
//! PyPI into a venv under the target dir on first use and started on a free port by the test.

use super::{fetch, upload};
use crate::common::provision;
use crate::common::redis::free_port;
use crate::common::{KEY_A, TestServer, test_config};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MOTO: &str = "moto[server]";

/// `moto_server` from a venv under the target dir, created and filled from PyPI on first use.
fn moto_server() -> PathBuf {
    let python = provision::ensure("python3", "python3");
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("moto-venv");
    let bin = venv.join("bin/moto_server");
    if bin.is_file() {
        return bin;
    }
    let works = || Command::new(&python).args(["-c", "import venv, ensurepip"]).status().is_ok_and(|s| s.success());
    if !works() {
        provision::apt_install("python3-venv", "python3 cannot make a venv");
    }
    let ok = Command::new(&python).args(["-m", "venv"]).arg(&venv).status();
    assert!(matches!(ok, Ok(s) if s.success()), "python3 -m venv {} failed", venv.display());
    let pip = Command::new(venv.join("bin/pip")).args(["install", "--quiet", MOTO]).status();
    assert!(matches!(pip, Ok(s) if s.success()), "pip install {MOTO} failed");
    assert!(bin.is_file(), "{MOTO} installed no `moto_server`");
    bin
}

/// A running moto server, killed on drop.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_moto() -> Moto {
    let bin = tokio::task::spawn_blocking(moto_server).await.unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let url = format!("http://127.0.0.1:{port}");
    let moto = Moto { child, url };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(&moto.url).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "moto_server not answering in 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The bucket (moto accepts any credentials; S3's CreateBucket is a PUT on the bucket).
    let r = reqwest::Client::new().put(format!("{}/media-test", moto.url)).send().await.unwrap();
    assert!(r.status().is_success(), "bucket not created: {}", r.status());
    moto
}

#[tokio::test]
async fn the_s3_backend_stores_serves_ranges_and_deletes_on_an_s3_compatible_server() {
    let moto = start_moto().await;
    let mut c = test_config();
    c.media.backend = switchboard::config::MediaBackend::S3;
    c.media.s3.endpoint = moto.url.clone();
    c.media.s3.bucket = "media-test".into();
    c.media.s3.access_key_id = "testing".into();
    c.media.s3.secret_access_key = "testing".into();
    c.media.s3.prefix = "uploads".into();
    let srv = TestServer::start_with(c).await;
    let api = srv.api(KEY_A);
    // Larger than one 5 MiB multipart part, so the upload really goes up in parts.
    let text: String = (0..200_000).map(|i| format!("line {i:06} of a big text file\n")).collect();
    assert!(text.len() > 5 * 1024 * 1024);
    let (s, up) = upload(&api, &[], "big.txt", text.as_bytes()).await;
    assert_eq!(s, 201, "{up}");
    assert_eq!(up["size"], text.len());
    let id = up["id"].as_str().unwrap();
    // The object really is in the bucket.
    let tenant = srv.state.media.records.get(id.parse().unwrap()).await.unwrap().unwrap().tenant;
    let direct = reqwest::get(format!("{}/media-test/uploads/{tenant}/{id}", moto.url)).await.unwrap();
    assert_eq!(direct.status(), 200);
    let url = up["url"].as_str().unwrap();
    let res = fetch(url, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), text);
    let res = fetch(url, Some("bytes=5-10")).await;
    assert_eq!(res.status(), 206);
    assert_eq!(res.text().await.unwrap(), &text[5..11]);
    // Deleting the conversation it was sent in deletes the object from the bucket.
    let conv = api.conversation("s3").await;
    let (s, _) = api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"medias": [{"media_id": id}]})).await;
    assert_eq!(s, 201);
    assert_eq!(api.delete(&format!("/v1.0/conversations/{conv}")).await.0, 200);
    crate::common::stub::eventually(|| async { (fetch(url, None).await.status() == 404).then_some(()) }).await;
    let direct = reqwest::get(format!("{}/media-test/uploads/{tenant}/{id}", moto.url)).await.unwrap();
    assert_eq!(direct.status(), 404);
    srv.stop().await;
}
