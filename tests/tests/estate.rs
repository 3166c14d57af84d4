//! The estate register (房屋档案) on SQLite and PostgreSQL: buildings and units in natural order,
//! residents with masked phones and logged reveals, the caller pop-up, spreadsheet imports (CSV
//! and real XLSX files) previewed with every faulty row and applied all or nothing, and
//! registrations held to the register.

use loopwork_server::store::NewUser;
use loopwork_sync_core::Role;
use loopwork_tests::{Backend, TestServer, login_at, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    the_register_lists_buildings_and_units_in_natural_order_within_the_caller_s_scope,
    residents_are_kept_with_masked_phones_and_every_reveal_is_logged,
    the_caller_pop_up_finds_a_number_however_it_is_written,
    an_import_reports_every_faulty_row_and_writes_all_or_nothing,
    registrations_are_held_to_the_register,
);

const PASSWORD: &str = "qs-kefu-password";

use loopwork_tests::error_code as code;

/// A second project, and a dispatcher who serves only it.
async fn other_project_dispatcher(server: &TestServer) -> String {
    let db = server.state.db.as_ref();
    let kefu = db.user_by_login("kefu").await.expect("kefu").expect("demo user");
    db.create_project(&kefu.org, "qs-court", "清水苑").await.expect("project");
    let user = NewUser {
        org: kefu.org.clone(),
        login: "qs-kefu".into(),
        password_hash: loopwork_server::auth::hash_password(PASSWORD).expect("hash"),
        role: Role::Dispatcher,
        display_name: "清水苑客服".into(),
        phone: None,
    };
    let id = db.create_user(&user, 0).await.expect("user");
    db.bind_project(id, "qs-court").await.expect("bind");
    login_at(&server.base, "qs-kefu", PASSWORD).await.token
}

