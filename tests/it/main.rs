//! Every integration test in one binary, one module per area, so the crate is linked once.
//!
//! Each module starts the real server in-process on 127.0.0.1:0 (see `common`), with real
//! HTTP, WebSocket, Redis (a `redis-server` spawned on a free port) and Chromium clients. Run
//! one area with `cargo test --test it <module>::`, e.g. `cargo test --test it redis_backend::`.

mod common;

mod agent_accounts;
mod agent_assign;
mod agent_inbox;
mod agents;
mod auth;
mod browser;
mod browser_restart;
mod channels_email;
mod channels_instagram;
mod channels_line;
mod channels_messenger;
mod channels_phone;
mod channels_telegram;
mod channels_telnyx;
mod channels_twilio;
mod channels_unified;
mod channels_viber;
mod channels_whatsapp;
mod channels_window;
mod contacts;
mod conversation_counts;
mod conversation_filters;
mod doc_links;
mod http_answers;
mod inbound_cost;
mod inbox_browser;
mod inbox_templates;
mod js_client;
mod layers;
mod media;
mod members;
mod messages_change;
mod notes_rest;
mod openapi;
mod operations;
mod presence;
mod redis_backend;
mod rest_api;
mod retention;
mod room_cache;
mod session_sockets;
mod status;
mod webhooks;
mod widget;
mod widget_browser;
mod ws_access;
mod ws_chat;
mod ws_watch;
