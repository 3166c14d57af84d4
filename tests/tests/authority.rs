//! The server's authority cannot be bypassed: what an attacker with a valid device and the docs
//! tries, on SQLite and on PostgreSQL. No device gets a change accepted under any actor but its
//! own (relayed or not, in recovery or not); a relayed change is judged as its true author; a
//! change is stored under exactly the hash the server acknowledges.

use automerge::ActorId;
use loopwork_sync_core::protocol::{OrderBytes, RECEIPT_MAC_BYTES, Receipt, SyncRequest};
use loopwork_sync_core::store::Store;
use loopwork_sync_core::{
    Action, Category, Channel, DeviceId, Grade, Identity, Kind, Location, NewOrder, OrderId, Role, Status, WorkOrder,
};
use loopwork_tests::{Backend, Device, SyncError, TestServer, on_both_backends};

on_both_backends!(
    a_change_forged_under_the_server_s_actor_is_refused_on_every_path,
    a_change_forged_under_another_device_s_actor_is_refused_on_every_path,
    a_non_canonically_encoded_change_is_refused_and_the_order_stays_readable,
    a_relayed_change_is_accepted_with_its_receipt_and_judged_as_its_true_author,
    a_phone_signed_in_again_relays_what_its_previous_session_made,
    an_order_whose_stored_history_does_not_load_is_quarantined_not_served,
    an_order_found_damaged_by_a_push_is_quarantined,
    a_creating_change_holds_the_registration_and_nothing_else,
    a_change_carries_no_extra_bytes_and_a_short_message,
    an_official_number_a_device_wrote_is_not_kept,
);

fn leak(reporter: loopwork_sync_core::UserId) -> NewOrder {
    NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade: Grade::Serious,
        channel: Channel::Hotline,
        location: Location::unit("hy-garden", "3", "3-1502"),
        description: "卫生间天花板渗水".into(),
        reporter,
        occurred_at_ms: None,
    }
}

/// An order registered at the desk and assigned to Wang, synced to both.
async fn assigned_order(server: &TestServer) -> (Device, Device, OrderId) {
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let owner = server.login("yezhu1502").await;
    let id = desk.replica.create(&leak(owner.user)).expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    desk.synced().await;
    wang.synced().await;
    desk.synced().await;
    (desk, wang, id)
}

/// The actors of an order's changes other than the given devices': the server's.
fn other_actors(device: &Device, id: OrderId, known: &[DeviceId]) -> Vec<ActorId> {
    let order = device.replica.order(id).expect("order");
    let mut actors: Vec<ActorId> = order
        .automerge()
        .get_changes(&[])
        .iter()
        .map(|c| c.actor_id().clone())
        .filter(|a| !known.iter().any(|d| &d.actor() == a))
        .collect();
    actors.dedup();
    actors
}

/// A request carrying `change` as relayed (with `receipts`) or as the device's own.
fn request(order: OrderId, change: Vec<u8>, relayed: bool, receipts: Vec<Receipt>) -> Vec<u8> {
    let item = vec![OrderBytes { order, bytes: change }];
    let (changes, relayed) = if relayed { (Vec::new(), item) } else { (item, Vec::new()) };
    SyncRequest { cursor: None, limit: 10, changes, relayed, receipts, ..Default::default() }.encode()
}

