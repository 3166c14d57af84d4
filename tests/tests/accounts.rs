//! The admin console's accounts on SQLite and PostgreSQL: administrators list, create and change
//! accounts (role, trades, projects, units held to the estate register), disable them (no
//! sign-in, no sync), reset passwords with or without signing devices out, and revoke devices;
//! nobody else may, and no administrator reaches another organization's accounts.

use loopwork_server::store::NewUser;
use loopwork_sync_core::Role;
use loopwork_tests::{Backend, TestServer, error_code as code, login_at, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    an_administrator_creates_changes_and_disables_accounts,
    bindings_follow_the_role_and_the_register,
    a_password_reset_can_sign_every_device_out,
    the_list_pages_filters_and_masks,
    only_administrators_manage_accounts_and_only_their_own_organization_s,
);

/// The status of a sign-in with `password`.
async fn sign_in(server: &TestServer, login: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/api/v1/login", server.base))
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

async fn create(server: &TestServer, admin: &str, body: Value) -> (u16, Value) {
    server.call(admin, "POST", "/api/v1/users", Some(body)).await
}

async fn an_administrator_creates_changes_and_disables_accounts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.login("admin").await.token;
    let (status, made) = create(
        &server,
        &admin,
        json!({ "login": "zhao", "password": "Lift-2026-repair", "role": "technician", "name": " 赵师傅 ",
                "phone": "139 0000 1111", "trades": ["elevator", "elevator", "water_electric"] }),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().expect("id").to_owned();
    let (_, user) = server.call(&admin, "GET", &format!("/api/v1/users/{id}"), None).await;
    assert_eq!(user["name"], "赵师傅");
    assert_eq!(user["phone"], "139****1111", "masked");
    assert_eq!(user["trades"], json!(["elevator", "water_electric"]));
    // The new technician signs in and the picker shows their trades.
    let zhao = login_at(&server.base, "zhao", "Lift-2026-repair").await;
    let kefu = server.login("kefu").await.token;
    let (_, techs) = server.call(&kefu, "GET", "/api/v1/technicians", None).await;
    let listed = techs.as_array().expect("list").iter().find(|t| t["user_id"] == id.as_str()).expect("zhao listed");
    assert_eq!(listed["trades"], json!(["elevator", "water_electric"]));
    // The same login again, a weak password, a bad trade: refused, nothing made.
    let again = json!({ "login": "zhao", "password": "Another-2026-pw", "role": "technician", "name": "另一个" });
    let (status, body) = create(&server, &admin, again).await;
    assert_eq!((status, code(&body)), (409, "login_taken"));
    let (status, body) =
        create(&server, &admin, json!({ "login": "qian", "password": "short", "role": "dispatcher", "name": "钱" }))
            .await;
    assert_eq!((status, code(&body)), (400, "weak_password"));
    let (status, body) = create(
        &server,
        &admin,
        json!({ "login": "qian", "password": "Plumbing-2026", "role": "technician", "name": "钱", "trades": ["plumbing"] }),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid_input"), "{body}");
    let (status, body) = create(
        &server,
        &admin,
        json!({ "login": "qian", "password": "Plumbing-2026", "role": "system", "name": "钱" }),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid_role"), "{body}");
    let (status, body) = create(
        &server,
        &admin,
        json!({ "login": "qian", "password": "Plumbing-2026", "role": "owner", "name": "钱", "phone": "12" }),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid_input"), "{body}");
    assert_eq!(sign_in(&server, "qian", "Plumbing-2026").await, 401, "no account was made");

    // Disabled: no sign-in, and the device already signed in is refused.
    let (status, body) =
        server.call(&admin, "PATCH", &format!("/api/v1/users/{id}"), Some(json!({ "disabled": true }))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["disabled_at"].is_i64(), "{body}");
    assert_eq!(sign_in(&server, "zhao", "Lift-2026-repair").await, 401);
    let (status, _) = server.call(&zhao.token, "GET", "/api/v1/me", None).await;
    assert_eq!(status, 401, "a disabled account's device stops");
    let (_, techs) = server.call(&kefu, "GET", "/api/v1/technicians", None).await;
    assert!(!techs.to_string().contains(&id), "a disabled technician is not offered: {techs}");
    // Enabled again.
    let (status, _) =
        server.call(&admin, "PATCH", &format!("/api/v1/users/{id}"), Some(json!({ "disabled": false }))).await;
    assert_eq!(status, 200);
    assert_eq!(sign_in(&server, "zhao", "Lift-2026-repair").await, 200);
    let (status, _) = server.call(&zhao.token, "GET", "/api/v1/me", None).await;
    assert_eq!(status, 200, "the device serves again");

    // The administrator keeps their own account and role.
    let me = server.login("admin").await;
    let own = format!("/api/v1/users/{}", me.user);
    for change in [json!({ "disabled": true }), json!({ "role": "dispatcher" })] {
        let (status, body) = server.call(&admin, "PATCH", &own, Some(change)).await;
        assert_eq!((status, code(&body)), (409, "own_account"));
    }
    let (status, body) = server.call(&admin, "PATCH", &own, Some(json!({ "name": "管理员老周" }))).await;
    assert_eq!((status, body["name"].as_str()), (200, Some("管理员老周")));
    let (status, body) = server.call(&admin, "PATCH", "/api/v1/users/nobody", Some(json!({ "name": "x" }))).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) =
        server.call(&admin, "PATCH", &format!("/api/v1/users/{id}"), Some(json!({ "salary": 1 }))).await;
    assert_eq!(status, 400, "unknown fields are refused: {body}");
}

async fn bindings_follow_the_role_and_the_register(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.login("admin").await.token;
    // An owner's units are held to the estate register (codes as people write them).
    let (status, made) = create(
        &server,
        &admin,
        json!({ "login": "yezhu0101", "password": "Owner-2026-pw", "role": "owner", "name": "孙丽",
                "units": [{ "project": "hy-garden", "building": "3栋", "unit": "1-0101室" }] }),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/users/{id}");
    let (_, user) = server.call(&admin, "GET", &path, None).await;
    assert_eq!(user["units"], json!([{ "project": "hy-garden", "building": "3", "unit": "1-0101" }]));
    let owner = login_at(&server.base, "yezhu0101", "Owner-2026-pw").await;
    let (_, me) = server.call(&owner.token, "GET", "/api/v1/me", None).await;
    assert_eq!(me["units"][0]["unit"], "1-0101", "{me}");
    let unknown = json!({ "units": [{ "project": "hy-garden", "building": "99", "unit": "9-9999" }] });
    let (status, body) = server.call(&admin, "PATCH", &path, Some(unknown)).await;
    assert_eq!((status, code(&body)), (400, "unknown_unit"));
    let (_, user) = server.call(&admin, "GET", &path, None).await;
    assert_eq!(user["units"][0]["unit"], "1-0101", "a refused change changes nothing");
    // A refused binding at creation makes no account: the login stays free.
    let bad = json!({ "login": "yezhu9999", "password": "Owner-2026-pw", "role": "owner", "name": "周",
                      "units": [{ "project": "hy-garden", "building": "99", "unit": "9-9999" }] });
    let (status, body) = create(&server, &admin, bad.clone()).await;
    assert_eq!((status, code(&body)), (400, "unknown_unit"));
    let (_, list) = server.call(&admin, "GET", "/api/v1/users?q=yezhu9999", None).await;
    assert_eq!(list, json!([]), "nothing half made");

    // Trades for technicians, projects for dispatchers; a role change drops what the old role kept.
    let (status, body) = server.call(&admin, "PATCH", &path, Some(json!({ "trades": ["elevator"] }))).await;
    assert_eq!((status, code(&body)), (400, "not_for_role"));
    let (status, body) =
        server.call(&admin, "PATCH", &path, Some(json!({ "role": "dispatcher", "projects": ["hy-garden"] }))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["units"].clone(), body["projects"].clone()), (json!([]), json!(["hy-garden"])));
    let (status, body) = server.call(&admin, "PATCH", &path, Some(json!({ "projects": ["nowhere"] }))).await;
    assert_eq!((status, code(&body)), (400, "unknown_project"));
    let (status, body) =
        server.call(&admin, "PATCH", &path, Some(json!({ "role": "technician", "trades": ["greening"] }))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["projects"].clone(), body["trades"].clone()), (json!([]), json!(["greening"])));
    // Names and phones follow the account rules.
    for (change, expected) in [
        (json!({ "name": "  " }), "invalid_input"),
        (json!({ "phone": "12" }), "invalid_input"),
        (json!({ "role": "boss" }), "invalid_role"),
    ] {
        let (status, body) = server.call(&admin, "PATCH", &path, Some(change.clone())).await;
        assert_eq!((status, code(&body)), (400, expected), "{change}");
    }
    let (_, body) = server.call(&admin, "PATCH", &path, Some(json!({ "phone": "" }))).await;
    assert_eq!(body["phone"], Value::Null, "an empty phone removes it");
}

async fn a_password_reset_can_sign_every_device_out(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.login("admin").await.token;
    let phone = server.login("wang").await;
    let web = server.login("wang").await;
    let path = format!("/api/v1/users/{}", phone.user);
    let (_, devices) = server.call(&admin, "GET", &format!("{path}/devices"), None).await;
    assert_eq!(devices.as_array().map(Vec::len), Some(2), "{devices}");
    // Reset, devices kept: the old password fails, the devices go on.
    let (status, body) =
        server.call(&admin, "POST", &format!("{path}/password"), Some(json!({ "password": "Pipe-fixer-2026" }))).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(sign_in(&server, "wang", loopwork_server::demo::DEMO_PASSWORD).await, 401);
    assert_eq!(sign_in(&server, "wang", "Pipe-fixer-2026").await, 200);
    assert_eq!(server.call(&phone.token, "GET", "/api/v1/me", None).await.0, 200);
    let (status, body) =
        server.call(&admin, "POST", &format!("{path}/password"), Some(json!({ "password": "wang123456789" }))).await;
    assert_eq!((status, code(&body)), (400, "weak_password"), "a password holding the login");
    // One device revoked from the console.
    let (status, _) = server.call(&admin, "POST", &format!("/api/v1/devices/{}/revoke", web.device), None).await;
    assert_eq!(status, 204);
    assert_eq!(server.call(&web.token, "GET", "/api/v1/me", None).await.0, 401);
    assert_eq!(server.call(&phone.token, "GET", "/api/v1/me", None).await.0, 200);
    // Reset signing every device out.
    let (status, _) = server
        .call(
            &admin,
            "POST",
            &format!("{path}/password"),
            Some(json!({ "password": "Valve-fixer-2026", "revoke_devices": true })),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(server.call(&phone.token, "GET", "/api/v1/me", None).await.0, 401);
    let (_, devices) = server.call(&admin, "GET", &format!("{path}/devices"), None).await;
    let devices = devices.as_array().expect("devices");
    assert!(devices.iter().all(|d| d["revoked_at"].is_i64()), "{devices:?}");
    assert_eq!(sign_in(&server, "wang", "Valve-fixer-2026").await, 200);
    let (status, body) = server.call(&admin, "GET", "/api/v1/users/nobody/devices", None).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
}

async fn the_list_pages_filters_and_masks(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.login("admin").await.token;
    for i in 0..5 {
        let (status, body) = create(
            &server,
            &admin,
            json!({ "login": format!("tech{i}"), "password": "Repair-2026-pw", "role": "technician",
                    "name": format!("维修{i}号"), "phone": format!("1370000000{i}") }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/users?role=technician&limit=3&offset=3", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("list");
    assert_eq!(response.headers()["x-total-count"], "7", "2 demo technicians and 5 new");
    let page: Value = response.json().await.expect("json");
    assert_eq!(page.as_array().map(Vec::len), Some(3));
    let (_, all) = server.call(&admin, "GET", "/api/v1/users?limit=200", None).await;
    let all = all.as_array().expect("list");
    assert_eq!(all[0]["role"], "admin", "office roles first, owners last");
    assert_eq!(all.last().expect("last")["role"], "owner");
    assert!(!Value::Array(all.clone()).to_string().contains("13700000001"), "phones are masked");
    let (_, found) = server.call(&admin, "GET", "/api/v1/users?q=%E7%BB%B4%E4%BF%AE3", None).await;
    assert_eq!(
        found.as_array().map(|a| a.iter().map(|u| u["login"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("tech3")])
    );
    let (_, found) = server.call(&admin, "GET", "/api/v1/users?q=TECH4", None).await;
    assert_eq!(found.as_array().map(Vec::len), Some(1), "case does not matter, on either store: {found}");
    let (_, found) = server.call(&admin, "GET", "/api/v1/users?q=%25", None).await;
    assert_eq!(found, json!([]), "% matches itself only");
    let (_, techs) = server.call(&admin, "GET", "/api/v1/users?role=technician&limit=200", None).await;
    let tech0 = techs.as_array().expect("list").iter().find(|u| u["login"] == "tech0").expect("tech0").clone();
    server
        .call(
            &admin,
            "PATCH",
            &format!("/api/v1/users/{}", tech0["id"].as_str().expect("id")),
            Some(json!({ "disabled": true })),
        )
        .await;
    let (_, off) = server.call(&admin, "GET", "/api/v1/users?disabled=true", None).await;
    assert_eq!(
        off.as_array().map(|a| a.iter().map(|u| u["login"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("tech0")])
    );
    let (_, on) = server.call(&admin, "GET", "/api/v1/users?disabled=false&limit=200", None).await;
    assert!(!on.to_string().contains("\"tech0\""), "{on}");
    for bad in ["limit=0", "limit=201", "offset=-1", "role=boss", "sort=name"] {
        let (status, body) = server.call(&admin, "GET", &format!("/api/v1/users?{bad}"), None).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

async fn only_administrators_manage_accounts_and_only_their_own_organization_s(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.login("admin").await.token;
    let wang = server.login("wang").await;
    let target = format!("/api/v1/users/{}", wang.user);
    let new = json!({ "login": "x1", "password": "Someone-2026", "role": "admin", "name": "x" });
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/v1/users".into(), None),
        ("POST", "/api/v1/users".into(), Some(new.clone())),
        ("GET", target.clone(), None),
        ("PATCH", target.clone(), Some(json!({ "role": "admin" }))),
        ("POST", format!("{target}/password"), Some(json!({ "password": "Takeover-2026" }))),
        ("GET", format!("{target}/devices"), None),
    ];
    for login in ["kefu", "zhuguan", "wang", "yezhu1502"] {
        let token = server.login(login).await.token;
        for (method, path, body) in &routes {
            let (status, answer) = server.call(&token, method, path, body.clone()).await;
            assert_eq!((status, code(&answer)), (403, "forbidden"), "{login} {method} {path}");
        }
    }
    assert_eq!(sign_in(&server, "x1", "Someone-2026").await, 401, "no account was made");
    let (_, user) = server.call(&admin, "GET", &target, None).await;
    assert_eq!(user["role"], "technician", "nobody made themselves admin");
    // Another organization's administrator reaches none of ours.
    let db = server.state.db.as_ref();
    let other = db.create_organization("别家物业", 0).await.expect("org");
    let hash = loopwork_server::auth::hash_password("Other-admin-2026").expect("hash");
    let user = NewUser {
        org: other,
        login: "other-admin".into(),
        password_hash: hash,
        role: Role::Admin,
        display_name: "别家管理员".into(),
        phone: None,
    };
    db.create_user(&user, 0).await.expect("user");
    let stranger = login_at(&server.base, "other-admin", "Other-admin-2026").await.token;
    let (_, list) = server.call(&stranger, "GET", "/api/v1/users", None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "only themselves: {list}");
    for (method, path, body) in &routes[2..] {
        let (status, answer) = server.call(&stranger, method, path, body.clone()).await;
        assert_eq!((status, code(&answer)), (404, "not_found"), "{method} {path}");
    }
    let (status, _) = server.call(&stranger, "POST", &format!("/api/v1/devices/{}/revoke", wang.device), None).await;
    assert_eq!(status, 404);
    assert_eq!(server.call(&wang.token, "GET", "/api/v1/me", None).await.0, 200);
    let (_, user) = server.call(&admin, "GET", &target, None).await;
    assert_eq!(user["role"], "technician");
    assert_eq!(sign_in(&server, "wang", loopwork_server::demo::DEMO_PASSWORD).await, 200, "the password stands");
}
