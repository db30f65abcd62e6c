//! The email channel end to end, on both backends: inbound-parse posts (SendGrid-shaped
//! fixtures) into rooms with threading, outbound mail to a real SMTP receiver on 127.0.0.1
//! with Message-ID / In-Reply-To / References, and SMTP failures through the retry policy.

use crate::common;
use crate::common::channels::{config, conversations, create_account, messages, settled};
use crate::common::smtp::{Mail, SmtpServer};
use crate::common::{BACKENDS, Backend, KEY_A, TestServer};
use serde_json::{Value, json};

const SECRET: &str = "inbound-secret-0123456789";
const PASSWORD: &str = "smtp-password-0123456789";

struct Fixture<'a> {
    from: &'a str,
    message_id: &'a str,
    in_reply_to: &'a str,
    text: &'a str,
}

/// An inbound-parse body from fixture `name` (`email_inbound_new` / `email_inbound_reply`).
fn body(name: &str, f: &Fixture<'_>) -> String {
    let raw = common::channels::fixture(&format!("{name}.multipart"));
    let filled = raw
        .replace("__FROM__", f.from)
        .replace("__MESSAGE_ID__", f.message_id)
        .replace("__IN_REPLY_TO__", f.in_reply_to)
        .replace("__REFERENCES__", &format!("<root@customer.test> {}", f.in_reply_to))
        .replace("__SUBJECT__", "Order 1234 never arrived")
        .replace("__TEXT__", f.text);
    format!("{}\r\n", filled.replace('\n', "\r\n"))
}

async fn inbound(srv: &TestServer, account: &str, query: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(srv.url(&format!("/v1.0/hooks/email/{account}{query}")))
        .header("content-type", "multipart/form-data; boundary=xYzZY")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn account(srv: &TestServer, smtp: &SmtpServer) -> String {
    let a = create_account(
        srv,
        json!({"type": "email", "provider": "smtp", "name": "Acme Support", "address": "support@acme.test",
               "credentials": {"host": "127.0.0.1", "port": smtp.port, "tls": "none", "username": "",
                               "password": PASSWORD, "inbound_secret": SECRET}}),
        &[SECRET, PASSWORD],
    )
    .await;
    assert_eq!(a["inbound_url"], srv.url(&format!("/v1.0/hooks/smtp/{}", a["id"].as_str().unwrap())));
    a["id"].as_str().unwrap().to_string()
}

fn new_mail<'a>(from: &'a str, message_id: &'a str) -> Fixture<'a> {
    Fixture { from, message_id, in_reply_to: "", text: "Hi, my order 1234 never arrived.\nCan you check?" }
}

async fn setup(backend: Backend) -> (TestServer, SmtpServer, String) {
    let srv = TestServer::start_on(backend, config()).await;
    let smtp = SmtpServer::start().await;
    let acc = account(&srv, &smtp).await;
    (srv, smtp, acc)
}

fn q() -> String {
    format!("?secret={SECRET}")
}

async fn reply(srv: &TestServer, c: &str, text: &str) -> Value {
    let (s, m) = srv.api(KEY_A).post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": text})).await;
    assert_eq!(s, 201, "{m}");
    m
}

#[tokio::test]
async fn inbound_secret_is_required_and_accounts_are_validated() {
    for backend in BACKENDS {
        let (srv, _smtp, acc) = setup(backend).await;
        let mail = || body("email_inbound_new", &new_mail("Alice Doe <alice@customer.test>", "<m1@customer.test>"));
        assert_eq!(inbound(&srv, &acc, "", mail()).await.status(), 403, "{backend:?}: no secret");
        assert_eq!(inbound(&srv, &acc, "?secret=wrong", mail()).await.status(), 403);
        assert!(conversations(&srv).await.is_empty(), "nothing stored on a refused hook");
        let by_header = reqwest::Client::new()
            .post(srv.url(&format!("/v1.0/hooks/smtp/{acc}")))
            .header("content-type", "multipart/form-data; boundary=xYzZY")
            .header("x-inbound-secret", SECRET)
            .body(mail())
            .send()
            .await
            .unwrap();
        assert_eq!(by_header.status(), 200);
        let basic = reqwest::Client::new()
            .post(srv.url(&format!("/v1.0/hooks/smtp/{acc}")))
            .basic_auth("sendgrid", Some(SECRET))
            .header("content-type", "multipart/form-data; boundary=xYzZY")
            .body(mail())
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), 200, "Basic auth password, then a duplicate: still one message");
        assert_eq!(conversations(&srv).await.len(), 1);
        let r = inbound(&srv, &uuid::Uuid::now_v7().to_string(), &q(), mail()).await;
        assert_eq!(r.status(), 404, "unknown account");
        let r = inbound(&srv, &acc, &q(), "not multipart".into()).await;
        assert_eq!(r.status(), 400);
        let (s, e) = srv
            .api(KEY_A)
            .post(
                "/v1.0/conversation_accounts",
                json!({"type": "email", "provider": "smtp", "address": "x@acme.test", "credentials": {"host": "h"}}),
            )
            .await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("missing_credentials")));
        srv.stop().await;
    }
}