async fn refused(device: &mut Device, body: Vec<u8>) -> (u16, String) {
    match device.post(body).await {
        Err(SyncError::Refused { status, code }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn a_change_forged_under_the_server_s_actor_is_refused_on_every_path(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (mut desk, mut wang, id) = assigned_order(&server).await;
    let number = wang.replica.order(id).expect("order").official_number().expect("numbered");
    let servers = other_actors(&wang, id, &[desk.session.device, wang.session.device]);
    assert!(!servers.is_empty(), "the server's numbering change is in the document");
    for actor in servers {
        // Wang writes a new official number under the server's actor, read from the document.
        let device = DeviceId::from_uuid(uuid::Uuid::from_slice(actor.to_bytes()).expect("16 bytes"));
        let mut forged = wang.replica.order(id).expect("order").with_device(device);
        let before = forged.heads();
        forged.set_official_number("FORGED-0001", 1_000).expect("forge");
        let change = forged.changes_since(&before).pop().expect("a change").1;
        let hash = automerge::Change::from_bytes(change.clone()).expect("change").hash();

        // Outside recovery, with no receipt, and with a made-up one: refused.
        assert_eq!(
            refused(&mut wang, request(id, change.clone(), true, vec![])).await,
            (403, "unvouched_relay".into())
        );
        let made_up = Receipt { order: id, hash, mac: [7; RECEIPT_MAC_BYTES] };
        assert_eq!(
            refused(&mut wang, request(id, change.clone(), true, vec![made_up])).await,
            (403, "unvouched_relay".into())
        );
        // A genuine receipt for another change does not vouch for this one.
        let genuine = wang.replica.store().receipts(id).expect("receipts");
        assert!(!genuine.is_empty(), "the device kept the server's receipts");
        assert_eq!(
            refused(&mut wang, request(id, change.clone(), true, genuine)).await,
            (403, "unvouched_relay".into())
        );
        // As the device's own change: foreign.
        assert_eq!(refused(&mut wang, request(id, change, false, vec![])).await, (403, "foreign_actor".into()));
    }
    desk.synced().await;
    assert_eq!(desk.replica.order(id).expect("order").official_number().as_deref(), Some(number.as_str()));
    server.stop().await.drop_database().await;
}

async fn a_change_forged_under_another_device_s_actor_is_refused_on_every_path(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (mut desk, mut wang, id) = assigned_order(&server).await;
    // Wang raises the grade under the dispatcher's device actor.
    let mut forged = wang.replica.order(id).expect("order").with_device(desk.session.device);
    let before = forged.heads();
    forged.set_grade(Grade::Critical, 1_000).expect("forge");
    let change = forged.changes_since(&before).pop().expect("a change").1;
    let receipts = wang.replica.store().receipts(id).expect("receipts");
    assert_eq!(refused(&mut wang, request(id, change.clone(), true, receipts)).await, (403, "unvouched_relay".into()));
    assert_eq!(refused(&mut wang, request(id, change, false, vec![])).await, (403, "foreign_actor".into()));
    desk.synced().await;
    assert_eq!(desk.replica.order(id).expect("order").grade().expect("grade"), Grade::Serious);
    server.stop().await.drop_database().await;
}

/// `bytes` (a change) with its object columns written out as explicit runs of nulls: a change
/// Automerge's parser accepts and its encoder would write without those columns, so that the
/// same content has another hash.
fn with_explicit_null_columns(bytes: &[u8]) -> Vec<u8> {
    let ops = automerge::Change::from_bytes(bytes.to_vec()).expect("change").len() as u64;
    let body = change_body(bytes);
    let mut b = 0;
    let deps = uleb(body, &mut b);
    b += 32 * deps as usize;
    let actor = uleb(body, &mut b);
    b += actor as usize;
    uleb(body, &mut b); // seq
    uleb(body, &mut b); // start op
    uleb(body, &mut b); // time (positive: the same bytes as signed)
    let message = uleb(body, &mut b);
    b += message as usize;
    let others = uleb(body, &mut b);
    for _ in 0..others {
        let n = uleb(body, &mut b);
        b += n as usize;
    }
    let columns_at = b;
    let count = uleb(body, &mut b);
    let mut specs = Vec::new();
    for _ in 0..count {
        specs.push((uleb(body, &mut b), uleb(body, &mut b)));
    }
    let data_at = b;
    assert!(!specs.iter().any(|(spec, _)| *spec == 1 || *spec == 2), "the change is on the root object");
    let mut run = Vec::new();
    run.push(0);
    put_uleb(&mut run, ops);
    let mut new_body = body[..columns_at].to_vec();
    put_uleb(&mut new_body, count + 2);
    for (spec, len) in [(1, run.len() as u64), (2, run.len() as u64)].into_iter().chain(specs) {
        put_uleb(&mut new_body, spec);
        put_uleb(&mut new_body, len);
    }
    new_body.extend_from_slice(&run);
    new_body.extend_from_slice(&run);
    new_body.extend_from_slice(&body[data_at..]);
    rechunk(&new_body)
}

fn uleb(b: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let byte = b[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return v;
        }
    }
}

fn put_uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The body of an uncompressed change chunk (after magic, checksum, type and length).
fn change_body(bytes: &[u8]) -> &[u8] {
    assert_eq!(bytes[8], 1, "an uncompressed change chunk");
    let mut at = 9;
    let len = uleb(bytes, &mut at) as usize;
    &bytes[at..at + len]
}

/// An uncompressed change chunk around `body`, with its length and checksum made right.
fn rechunk(body: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut chunk = vec![1u8];
    put_uleb(&mut chunk, body.len() as u64);
    chunk.extend_from_slice(body);
    let hash = Sha256::digest(&chunk);
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83];
    out.extend_from_slice(&hash[..4]);
    out.extend_from_slice(&chunk);
    out
}

async fn a_non_canonically_encoded_change_is_refused_and_the_order_stays_readable(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (mut desk, _wang, id) = assigned_order(&server).await;
    let mut copy = desk.replica.order(id).expect("order");
    let before = copy.heads();
    copy.set_grade(Grade::Critical, 1_000).expect("grade");
    let canonical = copy.changes_since(&before).pop().expect("a change").1;
    let odd = with_explicit_null_columns(&canonical);
    let parsed = automerge::Change::from_bytes(odd.clone()).expect("Automerge's parser accepts it");
    let canonical_hash = automerge::Change::from_bytes(canonical.clone()).expect("change").hash();
    assert_ne!(parsed.hash(), canonical_hash, "the same content under another hash");

    assert_eq!(refused(&mut desk, request(id, odd, false, vec![])).await, (400, "non_canonical_change".into()));
    // Nothing was stored: the order reads whole from every door, and the canonical change goes in.
    let (status, _) = server.call(&desk.session.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!(status, 200);
    let (status, _) = server.call(&desk.session.token, "GET", &format!("/api/v1/orders/{id}/audit"), None).await;
    assert_eq!(status, 200);
    desk.post(request(id, canonical, false, vec![])).await.expect("the canonical change is accepted");
    let mut fresh = server.device("zhuguan").await;
    fresh.synced().await;
    assert_eq!(fresh.replica.order(id).expect("order").grade().expect("grade"), Grade::Critical);
    server.stop().await.drop_database().await;
}

async fn a_relayed_change_is_accepted_with_its_receipt_and_judged_as_its_true_author(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (mut desk, mut wang, id) = assigned_order(&server).await;
    let database = server.stop().await;
    let backup = database.backup().await;
    let server = TestServer::start_on(database).await;
    desk.base = server.base.clone();
    wang.base = server.base.clone();

    // After the backup Wang accepts; the desk receives it; then the database is restored and
    // Wang's phone is lost. The desk relays Wang's accept with the server's receipt.
    wang.replica.transition(id, Action::Accept, None).expect("accept");
    wang.synced().await;
    desk.synced().await;
    assert_eq!(desk.status_of(id), Status::Accepted);
    let database = server.stop().await;
    let database = database.restore(backup).await;
    let server = TestServer::start_on(database).await;
    desk.base = server.base.clone();
    desk.synced().await;

    let mut boss = server.device("zhuguan").await;
    boss.synced().await;
    assert_eq!(boss.status_of(id), Status::Accepted, "Wang's accept came back through the desk");
    let (status, audit) = server.call(&boss.session.token, "GET", &format!("/api/v1/orders/{id}/audit"), None).await;
    assert_eq!(status, 200, "{audit}");
    let accept = audit
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["what"].as_str().is_some_and(|w| w.contains("accept")))
        .unwrap_or_else(|| panic!("the accept is on record: {audit}"));
    assert_eq!(accept["device_id"], wang.session.device.to_string(), "judged and logged as Wang's");
    assert_eq!(accept["verdict"], "accepted");
    server.stop().await.drop_database().await;
}

async fn a_phone_signed_in_again_relays_what_its_previous_session_made(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (mut desk, wang, id) = assigned_order(&server).await;
    // Wang's phone notes offline, then signs out and in again: a new device of the same user,
    // which relays the unsent note (it has no receipt: the server never had it).
    let mut copy = wang.replica.order(id).expect("order");
    let before = copy.heads();
    copy.add_note(&wang.identity(), "已关闭楼上进水阀", 1_000).expect("note");
    let note = copy.changes_since(&before).pop().expect("a change").1;
    let mut again = server.device("wang").await;
    again.post(request(id, note, true, vec![])).await.expect("its own user's earlier change is taken");
    desk.synced().await;
    assert_eq!(desk.replica.order(id).expect("order").notes().len(), 1);
    server.stop().await.drop_database().await;
}

/// Flips a byte in the middle of an order's stored snapshot (the server stopped), dropping the
/// heads kept beside it if `forget_heads` (as a server before heads were kept stored it).
async fn damage(database: &loopwork_tests::TestDatabase, desk: &Device, id: OrderId, forget_heads: bool) {
    let mut doc = desk.replica.order(id).expect("order").save();
    let middle = doc.len() / 2;
    doc[middle] ^= 0xff;
    let heads = if forget_heads { ", doc_heads = NULL" } else { "" };
    let sql = format!("UPDATE orders SET doc = $1{heads}, doc_seq = NULL, tail_changes = 0 WHERE id = $2");
    match database.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&database.url).await.expect("sqlite");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&doc).bind(id.to_string()).execute(&pool).await.expect("damage");
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&database.url).await.expect("postgres");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&doc).bind(id.to_string()).execute(&pool).await.expect("damage");
            pool.close().await;
        }
    }
}

