//! The JSON bodies of every write route, through the real router on an SQLite database with the
//! demo organization, as an administrator, a dispatcher, a technician and an owner send them.
//! Nothing may panic or answer 500; every refusal is the documented error envelope.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/login"),
    ("POST", "/api/v1/orders"),
    ("POST", "/api/v1/orders/{id}/actions"),
    ("POST", "/api/v1/orders/{id}/classify"),
    ("POST", "/api/v1/orders/{id}/notes"),
    ("POST", "/api/v1/orders/{id}/link"),
    ("POST", "/api/v1/orders/bulk-assign"),
    ("PUT", "/api/v1/settings/closing-authority"),
    ("PUT", "/api/v1/settings/sla"),
    ("PUT", "/api/v1/settings/closed-loop"),
    ("PUT", "/api/v1/settings/escalation"),
    ("POST", "/api/v1/settings/webhooks"),
    ("PUT", "/api/v1/settings/webhook-destinations"),
    ("POST", "/api/v1/estate/units"),
    ("POST", "/api/v1/estate/residents"),
    ("POST", "/api/v1/estate/callers"),
    ("POST", "/api/v1/triage"),
    ("POST", "/api/v1/knowledge"),
    ("PUT", "/api/v1/knowledge/{id}"),
    ("POST", "/api/v1/assistant/messages"),
    ("POST", "/api/v1/assistant/conversations/{id}/replies"),
];

struct World {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    tokens: Vec<String>,
    order: String,
    _dir: std::path::PathBuf,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let dir = std::env::temp_dir().join(format!("loopwork-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (router, tokens, order) = runtime.block_on(async {
            let url = format!("sqlite://{}", dir.join("fuzz.db").display());
            let db = loopwork_server::writer::open(&url).await.expect("open");
            let clock: std::sync::Arc<dyn loopwork_sync_core::Clock> =
                std::sync::Arc::new(loopwork_sync_core::SystemClock);
            loopwork_server::demo::seed(db.as_ref(), clock.now_ms()).await.expect("demo");
            let state = loopwork_server::AppState::new(db, clock);
            let router = loopwork_server::http::router(state);
            let mut tokens = Vec::new();
            for login in ["admin", "kefu", "wang", "yezhu1502"] {
                let body = serde_json::json!({ "login": login, "password": loopwork_server::demo::DEMO_PASSWORD });
                let response = call(&router, Method::POST, "/api/v1/login", None, body.to_string().into_bytes()).await;
                tokens.push(response.1["token"].as_str().expect("token").to_owned());
            }
            let (_, orders) = call(&router, Method::GET, "/api/v1/orders?limit=1", Some(&tokens[1]), Vec::new()).await;
            let order = orders[0]["id"].as_str().expect("a demo order").to_owned();
            (router, tokens, order)
        });
        World { runtime, router, tokens, order, _dir: dir }
    })
}

async fn call(
    router: &axum::Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = router.clone().oneshot(request.body(Body::from(body)).expect("request")).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

fuzz_target!(|data: &[u8]| {
    quiet_caught_panics();
    let Some((&pick, body)) = data.split_first() else { return };
    let world = world();
    // The low five bits pick the route, the high three the caller.
    let (method, path) = ROUTES[(pick & 0x1f) as usize % ROUTES.len()];
    let token = &world.tokens[(pick >> 5) as usize % world.tokens.len()];
    let path = path.replace("{id}", &world.order);
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let (status, json) = world.runtime.block_on(call(&world.router, method, &path, Some(token), body.to_vec()));
    assert!(status < 500, "{path} answered {status}: {json}");
    if status >= 400 {
        assert!(json["error"]["code"].is_string(), "{path} answered {status} without the envelope: {json}");
    }
});

/// libfuzzer-sys aborts on every panic, even one the code catches: sync-core turns panics of
/// Automerge's decoders into errors (`work_order::contained`), which is the behaviour under test.
/// A panic that escapes still aborts: libfuzzer-sys checks the target's result itself. With
/// `LOOPWORK_FUZZ_PANICS=1` every panic is printed (to see why a saved input fails).
fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("LOOPWORK_FUZZ_PANICS").is_none() {
            std::panic::set_hook(Box::new(|_| {}));
        }
    });
}
