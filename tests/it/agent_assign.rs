//! Agents assigning from their own sign-in, on both backends: an agent token may give a
//! conversation it may act on (its own or an unassigned one) to itself, to another agent of
//! the tenant, or to nobody; it may not touch a colleague's conversation (403) nor change
//! anything but the status and the owner (403); an identity that is no agent account of the
//! tenant (unknown, deleted, another tenant's) is 422 `unknown_agent`. The assignee sees it in
//! its Mine list and counts at once; the room hears the `assigned` frame.

use crate::agent_accounts::signed_up;
use crate::common::{self, BACKENDS, KEY_A, KEY_B, TestServer};
use serde_json::{Value, json};

fn ids(page: &Value) -> Vec<String> {
    page["result"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

/// The next `assigned` frame (status and other frames of the same change may come first).
async fn assigned(ws: &mut common::Ws) -> Value {
    loop {
        let f = ws.next().await;
        if f["type"] == "assigned" {
            return f;
        }
    }
}

fn code(v: &(u16, Value)) -> (u16, Option<&str>) {
    (v.0, v.1["error"]["code"].as_str())
}

#[tokio::test]
async fn an_agent_assigns_to_itself_a_colleague_or_nobody() {
    for backend in BACKENDS {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let op = srv.api(KEY_A);
        let ann_session = signed_up(&srv, KEY_A, "ann@example.com", "agent").await;
        let ben_session = signed_up(&srv, KEY_A, "ben@example.com", "agent").await;
        let (ann, ben) =
            (srv.api(ann_session["token"].as_str().unwrap()), srv.api(ben_session["token"].as_str().unwrap()));
        let gone = signed_up(&srv, KEY_A, "gone@example.com", "agent").await;
        assert_eq!(op.delete(&format!("/v1.0/agents/{}", gone["agent"]["id"].as_str().unwrap())).await.0, 204);
        signed_up(&srv, KEY_B, "other@example.com", "agent").await;
        let (free, bens) = (op.conversation("free").await, op.conversation("ben's").await);
        op.put(&format!("/v1.0/conversations/{bens}"), json!({"owner_id": "ben"})).await;
        let put = |api: &common::Api, c: &str, body: Value| {
            let (api, path) = (api.clone(), format!("/v1.0/conversations/{c}"));
            async move { api.put(&path, body).await }
        };

        // The room hears every change.
        let operator = op.post("/v1.0/tokens", json!({"identity": "olivia", "all_conversations": true})).await.1;
        let mut watcher = srv.ws(operator["token"].as_str().unwrap()).await;
        watcher.subscribe(&free, None).await;

        // To itself: Mine gains it.
        let v = put(&ann, &free, json!({"owner_type": "agent", "owner_id": "ann"})).await;
        assert_eq!((v.0, v.1["owner_id"].as_str()), (200, Some("ann")), "{backend:?}: {v:?}");
        assert_eq!(assigned(&mut watcher).await["owner_id"], "ann");
        assert_eq!(ids(&ann.get("/v1.0/conversations?owner_id=ann").await.1), [free.as_str()]);

        // Not to an identity without an account of this tenant; nothing changes.
        for who in ["nobody", "gone", "other"] {
            let v = put(&ann, &free, json!({"owner_id": who})).await;
            assert_eq!(code(&v), (422, Some("unknown_agent")), "{backend:?} {who}: {v:?}");
        }
        // Nor anything but the status and the owner, even with an owner change.
        for body in
            [json!({"name": "mine now"}), json!({"owner_id": "ben", "metadata": {}}), json!({"timers": {}}), json!({})]
        {
            let v = put(&ann, &free, body.clone()).await;
            assert_eq!(code(&v), (403, Some("forbidden")), "{body}: {v:?}");
        }
        assert_eq!(op.get(&format!("/v1.0/conversations/{free}")).await.1["owner_id"], "ann");

        // To a colleague, with a status: the colleague's Mine list and counts gain it, the
        // giver loses access.
        let v = put(&ann, &free, json!({"owner_id": "ben", "status": "pending"})).await;
        assert_eq!(
            (v.0, v.1["owner_id"].as_str(), v.1["status"].as_str()),
            (200, Some("ben"), Some("pending")),
            "{v:?}"
        );
        assert_eq!(assigned(&mut watcher).await["owner_id"], "ben");
        assert_eq!(
            ids(&ben.get("/v1.0/conversations?owner_id=ben").await.1),
            [bens.clone(), free.clone()],
            "newest first"
        );
        let counts = ben.get("/v1.0/conversations/counts?owner_id=ben").await.1;
        assert_eq!((counts["mine"].as_u64(), counts["unassigned"].as_u64()), (Some(2), Some(0)), "{counts}");
        assert_eq!(ann.get(&format!("/v1.0/conversations/{free}")).await.0, 403);

        // A colleague's conversation stays out of reach: neither taken nor unassigned.
        for body in
            [json!({"owner_id": "ann"}), json!({"owner_type": null, "owner_id": null}), json!({"status": "resolved"})]
        {
            assert_eq!(code(&put(&ann, &bens, body.clone()).await), (403, Some("forbidden")), "{body}");
        }

        // Unassigned by its owner: back in everyone's Unassigned.
        let v = put(&ben, &free, json!({"owner_type": null, "owner_id": null})).await;
        assert_eq!((v.0, &v.1["owner_id"]), (200, &Value::Null), "{v:?}");
        assert_eq!(assigned(&mut watcher).await["owner_id"], Value::Null);
        assert_eq!(ids(&ann.get("/v1.0/conversations?owner_id=none").await.1), [free.as_str()]);
        // A bad owner shape is still 422 `invalid_owner`, for agents too.
        let v = put(&ann, &free, json!({"owner_type": "team", "owner_id": "ben"})).await;
        assert_eq!(code(&v), (422, Some("invalid_owner")));
        // API keys keep naming any identity (agents minted with an API key have no account).
        assert_eq!(put(&op, &free, json!({"owner_id": "max"})).await.0, 200);
        srv.stop().await;
    }
}