/// An order damaged after the start-up check (its heads kept, so the check passes it by) is
/// quarantined by the first reader that fails to load it, here a push: answered 409, set
/// aside, counted; its assignee's next sync goes on without it.
async fn an_order_found_damaged_by_a_push_is_quarantined(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (mut desk, mut wang, id) = assigned_order(&server).await;
    let database = server.stop().await;
    damage(&database, &desk, id, false).await;
    let server = TestServer::start_on(database).await;
    desk.base = server.base.clone();
    wang.base = server.base.clone();
    wang.replica.add_note(id, "到场检查").expect("note");
    match wang.sync().await {
        Err(SyncError::Refused { status, code }) => assert_eq!((status, code.as_str()), (409, "order_quarantined")),
        other => panic!("expected order_quarantined, got {other:?}"),
    }
    assert!(server.state.db.is_quarantined(&desk.session.org, id).await.expect("query"), "set aside by the push");
    let (status, body) = server.call(&desk.session.token, "GET", "/api/v1/return-visits", None).await;
    assert_eq!(status, 200, "a list goes on without the damaged order: {body}");
    let metrics =
        reqwest::get(format!("{}/metrics", server.metrics_base)).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("loopwork_orders_quarantined_total 1"), "{metrics}");
    server.stop().await.drop_database().await;
}