#[tokio::test]
async fn inbound_email_opens_a_room_and_the_reply_is_threaded() {
    for backend in BACKENDS {
        let (srv, smtp, acc) = setup(backend).await;
        let r = inbound(
            &srv,
            &acc,
            &q(),
            body("email_inbound_new", &new_mail("Alice Doe <Alice@Customer.test>", "<m1@customer.test>")),
        )
        .await;
        assert_eq!(r.status(), 200, "{backend:?}");
        let convs = conversations(&srv).await;
        assert_eq!(convs.len(), 1);
        assert_eq!(convs[0]["name"], "Order 1234 never arrived", "named after the subject");
        let c = convs[0]["id"].as_str().unwrap().to_string();
        let msgs = messages(&srv, &c).await;
        assert_eq!(msgs[0]["text"], "Hi, my order 1234 never arrived.\nCan you check?");
        assert_eq!(msgs[0]["channel"], "email");
        let (_, parts) = srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}/participants")).await;
        let alice = &parts["result"][0];
        assert_eq!(alice["address"], json!({"type": "email", "target": "alice@customer.test", "name": "Alice Doe"}));
        assert_eq!(alice["data"]["email_thread"]["message_id"], "<m1@customer.test>");

        let m = reply(&srv, &c, "We are on it: a new parcel leaves today.").await;
        assert_eq!(m["deliveries"][0]["channel"], "email");
        let d = settled(&srv, &c, m["id"].as_str().unwrap()).await;
        assert_eq!(d["status"], "sent", "{d}");
        let mail: Mail = smtp.wait_for(1).await.remove(0);
        let id = format!("<{}@switchboard>", m["id"].as_str().unwrap());
        assert_eq!(
            (mail.from.as_str(), mail.to.as_slice()),
            ("support@acme.test", &["alice@customer.test".to_string()][..])
        );
        assert_eq!(mail.header("Message-ID").as_deref(), Some(id.as_str()));
        assert_eq!(d["provider_message_id"].as_str(), Some(id.as_str()));
        assert_eq!(mail.header("In-Reply-To").as_deref(), Some("<m1@customer.test>"));
        assert_eq!(mail.header("References").as_deref(), Some("<m1@customer.test>"));
        assert_eq!(mail.header("Subject").as_deref(), Some("Re: Order 1234 never arrived"));
        assert!(mail.header("From").unwrap().contains("Acme Support"), "{:?}", mail.header("From"));
        assert!(mail.header("Content-Type").unwrap().starts_with("multipart/alternative"));
        assert!(mail.data.contains("text/plain") && mail.data.contains("text/html"));
        assert!(mail.data.contains("a new parcel leaves today."));

        // Alice answers that mail: threaded into the room, quote and attribution trimmed,
        // the attachment listed.
        let answer = Fixture {
            from: "Alice Doe <alice@customer.test>",
            message_id: "<m2@customer.test>",
            in_reply_to: &id,
            text: "Thanks, got it!",
        };
        assert_eq!(inbound(&srv, &acc, &q(), body("email_inbound_reply", &answer)).await.status(), 200);
        assert_eq!(conversations(&srv).await.len(), 1);
        let msgs = messages(&srv, &c).await;
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[2]["text"], "Thanks, got it!");
        let pdf = &msgs[2]["medias"][0];
        assert_eq!(
            (pdf["name"].as_str(), pdf["content_type"].as_str()),
            (Some("receipt.pdf"), Some("application/pdf"))
        );
        assert!(pdf["media_id"].is_string(), "the attachment is stored: {pdf}");

        // The next reply threads under her latest mail, with the whole chain in References.
        let m = reply(&srv, &c, "Glad to help.").await;
        settled(&srv, &c, m["id"].as_str().unwrap()).await;
        let mail = smtp.wait_for(2).await.remove(1);
        assert_eq!(mail.header("In-Reply-To").as_deref(), Some("<m2@customer.test>"));
        let refs = format!("<root@customer.test> {id} <m2@customer.test>");
        assert_eq!(mail.header("References").as_deref(), Some(refs.as_str()));
        srv.stop().await;
    }
}

