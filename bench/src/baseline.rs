//! The baseline: the smallest honest WebSocket broadcast server on the same stack.
//!
//! `GET /ws?room=<id>` joins a room; every text frame a client sends is given the room's next
//! seq, formatted **once** into a frame of the same shape and size as the hub's `message`
//! frame (same fields: ids, seq, author, text, status, timestamp…), and handed to every member
//! through a bounded queue (`try_send`; a full queue drops that member, like the hub's
//! slow-consumer rule). No auth, no JSON parsing, no history: what is left is the practical
//! ceiling of axum + tokio-tungstenite fan-out of the same bytes on this machine, which every
//! hub figure is compared to. (Broadcasting a 40-byte frame instead would compare two
//! different workloads: bytes per delivery drive the kernel's and the client's cost.)

use axum::Router;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use dashmap::DashMap;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

#[derive(Default)]
struct Rooms {
    members: DashMap<String, Vec<(u64, mpsc::Sender<Utf8Bytes>)>>,
    seqs: DashMap<String, AtomicU64>,
    next_id: AtomicU64,
}

#[derive(serde::Deserialize)]
struct Join {
    room: String,
    /// A publish-only connection does not receive the room's frames.
    #[serde(default)]
    publish: bool,
}

/// Serves the baseline on `listen` until the process is killed.
pub async fn serve(listen: &str) -> anyhow::Result<()> {
    let rooms = Arc::new(Rooms::default());
    let app = Router::new().route("/ws", get(upgrade)).with_state(rooms);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("baseline listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(ws: WebSocketUpgrade, State(rooms): State<Arc<Rooms>>, Query(j): Query<Join>) -> Response {
    ws.write_buffer_size(8192)
        .read_buffer_size(4096)
        .on_upgrade(move |socket| session(rooms, j.room, j.publish, socket))
}

async fn session(rooms: Arc<Rooms>, room: String, publish_only: bool, socket: WebSocket) {
    let id = rooms.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(1024);
    if !publish_only {
        rooms.members.entry(room.clone()).or_default().push((id, tx));
    }
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            if sink.feed(Message::Text(f)).await.is_err() {
                return;
            }
            while let Ok(f) = rx.try_recv() {
                if sink.feed(Message::Text(f)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let (room_id, author) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let mut n = 0u64;
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else { continue };
        n += 1;
        let seq = rooms.seqs.entry(room.clone()).or_default().fetch_add(1, Ordering::Relaxed) + 1;
        let frame: Utf8Bytes = format!(
            r#"{{"type":"message","message":{{"id":"{}","conversation_id":"{room_id}","seq":{seq},"author":"{author}","direction":"inbound","text":"{}","medias":[],"status":"received","client_id":"{n}","tm_create":"{}","channel":"webchat"}}}}"#,
            uuid::Uuid::now_v7(),
            text.as_str(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        )
        .into();
        if let Some(members) = rooms.members.get(&room) {
            for (_, m) in members.iter() {
                let _ = m.try_send(frame.clone());
            }
        }
    }
    if let Some(mut m) = rooms.members.get_mut(&room) {
        m.retain(|(mid, _)| *mid != id);
    }
    writer.abort();
}