/// What an order broken by the non-canonical change (stored before the server refused them)
/// looks like: a stored snapshot that does not load. Found at start-up, set aside, never sent.
async fn an_order_whose_stored_history_does_not_load_is_quarantined_not_served(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (mut desk, _wang, id) = assigned_order(&server).await;
    let healthy = desk.replica.create(&leak(server.login("yezhu1502").await.user)).expect("create");
    desk.synced().await;
    let database = server.stop().await;
    // Damage the stored snapshot as an older server could have stored it (no heads kept).
    damage(&database, &desk, id, true).await;
    let server = TestServer::start_on(database).await;
    desk.base = server.base.clone();
    // The start-up check finds it.
    let mut found = false;
    for _ in 0..100 {
        if server.state.db.is_quarantined(&desk.session.org, id).await.expect("query") {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(found, "the damaged order is quarantined at start-up");
    assert!(!server.state.db.is_quarantined(&desk.session.org, healthy).await.expect("query"));
    // A clear answer, not a 500; a new device syncs whole without it; the metric counts it.
    let (status, body) = server.call(&desk.session.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!((status, body["error"]["code"].clone()), (409, serde_json::json!("order_quarantined")), "{body}");
    let mut fresh = server.device("zhuguan").await;
    fresh.synced().await;
    assert!(fresh.replica.order(id).is_err(), "a quarantined order is sent to nobody");
    assert!(fresh.replica.order(healthy).is_ok());
    let metrics =
        reqwest::get(format!("{}/metrics", server.metrics_base)).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("loopwork_orders_quarantined_total 1"), "{metrics}");
    server.stop().await.drop_database().await;
}

/// One creating change holding what `order`'s creating change holds, plus what `extra` writes
/// (a forger's single change: Automerge lets one change write anything).
fn creating_change_with(
    order: &WorkOrder,
    actor: ActorId,
    extra: &dyn Fn(&mut automerge::transaction::Transaction<'_>),
) -> Vec<u8> {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc, Value};
    let doc = order.automerge();
    let mut one = automerge::Automerge::new().with_actor(actor);
    let mut tx = one.transaction();
    for item in doc.map_range(ROOT, ..) {
        let id = item.id();
        match item.value.into_value() {
            Value::Scalar(v) => {
                tx.put(ROOT, item.key.as_ref(), v.into_owned()).expect("put");
            }
            Value::Object(kind) => {
                let obj = tx.put_object(ROOT, item.key.as_ref(), kind).expect("object");
                if kind == ObjType::Text {
                    tx.splice_text(&obj, 0, 0, &doc.text(&id).expect("text")).expect("splice");
                }
                for field in doc.map_range(&id, ..) {
                    if let Value::Scalar(v) = field.value.into_value() {
                        tx.put(&obj, field.key.as_ref(), v.into_owned()).expect("put");
                    }
                }
            }
        }
    }
    extra(&mut tx);
    tx.commit();
    one.get_changes(&[]).first().expect("one change").raw_bytes().to_vec()
}

/// An owner (or any device) creates an order with a change that holds exactly what registering
/// writes, as the device's own user and role: a creating change that also carries a forged
/// history (others' transitions up to `close`, an official number) or names another creator is
/// refused whole, and so is a second change without dependencies for an existing order.
async fn a_creating_change_holds_the_registration_and_nothing_else(backend: Backend) {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc};
    let server = TestServer::start(backend).await;
    let (mut desk, _wang, existing) = assigned_order(&server).await;
    let mut owner = server.device("yezhu1502").await;
    let me = owner.session.identity();
    let mut report = leak(me.user);
    report.channel = Channel::App;
    let kefu = desk.session.identity();
    let registered = WorkOrder::create(&report, &me, 1_700_000_000_000).expect("create");
    let id = registered.id();

    let closed = creating_change_with(&registered, me.device.actor(), &|tx| {
        let (_, list) = tx.get(ROOT, "transitions").expect("get").expect("list");
        let entry = tx.insert_object(&list, 0, ObjType::Map).expect("entry");
        tx.put(&entry, "action", "close").expect("put");
        tx.put(&entry, "by", kefu.user.to_string()).expect("put");
        tx.put(&entry, "role", "admin").expect("put");
    });
    assert_eq!(refused(&mut owner, request(id, closed, false, vec![])).await, (400, "invalid_creation".into()));
    let numbered = creating_change_with(&registered, me.device.actor(), &|tx| {
        tx.put(ROOT, "official_no", "FORGED-0001").expect("put");
    });
    assert_eq!(refused(&mut owner, request(id, numbered, false, vec![])).await, (400, "invalid_creation".into()));
    let as_kefu = WorkOrder::create(&report, &Identity::new(kefu.user, Role::Admin, me.device), 1).expect("create");
    let as_kefu_bytes = as_kefu.automerge().get_changes(&[]).first().expect("change").raw_bytes().to_vec();
    assert_eq!(
        refused(&mut owner, request(as_kefu.id(), as_kefu_bytes, false, vec![])).await,
        (400, "invalid_creation".into())
    );
    // A second root for an order that exists: refused, whoever it names.
    let second_root =
        creating_change_with(&desk.replica.order(existing).expect("order"), desk.session.device.actor(), &|_| {});
    assert_eq!(
        refused(&mut desk, request(existing, second_root, false, vec![])).await,
        (400, "invalid_creation".into())
    );
    // Nothing was stored; the very registration, rebuilt as one change, goes in.
    let (status, _) = server.call(&desk.session.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!(status, 404);
    let honest = creating_change_with(&registered, me.device.actor(), &|_| {});
    owner.post(request(id, honest, false, vec![])).await.expect("the registration is accepted");
    let (status, body) = server.call(&desk.session.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!((status, body["status"].clone()), (200, serde_json::json!("new")), "{body}");
    server.stop().await.drop_database().await;
}

/// Rechunks a change with `extra` bytes after its columns (Automerge's parser keeps them, and
/// the hash covers them), with its length and checksum made right.
fn with_extra_bytes(bytes: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut body = change_body(bytes).to_vec();
    body.extend_from_slice(extra);
    rechunk(&body)
}

/// No device stores data no rule reads: bytes after a change's columns (Automerge keeps them
/// through every save) and long messages are refused (`invalid_change`), and nothing is stored.
async fn a_change_carries_no_extra_bytes_and_a_short_message(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (mut desk, mut wang, id) = assigned_order(&server).await;
    let mut copy = wang.replica.order(id).expect("order").with_device(wang.session.device);
    let before = copy.heads();
    copy.add_note(&wang.session.identity(), "到场", 1_000).expect("note");
    let note = copy.changes_since(&before).pop().expect("a change").1;
    let padded = with_extra_bytes(&note, &[0x42; 1_000]);
    let parsed = automerge::Change::from_bytes(padded.clone()).expect("Automerge's parser accepts it");
    assert_eq!(parsed.extra_bytes().len(), 1_000);
    assert_eq!(refused(&mut wang, request(id, padded, false, vec![])).await, (400, "invalid_change".into()));

    let mut doc = wang.replica.order(id).expect("order").automerge().clone().with_actor(wang.session.device.actor());
    let heads = doc.get_heads();
    let long = automerge::transaction::CommitOptions::default().with_message("x".repeat(1_000)).with_time(1);
    doc.transact_with(
        |_| long,
        |tx| {
            use automerge::transaction::Transactable;
            tx.put(automerge::ROOT, "grade", "critical").map(|_| ())
        },
    )
    .expect("edit");
    let chatty = doc.get_changes(&heads).last().expect("change").raw_bytes().to_vec();
    assert_eq!(refused(&mut wang, request(id, chatty, false, vec![])).await, (400, "invalid_change".into()));
    desk.synced().await;
    assert!(desk.replica.order(id).expect("order").notes().is_empty(), "nothing was stored");
    server.stop().await.drop_database().await;
}

/// A number only a server wrote counts: a device that creates an order and, in a second change
/// of its own, writes an official number (with a count near the end of the day's range) does not
/// get it kept or the day's count raised; the server numbers the order as usual (the forged
/// change is compensated), and the next registration is numbered right after.
async fn an_official_number_a_device_wrote_is_not_kept(backend: Backend) {
    use automerge::ROOT;
    use automerge::transaction::Transactable;
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let owner = server.login("yezhu1502").await;
    let me = desk.session.identity();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("now").as_millis() as i64;
    let mut order = WorkOrder::create(&leak(owner.user), &me, now).expect("create").with_device(me.device);
    let forged = format!("GD{}99999999", loopwork_sync_core::china_time::day_code(now));
    order.raw_change(now, "forged number", |tx| tx.put(ROOT, "official_no", forged.as_str()).map(drop)).expect("forge");
    let changes: Vec<OrderBytes> =
        order.changes_since(&[]).into_iter().map(|(_, bytes)| OrderBytes { order: order.id(), bytes }).collect();
    assert_eq!(changes.len(), 2);
    let body = SyncRequest { cursor: None, limit: 10, changes, ..Default::default() }.encode();
    desk.post(body).await.expect("the push is answered");
    let (status, detail) =
        server.call(&desk.session.token, "GET", &format!("/api/v1/orders/{}", order.id()), None).await;
    assert_eq!(status, 200, "{detail}");
    let number = detail["number"].as_str().expect("number").to_owned();
    assert_ne!(number, forged, "{detail}");
    let body = serde_json::json!({
        "kind": "repair", "category": "water_electric", "grade": "minor", "channel": "hotline",
        "project": "hy-garden", "building": "3", "unit": "3-1502", "description": "下一单",
    });
    let (status, next) = server.call(&desk.session.token, "POST", "/api/v1/orders", Some(body)).await;
    assert_eq!(status, 201, "{next}");
    let count = |n: &str| loopwork_sync_core::china_time::OfficialNumber::parse(n).expect("a server number").count;
    assert_eq!(count(next["number"].as_str().expect("number")), count(&number) + 1, "{next}");
    server.stop().await.drop_database().await;
}
