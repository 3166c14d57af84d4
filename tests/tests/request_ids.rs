//! Every request's traces name its request id: the `x-request-id` a client sends (or one the
//! server sets), also returned in the response, so a complaint about one request can be found
//! in the logs. Its own test binary: it installs the process's tracing subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};

use loopwork_tests::{Backend, TestServer};

/// Everything the subscriber writes, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_request_s_traces_name_its_request_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("loopwork=info,tower_http=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let server = TestServer::start(Backend::Sqlite).await;
    let session = server.login("kefu").await;
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/me", server.base))
        .bearer_auth(&session.token)
        .header("x-request-id", "req-0427-desk")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-0427-desk", "returned to the client");
    // A request without one gets one, returned too.
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/me", server.base))
        .bearer_auth(&session.token)
        .send()
        .await
        .expect("request");
    let assigned = response.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert!(!assigned.is_empty());
    server.stop().await.drop_database().await;

    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    let named = |id: &str| text.lines().any(|l| l.contains(&format!("request_id={id}")) && l.contains("/api/v1/me"));
    assert!(named("req-0427-desk"), "the client's id is in the request's traces:\n{text}");
    assert!(named(&assigned), "the server's id is in the request's traces:\n{text}");
}