/// Sends a sheet to the import route.
async fn import(server: &TestServer, token: &str, query: &str, bytes: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/estate/import?{query}", server.base))
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .expect("import");
    let status = response.status().as_u16();
    let text = response.text().await.expect("text");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn the_register_lists_buildings_and_units_in_natural_order_within_the_caller_s_scope(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let (status, projects) = server.call(&kefu.token, "GET", "/api/v1/estate/projects", None).await;
    assert_eq!(status, 200, "{projects}");
    assert_eq!(projects[0]["code"], "hy-garden");
    assert_eq!(projects[0]["buildings"], 12);
    assert_eq!(projects[0]["units"], 12 * 5 * 18 * 2);
    let (_, buildings) = server.call(&kefu.token, "GET", "/api/v1/estate/buildings?project=hy-garden", None).await;
    let codes: Vec<&str> =
        buildings.as_array().expect("buildings").iter().filter_map(|b| b["building"].as_str()).collect();
    assert_eq!(codes, ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"]);
    let (_, units) = server.call(&kefu.token, "GET", "/api/v1/estate/units?project=hy-garden&building=3", None).await;
    let units = units.as_array().expect("units");
    assert_eq!(units.len(), 180);
    assert_eq!(units[0]["unit"], "1-0101");
    let leaking = units.iter().find(|u| u["unit"] == "3-1502").expect("3-1502");
    assert_eq!((leaking["residents"].as_i64(), leaking["open_orders"].as_i64()), (Some(2), Some(2)), "{leaking}");
    // One unit: its residents, masked, and its orders.
    let (status, unit) =
        server.call(&kefu.token, "GET", "/api/v1/estate/unit?project=hy-garden&building=3&unit=3-1502", None).await;
    assert_eq!(status, 200, "{unit}");
    assert_eq!(unit["residents"][0]["name"], "王芳");
    assert_eq!(unit["residents"][0]["relation_label"], "业主");
    assert_eq!(unit["residents"][0]["phone"], "138****8005");
    assert!(!unit.to_string().contains("13800138005"), "no full number: {unit}");
    assert_eq!(unit["orders"].as_array().map(Vec::len), Some(2), "{unit}");
    let (status, body) =
        server.call(&kefu.token, "GET", "/api/v1/estate/unit?project=hy-garden&building=3&unit=9-9999", None).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    // Technicians and owners do not read the register.
    for login in ["wang", "yezhu1502"] {
        let session = server.login(login).await;
        let (status, body) =
            server.call(&session.token, "GET", "/api/v1/estate/buildings?project=hy-garden", None).await;
        assert_eq!((status, code(&body)), (403, "forbidden"), "{login}");
    }
    // A dispatcher of another project sees neither this project nor its residents.
    let qs = other_project_dispatcher(&server).await;
    let (_, projects) = server.call(&qs, "GET", "/api/v1/estate/projects", None).await;
    assert_eq!(projects.as_array().map(Vec::len), Some(1), "{projects}");
    assert_eq!(projects[0]["code"], "qs-court");
    for path in [
        "/api/v1/estate/buildings?project=hy-garden",
        "/api/v1/estate/units?project=hy-garden&building=3",
        "/api/v1/estate/unit?project=hy-garden&building=3&unit=3-1502",
    ] {
        let (status, body) = server.call(&qs, "GET", path, None).await;
        assert_eq!((status, code(&body)), (404, "not_found"), "{path}");
    }
    let resident = unit["residents"][0]["id"].as_str().expect("id");
    let (status, _) = server.call(&qs, "POST", &format!("/api/v1/estate/residents/{resident}/reveal"), None).await;
    assert_eq!(status, 404);
    let (status, _) = server.call(&qs, "DELETE", &format!("/api/v1/estate/residents/{resident}"), None).await;
    assert_eq!(status, 404);
    // Units: supervisors add and remove them; a unit with residents stays.
    let unit_body = json!({ "project": "hy-garden", "building": "13栋", "unit": "1-0101室" });
    let (status, body) = server.call(&kefu.token, "POST", "/api/v1/estate/units", Some(unit_body.clone())).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let boss = server.login("zhuguan").await;
    let (status, added) = server.call(&boss.token, "POST", "/api/v1/estate/units", Some(unit_body.clone())).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!((added["building"].as_str(), added["unit"].as_str()), (Some("13"), Some("1-0101")));
    let (status, body) = server.call(&boss.token, "POST", "/api/v1/estate/units", Some(unit_body)).await;
    assert_eq!((status, code(&body)), (409, "unit_exists"));
    let (_, buildings) = server.call(&kefu.token, "GET", "/api/v1/estate/buildings?project=hy-garden", None).await;
    assert_eq!(buildings.as_array().and_then(|b| b.last()).map(|b| b["building"].clone()), Some(json!("13")));
    let (status, body) =
        server.call(&boss.token, "DELETE", "/api/v1/estate/unit?project=hy-garden&building=3&unit=3-1502", None).await;
    assert_eq!((status, code(&body)), (409, "unit_has_residents"));
    let (status, _) =
        server.call(&boss.token, "DELETE", "/api/v1/estate/unit?project=hy-garden&building=13&unit=1-0101", None).await;
    assert_eq!(status, 204);
    server.stop().await.drop_database().await;
}

async fn residents_are_kept_with_masked_phones_and_every_reveal_is_logged(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let new = |phone: &str| json!({ "project": "hy-garden", "building": "7", "unit": "2-0301", "name": "赵敏", "phone": phone, "relation": "租户" });
    let (status, body) = server.call(&kefu.token, "POST", "/api/v1/estate/residents", Some(new("12"))).await;
    assert_eq!((status, code(&body)), (400, "invalid_phone"), "{body}");
    let (status, added) =
        server.call(&kefu.token, "POST", "/api/v1/estate/residents", Some(new("+86 137 0013 7000"))).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!((added["phone"].as_str(), added["relation"].as_str()), (Some("137****7000"), Some("tenant")));
    let (status, body) = server.call(&kefu.token, "POST", "/api/v1/estate/residents", Some(new("13700137000"))).await;
    assert_eq!((status, code(&body)), (409, "phone_taken"));
    let mut elsewhere = new("13700137000");
    elsewhere["unit"] = json!("9-9999");
    let (status, body) = server.call(&kefu.token, "POST", "/api/v1/estate/residents", Some(elsewhere)).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let id = added["id"].as_str().expect("id");
    let (status, changed) = server
        .call(
            &kefu.token,
            "PATCH",
            &format!("/api/v1/estate/residents/{id}"),
            Some(json!({ "name": "赵敏", "phone": "010-12345678", "relation": "owner" })),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!((changed["phone"].as_str(), changed["relation_label"].as_str()), (Some("010****5678"), Some("业主")));
    // The whole number, once per reveal, each logged with who and from which device.
    let (_, reveals) = server.call(&kefu.token, "GET", &format!("/api/v1/estate/residents/{id}/reveals"), None).await;
    assert_eq!(reveals.as_array().map(Vec::len), Some(0));
    let (status, revealed) =
        server.call(&kefu.token, "POST", &format!("/api/v1/estate/residents/{id}/reveal"), None).await;
    assert_eq!(status, 200, "{revealed}");
    assert_eq!(revealed["phone"], "01012345678");
    let (_, reveals) = server.call(&kefu.token, "GET", &format!("/api/v1/estate/residents/{id}/reveals"), None).await;
    assert_eq!(reveals.as_array().map(Vec::len), Some(1), "{reveals}");
    assert_eq!(reveals[0]["user_id"], kefu.user.to_string());
    assert_eq!(reveals[0]["device_id"], kefu.device.to_string());
    let wang = server.login("wang").await;
    let (status, _) = server.call(&wang.token, "POST", &format!("/api/v1/estate/residents/{id}/reveal"), None).await;
    assert_eq!(status, 403);
    // Removed: the name and number are gone from the register.
    let (status, _) = server.call(&kefu.token, "DELETE", &format!("/api/v1/estate/residents/{id}"), None).await;
    assert_eq!(status, 204);
    let (_, unit) =
        server.call(&kefu.token, "GET", "/api/v1/estate/unit?project=hy-garden&building=7&unit=2-0301", None).await;
    assert_eq!(unit["residents"].as_array().map(Vec::len), Some(0), "{unit}");
    let (status, _) = server.call(&kefu.token, "DELETE", &format!("/api/v1/estate/residents/{id}"), None).await;
    assert_eq!(status, 404);
    server.stop().await.drop_database().await;
}

async fn the_caller_pop_up_finds_a_number_however_it_is_written(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    for written in ["13800138005", "+86 138-0013-8005", "１３８００１３８００５"] {
        let (status, caller) =
            server.call(&kefu.token, "POST", "/api/v1/estate/callers", Some(json!({ "phone": written }))).await;
        assert_eq!(status, 200, "{caller}");
        let residents = caller["residents"].as_array().expect("residents");
        assert_eq!(residents.len(), 1, "{written}: {caller}");
        assert_eq!((residents[0]["name"].as_str(), residents[0]["unit"].as_str()), (Some("王芳"), Some("3-1502")));
        assert_eq!(residents[0]["phone"], "138****8005");
        // The unit's open orders, for the dispatcher to see before registering another.
        assert_eq!(caller["open_orders"].as_array().map(Vec::len), Some(2), "{caller}");
    }
    let (_, nobody) =
        server.call(&kefu.token, "POST", "/api/v1/estate/callers", Some(json!({ "phone": "13012345678" }))).await;
    assert_eq!(nobody["residents"].as_array().map(Vec::len), Some(0));
    let (status, body) =
        server.call(&kefu.token, "POST", "/api/v1/estate/callers", Some(json!({ "phone": "12" }))).await;
    assert_eq!((status, code(&body)), (400, "invalid_phone"));
    // Another project's dispatcher finds nobody there.
    let qs = other_project_dispatcher(&server).await;
    let (_, caller) = server.call(&qs, "POST", "/api/v1/estate/callers", Some(json!({ "phone": "13800138005" }))).await;
    assert_eq!(caller["residents"].as_array().map(Vec::len), Some(0), "{caller}");
    assert_eq!(caller["open_orders"].as_array().map(Vec::len), Some(0), "{caller}");
    server.stop().await.drop_database().await;
}

/// A real XLSX file, as Excel would save it: room numbers as numbers, the header on row 2.
fn xlsx(rows: &[&[&str]]) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "和园小区 房屋档案").expect("title");
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            match cell.parse::<f64>() {
                Ok(n) if !cell.starts_with('0') && !cell.starts_with('+') && cell.len() < 11 => {
                    sheet.write_number(r, c, n).expect("number")
                }
                _ => sheet.write_string(r, c, *cell).expect("string"),
            };
        }
    }
    workbook.save_to_buffer().expect("xlsx")
}

