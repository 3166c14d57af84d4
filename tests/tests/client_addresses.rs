//! The sign-in limits per client address behind a proxy, on SQLite and PostgreSQL: with
//! `--trusted-proxy`, each client the proxy names in `X-Forwarded-For` has its own budget of
//! wrong passwords (one client locked out, the next still signs in); without it, the header is
//! ignored, so that a client cannot escape its limit by writing the header itself.

use std::sync::Arc;

use loopwork_tests::{Backend, OffsetClock, TestServer, on_both_backends};
use serde_json::json;

on_both_backends!(
    each_client_behind_a_trusted_proxy_has_its_own_budget,
    a_forwarded_header_from_anyone_else_is_ignored
);

/// A sign-in as `login`, said to come from `client`: its status.
async fn sign_in(server: &TestServer, login: &str, password: &str, client: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/api/v1/login", server.base))
        .header("x-forwarded-for", client)
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

const WRONG_PER_ADDRESS: usize = loopwork_server::auth::ADDRESS_FAILURES as usize;

async fn each_client_behind_a_trusted_proxy_has_its_own_budget(backend: Backend) {
    let proxy: std::net::IpAddr = "127.0.0.1".parse().expect("address");
    let server = TestServer::start_configured(backend, Arc::new(OffsetClock::default()), |state| {
        state.trusted_proxies = Arc::new(vec![proxy]);
    })
    .await;
    for i in 0..WRONG_PER_ADDRESS {
        assert_eq!(sign_in(&server, &format!("guess{i}"), "wrong-password", "203.0.113.7").await, 401);
    }
    let demo = loopwork_server::demo::DEMO_PASSWORD;
    assert_eq!(sign_in(&server, "kefu", demo, "203.0.113.7").await, 429, "this client is held");
    assert_eq!(sign_in(&server, "kefu", demo, "203.0.113.8").await, 200, "the next client is not");
    // What the client wrote before the proxy's entry is not believed.
    assert_eq!(sign_in(&server, "kefu", demo, "203.0.113.8, 203.0.113.7").await, 429);
}

async fn a_forwarded_header_from_anyone_else_is_ignored(backend: Backend) {
    let server = TestServer::start(backend).await;
    for i in 0..WRONG_PER_ADDRESS {
        let status = sign_in(&server, &format!("guess{i}"), "wrong-password", &format!("198.51.100.{i}")).await;
        assert_eq!(status, 401);
    }
    let demo = loopwork_server::demo::DEMO_PASSWORD;
    assert_eq!(sign_in(&server, "kefu", demo, "198.51.100.200").await, 429, "the peer's budget is spent");
}