#[tokio::test]
async fn replies_match_by_thread_first_then_by_sender() {
    for backend in BACKENDS {
        let (srv, smtp, acc) = setup(backend).await;
        inbound(&srv, &acc, &q(), body("email_inbound_new", &new_mail("alice@customer.test", "<a1@customer.test>")))
            .await;
        let c = conversations(&srv).await[0]["id"].as_str().unwrap().to_string();
        let m = reply(&srv, &c, "Which address should we use?").await;
        settled(&srv, &c, m["id"].as_str().unwrap()).await;
        smtp.wait_for(1).await;
        let ours = format!("<{}@switchboard>", m["id"].as_str().unwrap());

        // Bob (cc'd) answers our mail: the thread wins, he joins Alice's room.
        let bob = Fixture {
            from: "Bob <bob@customer.test>",
            message_id: "<b1@customer.test>",
            in_reply_to: &ours,
            text: "Use the office one.",
        };
        assert_eq!(inbound(&srv, &acc, &q(), body("email_inbound_reply", &bob)).await.status(), 200, "{backend:?}");
        assert_eq!(conversations(&srv).await.len(), 1);
        let (_, parts) = srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}/participants")).await;
        let targets: Vec<&str> =
            parts["result"].as_array().unwrap().iter().map(|p| p["address"]["target"].as_str().unwrap()).collect();
        assert_eq!(targets, ["alice@customer.test", "bob@customer.test"]);

        // Alice writes a fresh mail (no threading headers): her room, by (account, sender).
        inbound(&srv, &acc, &q(), body("email_inbound_new", &new_mail("alice@customer.test", "<a2@customer.test>")))
            .await;
        assert_eq!(messages(&srv, &c).await.len(), 4);
        // A reply to a mail we never saw, from someone new: a new room.
        let stranger = Fixture {
            from: "carol@other.test",
            message_id: "<c1@other.test>",
            in_reply_to: "<unknown@x>",
            text: "Me too",
        };
        inbound(&srv, &acc, &q(), body("email_inbound_reply", &stranger)).await;
        let convs = conversations(&srv).await;
        assert_eq!(convs.len(), 2);
        let carol = convs.iter().find(|x| x["id"] != c.as_str()).unwrap();
        let first = &messages(&srv, carol["id"].as_str().unwrap()).await[0];
        assert_eq!(
            (first["text"].as_str(), first["medias"][0]["name"].as_str()),
            (Some("Me too"), Some("receipt.pdf"))
        );
        srv.stop().await;
    }
}

#[tokio::test]
async fn smtp_failures_are_retried_then_fail() {
    for backend in BACKENDS {
        let (srv, smtp, acc) = setup(backend).await;
        inbound(&srv, &acc, &q(), body("email_inbound_new", &new_mail("alice@customer.test", "<m1@customer.test>")))
            .await;
        let c = conversations(&srv).await[0]["id"].as_str().unwrap().to_string();

        // 451 twice (transient), then accepted: sent on the third attempt, same Message-ID.
        smtp.fail_next([451, 451]);
        let m = reply(&srv, &c, "retry me").await;
        let d = settled(&srv, &c, m["id"].as_str().unwrap()).await;
        assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("sent"), Some(3)), "{backend:?} {d}");
        assert_eq!(smtp.attempts(), 3);
        assert_eq!(smtp.mails().len(), 1);

        // 550 (permanent): failed at once, no retry.
        smtp.fail_next([550]);
        let m = reply(&srv, &c, "bad mailbox").await;
        let d = settled(&srv, &c, m["id"].as_str().unwrap()).await;
        assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(1)), "{d}");
        assert!(d["error"].as_str().unwrap().contains("550"), "{d}");
        assert_eq!(smtp.attempts(), 4);

        // 451 every time: failed after channels.max_attempts (3).
        smtp.fail_next([451, 451, 451]);
        let m = reply(&srv, &c, "doomed").await;
        let d = settled(&srv, &c, m["id"].as_str().unwrap()).await;
        assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(3)), "{d}");
        assert!(d["error"].as_str().unwrap().contains("451"), "{d}");
        let (_, msg) =
            srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}/messages/{}", m["id"].as_str().unwrap())).await;
        assert_eq!(msg["status"], "failed");
        srv.stop().await;
    }
}

