//! Email attachments both ways, on both backends: an inbound-parse POST's file parts become
//! stored medias of the message (sniffed: an executable is refused and named in the text; a
//! re-posted webhook is still one message), and a reply carrying stored medias reaches a real
//! SMTP receiver with them as MIME attachments — one over `media.email_attachment_max_bytes`
//! as a link instead.

use super::{fetch, upload};
use crate::common::channels::{config, conversations, create_account, messages, settled};
use crate::common::smtp::{Mail, SmtpServer};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use base64::Engine;
use serde_json::json;

const SECRET: &str = "inbound-secret-0123456789";
/// A PDF with the binary comment line real ones have (so it is not 7-bit text on the wire).
const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n%%EOF\n";
const EXE: &[u8] = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00PE\x00\x00";

/// A SendGrid-shaped inbound-parse body with these attachments (name, bytes).
fn email(message_id: &str, files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let b = "xYzZYattach";
    let mut body = Vec::new();
    let fields = [
        ("headers", format!("Message-ID: {message_id}\nSubject: Invoice\nFrom: Alice <alice@customer.test>")),
        ("from", "Alice <alice@customer.test>".into()),
        ("subject", "Invoice".into()),
        ("text", "Here is the invoice.".into()),
        ("attachments", files.len().to_string()),
    ];
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    for (i, (name, bytes)) in files.iter().enumerate() {
        body.extend_from_slice(
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"attachment{}\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n",
                i + 1
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

async fn setup(backend: Backend, cap: u64) -> (TestServer, SmtpServer, String) {
    let mut c = config();
    c.media.email_attachment_max_bytes = cap;
    let srv = TestServer::start_on(backend, c).await;
    let smtp = SmtpServer::start().await;
    let a = create_account(
        &srv,
        json!({"type": "email", "provider": "smtp", "name": "Acme Support", "address": "support@acme.test",
               "credentials": {"host": "127.0.0.1", "port": smtp.port, "tls": "none", "inbound_secret": SECRET}}),
        &[SECRET],
    )
    .await;
    (srv, smtp, a["id"].as_str().unwrap().to_string())
}

async fn inbound(srv: &TestServer, acc: &str, (ct, body): (String, Vec<u8>)) -> u16 {
    let url = srv.url(&format!("/v1.0/hooks/email/{acc}?secret={SECRET}"));
    let res = reqwest::Client::new().post(url).header("content-type", ct).body(body).send().await.unwrap();
    res.status().as_u16()
}

#[tokio::test]
async fn inbound_email_attachments_become_stored_medias() {
    on_every_backend(inbound_on).await;
}

async fn inbound_on(backend: Backend) {
    let (srv, _smtp, acc) = setup(backend, 10 << 20).await;
    let files: &[(&str, &[u8])] = &[("invoice.pdf", PDF), ("setup.exe", EXE), ("notes.txt", b"line one\nline two\n")];
    assert_eq!(inbound(&srv, &acc, email("<a1@customer.test>", files)).await, 200, "{backend:?}");
    let convs = conversations(&srv).await;
    assert_eq!(convs.len(), 1);
    let c = convs[0]["id"].as_str().unwrap().to_string();
    let msgs = messages(&srv, &c).await;
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    let text = m["text"].as_str().unwrap();
    assert!(text.starts_with("Here is the invoice."), "{text}");
    assert!(text.contains("[attachment not kept: setup.exe"), "the refused file is named: {text}");
    let medias = m["medias"].as_array().unwrap();
    assert_eq!(medias.len(), 2, "{m}");
    assert_eq!(
        (medias[0]["name"].as_str(), medias[0]["content_type"].as_str()),
        (Some("invoice.pdf"), Some("application/pdf"))
    );
    assert_eq!(medias[1]["name"], "notes.txt");
    assert!(medias[1]["content_type"].as_str().unwrap().starts_with("text/plain"), "{m}");
    assert!(medias.iter().all(|x| x["media_id"].is_string()), "stored, not links: {m}");
    let res = fetch(medias[0]["url"].as_str().unwrap(), None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(&res.bytes().await.unwrap()[..], PDF);

    // The provider re-posts the same email: still one message.
    assert_eq!(inbound(&srv, &acc, email("<a1@customer.test>", files)).await, 200);
    assert_eq!(messages(&srv, &c).await.len(), 1);
    srv.stop().await;
}

/// The body of the MIME part whose headers name `filename`, base64-decoded.
fn attachment(mail: &Mail, filename: &str) -> Option<Vec<u8>> {
    let at = mail.data.find(&format!("filename=\"{filename}\""))?;
    let rest = &mail.data[at..];
    let body_start = rest.find("\r\n\r\n")? + 4;
    let body = &rest[body_start..];
    let end = body.find("\r\n--").unwrap_or(body.len());
    let b64: String = body[..end].split("\r\n").collect();
    base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()
}

#[tokio::test]
async fn stored_medias_go_out_as_email_attachments_and_big_ones_as_links() {
    on_every_backend(outbound_on).await;
}

async fn outbound_on(backend: Backend) {
    let (srv, smtp, acc) = setup(backend, 4096).await;
    assert_eq!(inbound(&srv, &acc, email("<b1@customer.test>", &[])).await, 200, "{backend:?}");
    let c = conversations(&srv).await[0]["id"].as_str().unwrap().to_string();
    let api = srv.api(KEY_A);
    let (s, pdf) = upload(&api, &[], "report.pdf", PDF).await;
    assert_eq!(s, 201, "{pdf}");
    let big = "a line of a long log file\n".repeat(400);
    let (s, log) = upload(&api, &[], "big.log", big.as_bytes()).await;
    assert_eq!(s, 201, "{log}");
    let (s, m) = api
        .post(
            &format!("/v1.0/conversations/{c}/messages"),
            json!({"text": "Your report, and the log.", "medias": [{"media_id": pdf["id"]}, {"media_id": log["id"]}]}),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    let d = settled(&srv, &c, m["id"].as_str().unwrap()).await;
    assert_eq!(d["status"], "sent", "{d}");
    let mail = smtp.wait_for(1).await.remove(0);
    assert!(mail.header("Content-Type").unwrap().starts_with("multipart/mixed"), "{}", mail.data);
    assert_eq!(attachment(&mail, "report.pdf").as_deref(), Some(PDF), "the PDF is attached: {}", mail.data);
    assert!(!mail.data.contains("filename=\"big.log\""), "over the cap: not attached");
    // Long lines go quoted-printable: undo its soft line breaks before looking for the link.
    let unfolded = mail.data.replace("=\r\n", "");
    let link = srv.url(&format!("/v1.0/media/{}", log["id"].as_str().unwrap()));
    assert!(unfolded.contains(&link), "over the cap: a link instead: {}", mail.data);
    let pdf_link = srv.url(&format!("/v1.0/media/{}", pdf["id"].as_str().unwrap()));
    assert!(!unfolded.contains(&pdf_link), "an attached media is not also linked");
    srv.stop().await;
}