async fn an_import_reports_every_faulty_row_and_writes_all_or_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let boss = server.login("zhuguan").await;
    let kefu = server.login("kefu").await;
    let units_of = |building: &'static str| {
        let (server, token) = (&server, kefu.token.clone());
        async move {
            let (_, units) = server
                .call(&token, "GET", &format!("/api/v1/estate/units?project=hy-garden&building={building}"), None)
                .await;
            units.as_array().map(Vec::len).unwrap_or(0)
        }
    };
    // A CSV with a byte order mark, as Excel saves "CSV UTF-8".
    let faulty = "\u{FEFF}楼栋,单元,房号,姓名,手机号码,身份,备注\n\
                  20栋,1单元,101,孙丽,13600136001,业主,\n\
                  20,1,102,,12,,\n\
                  20,1,103,周杰,13600136003,房东,\n\
                  ,1,104,吴昊,13600136004,,\n\
                  20,1,101,孙丽,136 0013 6001,业主,重复\n";
    let (status, body) = import(&server, &kefu.token, "project=hy-garden", faulty.as_bytes().to_vec()).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "dispatchers do not import");
    let (status, report) = import(&server, &boss.token, "project=hy-garden", faulty.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["format"], "csv");
    assert_eq!(report["applied"], false);
    assert_eq!(report["rows"], 5);
    assert_eq!(report["ignored_columns"], json!(["备注"]));
    let errors: Vec<(i64, &str, &str)> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["row"].as_i64().unwrap_or(0), e["column"].as_str().unwrap_or(""), e["code"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        errors,
        [
            (3, "name", "invalid_resident"),
            (4, "relation", "invalid_resident"),
            (5, "building", "invalid_code"),
            (6, "phone", "duplicate_row"),
        ],
        "{report}"
    );
    assert_eq!(report["preview"][0]["unit"], "1-101");
    assert_eq!(report["preview"][0]["phone"], "136****6001");
    // Applying a sheet with faults writes nothing.
    let (status, report) =
        import(&server, &boss.token, "project=hy-garden&apply=true", faulty.as_bytes().to_vec()).await;
    assert_eq!(status, 422, "{report}");
    assert_eq!(report["applied"], false);
    assert_eq!(units_of("20").await, 0);
    // The sheet mended, as an XLSX file with a title row above its header.
    let mended: &[&[&str]] = &[
        &["楼栋", "单元", "房号", "姓名", "手机号码", "身份"],
        &["20栋", "1单元", "101", "孙丽", "13600136001", "业主"],
        &["20", "1", "102", "", "", ""],
        &["20", "1", "103", "周杰", "13600136003", "租户"],
        &["20", "1", "104", "吴昊", "+86 13600136004", ""],
        &["3", "3", "1502", "王芳", "13800138005", "业主"],
    ];
    let (status, report) = import(&server, &boss.token, "project=hy-garden", xlsx(mended)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["format"], "xlsx");
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["preview"][0]["row"], 3, "rows numbered as the spreadsheet does");
    let counts = json!({ "units_new": 4, "units_existing": 1, "residents_new": 3, "residents_updated": 0, "residents_unchanged": 1 });
    assert_eq!(report["counts"], counts);
    assert_eq!(units_of("20").await, 0, "a preview writes nothing");
    let (status, report) = import(&server, &boss.token, "project=hy-garden&apply=true", xlsx(mended)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((report["applied"].as_bool(), &report["counts"]), (Some(true), &counts));
    assert_eq!(units_of("20").await, 4);
    // Imported again: nothing new; a changed name is an update, by unit and phone.
    let mut again = mended.to_vec();
    again[3] = &["20", "1", "103", "周杰伦", "13600136003", "租户"];
    let (_, report) = import(&server, &boss.token, "project=hy-garden&apply=true", xlsx(&again)).await;
    assert_eq!(
        report["counts"],
        json!({ "units_new": 0, "units_existing": 5, "residents_new": 0, "residents_updated": 1, "residents_unchanged": 3 })
    );
    let (_, caller) =
        server.call(&kefu.token, "POST", "/api/v1/estate/callers", Some(json!({ "phone": "13600136003" }))).await;
    assert_eq!(caller["residents"][0]["name"], "周杰伦");
    // A project column instead of ?project=: by code or by name; an unknown one is a row's fault.
    let by_column = "项目,楼栋,房号\nhy-garden,21,101\n和园小区,21,102\n别处,21,103\n";
    let (_, report) = import(&server, &boss.token, "", by_column.as_bytes().to_vec()).await;
    assert_eq!(report["counts"]["units_new"], 2, "{report}");
    assert_eq!(report["errors"][0]["row"], 4);
    assert_eq!(report["errors"][0]["code"], "unknown_project");
    // Whole files refused, with the documented error.
    let refusals: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("no room column", "楼栋,姓名\n1,王\n".as_bytes().to_vec(), 400, "invalid_sheet"),
        ("GBK text", vec![0xC2, 0xA5, 0xB6, 0xB0, b',', 0xB7, 0xBF, 0xBA, 0xC5, b'\n'], 400, "invalid_sheet"),
        ("a broken archive", b"PK\x03\x04 not really a zip".to_vec(), 400, "invalid_sheet"),
        ("an archive that unpacks to 80 MB", zip_bomb(), 400, "invalid_sheet"),
    ];
    for (what, bytes, status_wanted, code_wanted) in refusals {
        let (status, body) = import(&server, &boss.token, "project=hy-garden", bytes).await;
        assert_eq!((status, code(&body)), (status_wanted, code_wanted), "{what}: {body}");
    }
    // A 3 MiB sheet (a long note in a column the import does not use) is under the limit: read.
    let big = format!("楼栋,房号,备注\n22,101,{}\n", "备".repeat(1 << 20));
    assert!(big.len() > 3 << 20);
    let (status, report) = import(&server, &boss.token, "project=hy-garden", big.into_bytes()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["counts"]["units_new"], 1);
    // Over 4 MiB, sent with no length announced: cut off at the limit.
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b'1'; 64 << 10])).chain([Ok(vec![b'1'])]);
    let oversized = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let (status, body) = import(&server, &boss.token, "project=hy-garden", oversized).await;
    assert_eq!((status, code(&body)), (413, "too_large"), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("4194304")), "{body}");
    let (status, body) = import(&server, &boss.token, "project=elsewhere", by_column.as_bytes().to_vec()).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    server.stop().await.drop_database().await;
}