#[tokio::test]
async fn unreachable_smtp_server_is_retried_as_transient() {
    let srv = TestServer::start_on(Backend::Memory, config()).await;
    let dead = common::redis::free_port();
    let a = create_account(
        &srv,
        json!({"type": "email", "provider": "smtp", "address": "support@acme.test",
               "credentials": {"host": "127.0.0.1", "port": dead.to_string(), "tls": "none", "inbound_secret": SECRET}}),
        &[SECRET],
    )
    .await;
    let acc = a["id"].as_str().unwrap();
    inbound(&srv, acc, &q(), body("email_inbound_new", &new_mail("alice@customer.test", "<m1@customer.test>"))).await;
    let c = conversations(&srv).await[0]["id"].as_str().unwrap().to_string();
    let m = reply(&srv, &c, "anyone there?").await;
    let d = settled(&srv, &c, m["id"].as_str().unwrap()).await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(3)), "{d}");
    assert!(d["error"].as_str().unwrap().starts_with("gave up after 3 attempts"), "{d}");
    srv.stop().await;
}

/// The conversation events published on `events` (kind and data), in order, up to the first
/// of `kind`.
async fn events_until(
    events: &mut tokio::sync::broadcast::Receiver<switchboard::broker::Event>,
    kind: &str,
) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    while !seen.iter().any(|(k, _): &(String, Value)| k == kind) {
        let e = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
        // The account's own events may still be on their way.
        if e.conversation_id.is_some() {
            seen.push((e.kind.to_string(), e.data.value()));
        }
    }
    seen
}

/// Email takes the one inbound door: a text over `limits.max_text_bytes` is stored cut (on a
/// character boundary) and answered 200 — a refusal would be retried by the inbound-parse
/// provider forever —, the message counts in `messages_posted_total{entry="provider"}` once
/// (a re-posted webhook is no second message), and the room and its participant are created
/// through `conversations`, with their events (the room named after the subject at once).
#[tokio::test]
async fn long_email_is_cut_like_sms_counted_and_its_room_announced() {
    for backend in BACKENDS {
        let mut cfg = config();
        cfg.limits.max_text_bytes = 100;
        let srv = TestServer::start_on(backend, cfg).await;
        let smtp = SmtpServer::start().await;
        let acc = account(&srv, &smtp).await;
        let mut events = srv.state.broker.events();
        // 13 ASCII bytes, then two-byte characters: byte 100 falls inside one.
        let long = format!("Order 12345: {}", "é".repeat(100));
        let mail = Fixture { text: &long, ..new_mail("Alice Doe <alice@customer.test>", "<long@customer.test>") };
        let r = inbound(&srv, &acc, &q(), body("email_inbound_new", &mail)).await;
        assert_eq!(r.status(), 200, "{backend:?}: cut, not refused");
        let c = conversations(&srv).await[0]["id"].as_str().unwrap().to_string();
        let text = messages(&srv, &c).await[0]["text"].as_str().unwrap().to_string();
        assert_eq!(text, format!("Order 12345: {}", "é".repeat(43)), "{backend:?}");
        assert_eq!(text.len(), 99);
        assert!(long.starts_with(&text));
        assert_eq!(inbound(&srv, &acc, &q(), body("email_inbound_new", &mail)).await.status(), 200, "a retry");
        assert_eq!(messages(&srv, &c).await.len(), 1);

        let scrape = reqwest::get(srv.url("/metrics")).await.unwrap().text().await.unwrap();
        let posted = scrape
            .lines()
            .find(|l| l.starts_with("switchboard_messages_posted_total{") && l.contains("entry=\"provider\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
        assert_eq!(posted, Some(1.0), "{backend:?}: {scrape}");

        let seen = events_until(&mut events, "message.created").await;
        let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["conversation.created", "participant.added", "message.created"], "{backend:?}");
        assert_eq!(seen[0].1["name"], "Order 1234 never arrived");
        assert_eq!(seen[1].1["address"]["target"], "alice@customer.test");
        srv.stop().await;
    }
}
