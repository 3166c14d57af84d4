//! Internal notes (内部备注), on SQLite and PostgreSQL: staff and technicians write them for each
//! other; an owner never receives one, not in the detail, not on the owner's page, not in the
//! order's document on the owner's device. A reply to the owner (a public note) reaches all three.

use loopwork_sync_core::{Action, Category, Channel, Grade, Kind, Location, NewOrder};
use loopwork_tests::{Backend, TestServer, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(internal_notes_never_reach_the_owner);

const INTERNAL: &str = "已电话联系业主,下午三点后在家,脾气急";
const REPLY: &str = "师傅今天下午三点上门,请留人在家";
const REASON: &str = "业主情绪激动,升级处理";
const TECH_NOTE: &str = "阀门型号DN25,需带备件";

fn leak(reporter: loopwork_sync_core::UserId) -> NewOrder {
    NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade: Grade::Minor,
        channel: Channel::Hotline,
        location: Location::unit("hy-garden", "3", "3-1502"),
        description: "卫生间天花板漏水".into(),
        reporter,
        occurred_at_ms: None,
    }
}

fn note_texts(detail: &Value) -> Vec<(String, String)> {
    detail["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| (n["text"].as_str().unwrap_or("").to_owned(), n["visibility"].as_str().unwrap_or("").to_owned()))
        .collect()
}

async fn internal_notes_never_reach_the_owner(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let li = server.login("li").await;
    let mut owner = server.device("yezhu1502").await;
    let id = desk.replica.create(&leak(owner.session.user)).expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    desk.synced().await;
    wang.synced().await;
    owner.synced().await;
    let path = format!("/api/v1/orders/{id}");
    let notes = format!("{path}/notes");

    // The desk's default is internal; a reply is public; a reclassification's reason is internal.
    let (status, detail) = server.call(&desk.session.token, "POST", &notes, Some(json!({ "text": INTERNAL }))).await;
    assert_eq!(status, 200, "{detail}");
    assert!(note_texts(&detail).contains(&(INTERNAL.into(), "internal".into())), "{detail}");
    let body = json!({ "text": REPLY, "visibility": "public" });
    let (status, detail) = server.call(&desk.session.token, "POST", &notes, Some(body)).await;
    assert_eq!(status, 200, "{detail}");
    let body = json!({ "grade": "serious", "reason": REASON });
    let (status, detail) = server.call(&desk.session.token, "POST", &format!("{path}/classify"), Some(body)).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["grade"], "serious");
    // The server's own note comes in English too; what people write does not pretend to.
    let reclassified =
        detail["notes"].as_array().expect("notes").iter().find(|n| n["text_en"].is_string()).expect("an English note");
    assert_eq!(reclassified["text_en"], format!("Grade minor → serious (reason: {REASON})"), "{reclassified}");
    assert!(detail["notes"].as_array().expect("notes").iter().filter(|n| n["text_en"].is_string()).count() == 1);
    // The assigned technician reads them and writes their own; one never given the order cannot.
    let body = json!({ "text": TECH_NOTE, "visibility": "internal" });
    let (status, detail) = server.call(&wang.session.token, "POST", &notes, Some(body)).await;
    assert_eq!(status, 200, "{detail}");
    let texts = note_texts(&detail);
    for text in [INTERNAL, REASON, TECH_NOTE] {
        assert!(texts.iter().any(|(t, v)| t.contains(text) && v == "internal"), "{text} in {texts:?}");
    }
    assert!(texts.contains(&(REPLY.into(), "public".into())));
    let internal_in_timeline =
        detail["timeline"].as_array().expect("timeline").iter().filter(|i| i["visibility"] == "internal").count();
    assert_eq!(internal_in_timeline, 3, "the desk's timeline shows them, marked");
    let (status, _) = server.call(&li.token, "POST", &notes, Some(json!({ "text": "不该写入" }))).await;
    assert!(status == 403 || status == 404, "a technician never given the order: {status}");

    // The owner: not in the detail (the owner's page reads it), not in the list.
    let (status, seen) = server.call(&owner.session.token, "GET", &path, None).await;
    assert_eq!(status, 200, "{seen}");
    let text = seen.to_string();
    assert!(text.contains(REPLY), "the reply reaches the owner: {text}");
    assert_eq!(seen["grade"], "serious", "the new grade is the owner's to see, not why");
    for secret in [INTERNAL, REASON, TECH_NOTE, "不该写入"] {
        assert!(!text.contains(secret), "{secret} reached the owner's detail");
    }
    let (status, list) = server.call(&owner.session.token, "GET", "/api/v1/orders", None).await;
    assert_eq!(status, 200);
    for secret in [INTERNAL, REASON, TECH_NOTE] {
        assert!(!list.to_string().contains(secret), "{secret} reached the owner's list");
    }
    let (status, export) = server.call(&owner.session.token, "GET", "/api/v1/me/export", None).await;
    assert_eq!(status, 200);
    for secret in [INTERNAL, REASON, TECH_NOTE] {
        assert!(!export.to_string().contains(secret), "{secret} reached the owner's export");
    }

    // Not in the owner's device store: the document, every byte of it uncompressed, and each change.
    owner.synced().await;
    let on_phone = owner.replica.order(id).expect("the order on the owner's phone");
    assert_eq!(on_phone.grade().expect("grade"), Grade::Serious, "the phone is up to date");
    let phone_notes: Vec<String> = on_phone.notes().into_iter().map(|n| n.text).collect();
    assert_eq!(phone_notes, vec![REPLY.to_owned()]);
    let bytes = on_phone.save_uncompressed();
    let holds = |haystack: &[u8], text: &str| haystack.windows(text.len()).any(|w| w == text.as_bytes());
    assert!(holds(&bytes, REPLY), "the search finds what the document holds");
    for secret in [INTERNAL, REASON, TECH_NOTE] {
        assert!(!holds(&bytes, secret), "{secret} is in the owner's stored document");
    }
    for (_, change) in on_phone.changes_since(&[]) {
        for secret in [INTERNAL, REASON, TECH_NOTE] {
            assert!(!holds(&change, secret), "{secret} is in a change on the owner's phone");
        }
    }

    // An owner's note is always public; an owner cannot write an internal one.
    let body = json!({ "text": "内部?", "visibility": "internal" });
    let (status, refused) = server.call(&owner.session.token, "POST", &notes, Some(body)).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("forbidden")), "{refused}");
    let (status, detail) =
        server.call(&owner.session.token, "POST", &notes, Some(json!({ "text": "好的,谢谢" }))).await;
    assert_eq!(status, 200, "{detail}");
    assert!(note_texts(&detail).contains(&("好的,谢谢".into(), "public".into())));
    let (status, refused) =
        server.call(&desk.session.token, "POST", &notes, Some(json!({ "text": "x", "visibility": "secret" }))).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "an unknown visibility is refused"
    );
}
