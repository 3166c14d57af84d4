//! Owners signing in with a one-time code sent by text message, on SQLite and PostgreSQL, through
//! a real HTTP gateway (`serve --sms webhook`): the code reaches the gateway signed; a right code
//! signs in once; a resident of the estate register gets an account at first sign-in; unknown
//! and disabled numbers, and staff members', are answered alike and get no text; wrong, late and
//! repeated codes fail; requests are limited per number (a minute, an hour, a day); a failing
//! gateway changes no answer; no provider answers 503 and the page is told.

use std::sync::Arc;

use loopwork_server::sms::Sms;
use loopwork_tests::{Backend, OffsetClock, SmsGateway, TestServer, error_code as code, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    an_owner_signs_in_with_a_code_sent_through_the_gateway,
    a_resident_of_the_register_gets_an_account_at_first_sign_in,
    unknown_and_disabled_numbers_are_answered_alike_and_get_no_text,
    a_code_dies_after_five_wrong_tries_or_five_minutes,
    without_a_provider_no_code_is_promised,
);

async fn post(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let response =
        reqwest::Client::new().post(format!("{}{path}", server.base)).json(&body).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn with_gateway(backend: Backend) -> (TestServer, SmsGateway, Arc<OffsetClock>) {
    let gateway = SmsGateway::start().await;
    let clock = Arc::new(OffsetClock::default());
    let provider = gateway.provider();
    let server = TestServer::start_configured(backend, clock.clone(), |state| state.sms = Arc::new(provider)).await;
    (server, gateway, clock)
}

async fn an_owner_signs_in_with_a_code_sent_through_the_gateway(backend: Backend) {
    let (server, gateway, _) = with_gateway(backend).await;
    // yezhu1502's account has 13800138005.
    let (status, body) = post(&server, "/api/v1/login/code", json!({ "phone": "+86 138-0013-8005" })).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!((body["expires_in_s"].as_i64(), body["retry_after_s"].as_i64()), (Some(300), Some(60)));
    let sent = gateway.wait_code("13800138005", 0).await.expect("the gateway got the code, signed");
    assert!(sent.len() == 6 && sent.bytes().all(|b| b.is_ascii_digit()), "{sent}");
    let wrong = if sent == "000000" { "111111" } else { "000000" };
    let (status, body) =
        post(&server, "/api/v1/login/code/verify", json!({ "phone": "13800138005", "code": wrong })).await;
    assert_eq!((status, code(&body)), (401, "invalid_code"));
    let (status, session) = post(
        &server,
        "/api/v1/login/code/verify",
        json!({ "phone": "138 0013 8005", "code": sent, "device_name": "h5" }),
    )
    .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["role"], "owner");
    let owner = server.login("yezhu1502").await;
    assert_eq!(session["user_id"], owner.user.to_string(), "the owner's own account");
    let (status, me) = server.call(session["token"].as_str().expect("token"), "GET", "/api/v1/me", None).await;
    assert_eq!((status, me["units"][0]["unit"].as_str()), (200, Some("3-1502")));
    // A code signs in once; a second within the minute is refused with the wait.
    let (status, body) =
        post(&server, "/api/v1/login/code/verify", json!({ "phone": "13800138005", "code": sent })).await;
    assert_eq!((status, code(&body)), (401, "invalid_code"), "used");
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/login/code", server.base))
        .json(&json!({ "phone": "13800138005" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().get("retry-after").is_some());
    assert_eq!(gateway.count(), 1, "no second text");
    // Bad input is refused precisely.
    for (body, expected) in
        [(json!({ "phone": "12" }), "invalid_phone"), (json!({ "phone": "13800138005", "extra": 1 }), "invalid_json")]
    {
        let (status, answer) = post(&server, "/api/v1/login/code", body.clone()).await;
        assert_eq!((status, code(&answer)), (400, expected), "{body}");
    }
}

async fn a_resident_of_the_register_gets_an_account_at_first_sign_in(backend: Backend) {
    let (server, gateway, clock) = with_gateway(backend).await;
    // 王小明 lives in 3-1502 (the register) and has no account.
    let (status, _) = post(&server, "/api/v1/login/code", json!({ "phone": "13900139001" })).await;
    assert_eq!(status, 202);
    let sent = gateway.wait_code("13900139001", 0).await.expect("a text");
    let (status, session) =
        post(&server, "/api/v1/login/code/verify", json!({ "phone": "13900139001", "code": sent })).await;
    assert_eq!((status, session["role"].as_str()), (200, Some("owner")), "{session}");
    let token = session["token"].as_str().expect("token").to_owned();
    let (_, me) = server.call(&token, "GET", "/api/v1/me", None).await;
    assert_eq!(me["name"], "王小明");
    assert_eq!(me["units"], json!([{ "project": "hy-garden", "building": "3", "unit": "3-1502" }]));
    let (_, orders) = server.call(&token, "GET", "/api/v1/orders", None).await;
    assert!(!orders.as_array().expect("orders").is_empty(), "the unit's orders are theirs to follow");
    // The next sign-in finds the account made.
    clock.advance_minutes(2);
    post(&server, "/api/v1/login/code", json!({ "phone": "13900139001" })).await;
    let sent = gateway.wait_code("13900139001", 1).await.expect("a text");
    let (status, again) =
        post(&server, "/api/v1/login/code/verify", json!({ "phone": "13900139001", "code": sent })).await;
    assert_eq!((status, again["user_id"].clone()), (200, session["user_id"].clone()));
    // Its login is not the number (logins are listed on the console; numbers are masked), and
    // it has no password.
    let admin = server.login("admin").await.token;
    let id = session["user_id"].as_str().expect("id");
    let (_, account) = server.call(&admin, "GET", &format!("/api/v1/users/{id}"), None).await;
    let login = account["login"].as_str().expect("login").to_owned();
    assert!(login.starts_with("owner-") && !login.contains("139"), "{login}");
    assert_eq!(account["phone"], "139****9001");
    let status = reqwest::Client::new()
        .post(format!("{}/api/v1/login", server.base))
        .json(&json!({ "login": login, "password": "" }))
        .send()
        .await
        .expect("login")
        .status();
    assert_eq!(status.as_u16(), 401);
}

/// Long enough for a text sent beside an answer to arrive.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
}

async fn unknown_and_disabled_numbers_are_answered_alike_and_get_no_text(backend: Backend) {
    let (server, gateway, clock) = with_gateway(backend).await;
    let (known_status, known) = post(&server, "/api/v1/login/code", json!({ "phone": "13800138005" })).await;
    let (status, unknown) = post(&server, "/api/v1/login/code", json!({ "phone": "13700000000" })).await;
    assert_eq!((status, &unknown), (known_status, &known), "the same answer");
    settle().await;
    assert_eq!(gateway.count(), 1, "only the known number got a text");
    assert!(gateway.last_code("13700000000").is_none());
    let (status, _) = post(&server, "/api/v1/login/code", json!({ "phone": "13700000000" })).await;
    assert_eq!(status, 429, "limited alike");
    for guess in ["000000", "123456"] {
        let (status, body) =
            post(&server, "/api/v1/login/code/verify", json!({ "phone": "13700000000", "code": guess })).await;
        assert_eq!((status, code(&body)), (401, "invalid_code"));
    }
    // A staff member's number signs nobody in by code (kefu has 13800138001).
    clock.advance_minutes(2);
    post(&server, "/api/v1/login/code", json!({ "phone": "13800138001" })).await;
    settle().await;
    assert!(gateway.last_code("13800138001").is_none(), "codes are for owners");
    // A disabled owner gets no text, and is not made again from the register.
    let admin = server.login("admin").await.token;
    let owner = server.login("yezhu1502").await;
    let (status, _) =
        server.call(&admin, "PATCH", &format!("/api/v1/users/{}", owner.user), Some(json!({ "disabled": true }))).await;
    assert_eq!(status, 200);
    let before = gateway.count();
    let (status, _) = post(&server, "/api/v1/login/code", json!({ "phone": "13800138005" })).await;
    assert_eq!(status, 202);
    settle().await;
    assert_eq!(gateway.count(), before, "no text for a disabled account");
    let (status, _) =
        post(&server, "/api/v1/login/code/verify", json!({ "phone": "13800138005", "code": "000000" })).await;
    assert_eq!(status, 401);
}

async fn a_code_dies_after_five_wrong_tries_or_five_minutes(backend: Backend) {
    let (server, gateway, clock) = with_gateway(backend).await;
    post(&server, "/api/v1/login/code", json!({ "phone": "13800138005" })).await;
    let sent = gateway.wait_code("13800138005", 0).await.expect("a text");
    let wrong = if sent == "999999" { "999998" } else { "999999" };
    for _ in 0..5 {
        let (status, _) =
            post(&server, "/api/v1/login/code/verify", json!({ "phone": "13800138005", "code": wrong })).await;
        assert_eq!(status, 401);
    }
    let (status, body) =
        post(&server, "/api/v1/login/code/verify", json!({ "phone": "13800138005", "code": sent })).await;
    assert_eq!((status, code(&body)), (429, "too_many_attempts"), "the number waits");
    clock.advance_minutes(2);
    let (status, _) = post(&server, "/api/v1/login/code/verify", json!({ "phone": "13800138005", "code": sent })).await;
    assert_eq!(status, 401, "five wrong tries killed the code");
    // A new code, too late.
    post(&server, "/api/v1/login/code", json!({ "phone": "13800138005" })).await;
    let late = gateway.wait_code("13800138005", 1).await.expect("a text");
    assert_ne!(late, sent, "a new code");
    clock.advance_minutes(6);
    let (status, _) = post(&server, "/api/v1/login/code/verify", json!({ "phone": "13800138005", "code": late })).await;
    assert_eq!(status, 401, "expired");
    // Five codes an hour: three more, then the wait.
    for _ in 0..3 {
        clock.advance_minutes(2);
        let (status, _) = post(&server, "/api/v1/login/code", json!({ "phone": "13800138005" })).await;
        assert_eq!(status, 202);
    }
    clock.advance_minutes(2);
    let (status, body) = post(&server, "/api/v1/login/code", json!({ "phone": "13800138005" })).await;
    assert_eq!((status, code(&body)), (429, "too_many_attempts"));
    // Ten a day: an hour on, five more, then the wait is the day's.
    clock.advance_minutes(61);
    for _ in 0..5 {
        clock.advance_minutes(2);
        let (status, body) = post(&server, "/api/v1/login/code", json!({ "phone": "13800138005" })).await;
        assert_eq!(status, 202, "{body}");
    }
    clock.advance_minutes(61);
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/login/code", server.base))
        .json(&json!({ "phone": "13800138005" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 429);
    let wait: u64 = response.headers()["retry-after"].to_str().expect("header").parse().expect("seconds");
    assert!(wait > 3_600, "the day's limit holds it: {wait} s");
    // The gateway failing: the answer is the same (it must not tell known numbers), no text.
    clock.advance_minutes(24 * 60);
    gateway.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let before = gateway.count();
    let (status, _) = post(&server, "/api/v1/login/code", json!({ "phone": "13800138005" })).await;
    assert_eq!(status, 202);
    settle().await;
    assert_eq!(gateway.count(), before);
}

async fn without_a_provider_no_code_is_promised(backend: Backend) {
    let server =
        TestServer::start_configured(backend, Arc::new(OffsetClock::default()), |state| state.sms = Arc::new(Sms::Off))
            .await;
    let (status, body) = post(&server, "/api/v1/login/code", json!({ "phone": "13800138005" })).await;
    assert_eq!((status, code(&body)), (503, "sms_unavailable"));
    let (_, methods) = server.call("", "GET", "/api/v1/login/methods", None).await;
    assert_eq!(methods, json!({ "password": true, "code": false }), "the page offers the password alone");
    // The default sends no codes; production refuses the development provider.
    assert!(matches!(loopwork_server::config::ServeArgs::default().sms(), Ok(Sms::Off)));
    let args = loopwork_server::config::ServeArgs {
        production: true,
        sms: loopwork_server::config::SmsProvider::Log,
        ..Default::default()
    };
    assert!(args.sms().is_err());
    let args = loopwork_server::config::ServeArgs {
        production: true,
        sms: loopwork_server::config::SmsProvider::Off,
        ..Default::default()
    };
    assert!(args.sms().is_ok());
}