/// A small ZIP archive holding 80 MB of zeros.
fn zip_bomb() -> Vec<u8> {
    use std::io::Write;
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    archive.start_file("xl/worksheets/sheet1.xml", options).expect("file");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..80 {
        archive.write_all(&zeros).expect("write");
    }
    archive.finish().expect("finish").into_inner()
}

async fn registrations_are_held_to_the_register(backend: Backend) {
    let server = TestServer::start(backend).await;
    let kefu = server.login("kefu").await;
    let register = |building: Option<&str>, unit: Option<&str>, area: Option<&str>, phone: Option<&str>| {
        let mut body = json!({
            "kind": "repair", "category": "water_electric", "channel": "hotline", "project": "hy-garden",
            "description": "水管漏水",
        });
        for (key, value) in [("building", building), ("unit", unit), ("area", area), ("caller_phone", phone)] {
            if let Some(value) = value {
                body[key] = json!(value);
            }
        }
        body
    };
    for (what, body, wanted) in [
        ("an unknown unit", register(Some("99"), Some("99-9999"), None, None), "unknown_unit"),
        ("a unit of another building", register(Some("4"), Some("9-9999"), None, None), "unknown_unit"),
        ("a common area of an unknown building", register(Some("99"), None, Some("电梯"), None), "unknown_unit"),
        (
            "a unit every building has, without its building",
            register(None, Some("1-0101"), None, None),
            "ambiguous_unit",
        ),
        ("a phone number of two digits", register(Some("3"), Some("3-1502"), None, Some("12")), "invalid_caller"),
    ] {
        let (status, body) = server.call(&kefu.token, "POST", "/api/v1/orders", Some(body)).await;
        assert_eq!((status, code(&body)), (400, wanted), "{what}: {body}");
    }
    let (_, before) = server.call(&kefu.token, "GET", "/api/v1/orders?limit=500", None).await;
    // A unit the register knows; a common area of a building; a unit only one building has
    // (its building filled in).
    let boss = server.login("zhuguan").await;
    let (status, _) = server
        .call(
            &boss.token,
            "POST",
            "/api/v1/estate/units",
            Some(json!({ "project": "hy-garden", "building": "12", "unit": "会所" })),
        )
        .await;
    assert_eq!(status, 201);
    for body in [
        register(Some("3"), Some("3-1502"), None, Some("138 0013 8005")),
        register(Some("5"), None, Some("2号电梯"), None),
        register(None, Some("会所"), None, None),
    ] {
        let (status, made) = server.call(&kefu.token, "POST", "/api/v1/orders", Some(body.clone())).await;
        assert_eq!(status, 201, "{body}: {made}");
    }
    let (_, after) = server.call(&kefu.token, "GET", "/api/v1/orders?limit=500", None).await;
    let after = after.as_array().expect("rows");
    assert_eq!(after.len(), before.as_array().map_or(0, Vec::len) + 3);
    assert!(after.iter().any(|o| o["unit"] == "会所" && o["building"] == "12"), "building filled in");
    // A project without a register takes any unit.
    let qs = other_project_dispatcher(&server).await;
    let mut elsewhere = register(Some("1"), Some("1-505"), None, None);
    elsewhere["project"] = json!("qs-court");
    let (status, body) = server.call(&qs, "POST", "/api/v1/orders", Some(elsewhere)).await;
    assert_eq!(status, 201, "{body}");
    server.stop().await.drop_database().await;
}
