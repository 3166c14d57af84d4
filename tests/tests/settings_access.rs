//! Who reads and who writes each organization setting through the one `GET`/`PUT` pair
//! (`server/src/http/settings.rs`): the SLA book is read by anyone of the organization (phones
//! count down with it) and the service desk by anyone (owners call it), the webhook
//! destinations by administrators only, the rest by office staff; only administrators write, and a malformed or invalid value is refused and changes
//! nothing. On both stores.

use loopwork_tests::{Backend, TestServer, on_both_backends};
use serde_json::Value;

const SETTINGS: [&str; 6] =
    ["closing-authority", "sla", "closed-loop", "escalation", "webhook-destinations", "service-desk"];

async fn put(server: &TestServer, token: &str, name: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .put(format!("{}/api/v1/settings/{name}", server.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("put");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn each_setting_is_read_and_written_only_by_whom_it_names(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.login("yezhu1502").await;
    let technician = server.login("wang").await;
    let dispatcher = server.login("kefu").await;
    let admin = server.login("admin").await;
    for name in SETTINGS {
        let path = format!("/api/v1/settings/{name}");
        let (status, seeded) = server.call(&admin.token, "GET", &path, None).await;
        assert_eq!(status, 200, "{name}: {seeded}");
        let readers: [(&str, &str, bool); 3] = [
            ("owner", &owner.token, name == "sla" || name == "service-desk"),
            ("technician", &technician.token, name == "sla" || name == "service-desk"),
            ("dispatcher", &dispatcher.token, name != "webhook-destinations"),
        ];
        for (who, token, may) in readers {
            let (status, body) = server.call(token, "GET", &path, None).await;
            if may {
                assert_eq!((status, &body), (200, &seeded), "{who} reads {name}");
            } else {
                assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{who} reads {name}");
            }
        }
        // Only an administrator writes, even the value in force.
        for (who, token) in
            [("owner", &owner.token), ("technician", &technician.token), ("dispatcher", &dispatcher.token)]
        {
            let (status, body) = put(&server, token, name, &seeded).await;
            assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{who} writes {name}");
        }
        // An unknown field is refused whole.
        let mut extra = seeded.clone();
        extra["and_also"] = Value::Bool(true);
        let (status, body) = put(&server, &admin.token, name, &extra).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_json")), "{name}: {body}");
        // The administrator's write of the value in force is taken as it is.
        let (status, body) = put(&server, &admin.token, name, &seeded).await;
        assert_eq!(status, 204, "{name}: {body}");
        assert_eq!(server.call(&admin.token, "GET", &path, None).await, (200, seeded.clone()), "{name}");
    }
    // A value each setting's check refuses leaves the stored one as it was.
    let invalid = [
        (
            "closing-authority",
            serde_json::json!({"minor": "owner", "serious": "supervisor", "severe": "manager", "critical": "manager"}),
            "invalid_role",
        ),
        ("closed-loop", serde_json::json!({"auto_confirm_days": 0}), "invalid_setting"),
        ("sla", serde_json::json!({"calendars": {}, "policies": []}), "invalid_sla"),
        ("service-desk", serde_json::json!({"phone": "12", "hours": "24小时"}), "invalid_setting"),
        ("service-desk", serde_json::json!({"phone": null, "hours": "时".repeat(61)}), "invalid_setting"),
    ];
    for (name, value, code) in invalid {
        let path = format!("/api/v1/settings/{name}");
        let before = server.call(&admin.token, "GET", &path, None).await;
        let (status, body) = put(&server, &admin.token, name, &value).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)), "{name}: {body}");
        assert_eq!(server.call(&admin.token, "GET", &path, None).await, before, "{name} unchanged");
    }
    server.stop().await.drop_database().await;
}

on_both_backends!(each_setting_is_read_and_written_only_by_whom_it_names);
