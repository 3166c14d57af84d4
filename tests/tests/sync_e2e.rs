//! Sync end to end: the real server over HTTP, devices going offline and coming back, on SQLite
//! and on PostgreSQL. Every scenario runs on both.

use loopwork_sync_core::lifecycle::{Supersession, Verdict};
use loopwork_sync_core::protocol::{CONTENT_TYPE, OrderBytes, SyncRequest};
use loopwork_sync_core::store::{OrderQuery, Store};
use loopwork_sync_core::{Action, Category, Channel, CoreError, Grade, Kind, Location, NewOrder, OrderId, Status};
use loopwork_tests::{Backend, Device, SyncError, TestServer, on_both_backends};

on_both_backends!(
    the_loop_closes_technician_offline_owner_confirms,
    reassignment_moves_the_order_and_tells_the_old_technician_why,
    nobody_reads_or_writes_outside_their_scope,
    duplicated_and_replayed_requests_are_harmless,
    a_cut_off_or_malformed_request_changes_nothing,
    the_server_restarts_mid_test_and_nothing_acknowledged_is_lost,
    an_old_client_is_told_to_upgrade,
    a_revoked_device_is_refused_at_its_next_request,
    a_large_initial_sync_is_paged,
    a_server_restored_from_backup_reconciles_and_loses_nothing,
    online_clients_hear_of_changes_live,
    metrics_count_syncs_and_refusals_by_code,
    a_change_whose_dependencies_have_not_arrived_is_refused_until_they_do,
    a_tampered_or_foreign_document_change_is_refused_and_nothing_is_stored,
    a_dishonest_offline_edit_is_compensated_and_the_device_told_why,
    who_may_close_follows_the_grade_and_the_organization_s_settings,
    an_owner_marking_their_own_order_completed_changes_nothing_but_is_on_record,
    an_order_with_many_notes_reads_whole_from_every_door,
);

/// Several server replicas on one PostgreSQL: writes through both interleave, and a device that
/// syncs while they are under way still receives every change (no feed row is passed over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_replicas_on_one_postgres_lose_nothing() {
    let first = TestServer::start(Backend::Postgres).await;
    let second = first.replica().await;
    let owner = first.login("yezhu1502").await;
    let mut writers = Vec::new();
    for i in 0..6 {
        let server = if i % 2 == 0 { &first } else { &second };
        writers.push(server.device("kefu").await);
    }
    let mut observer = second.device("zhuguan").await;
    synced(&mut observer).await;
    let mut tasks = Vec::new();
    for mut desk in writers {
        tasks.push(tokio::spawn(async move {
            let mut created = Vec::new();
            for _ in 0..8 {
                let id = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
                desk.sync().await.expect("sync");
                created.push(id);
            }
            created
        }));
    }
    // The observer syncs while the writers write.
    for _ in 0..10 {
        synced(&mut observer).await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("writer"));
    }
    synced(&mut observer).await;
    let mut numbers = std::collections::HashSet::new();
    for id in &all {
        let order = observer.replica.order(*id).unwrap_or_else(|_| panic!("order {id} was passed over"));
        assert!(numbers.insert(order.official_number().expect("numbered")), "official numbers are unique");
    }
    assert_eq!(all.len(), 48);

    // A listener on one replica hears of a push through the other.
    use futures_util::StreamExt;
    let listener = second.login("zhuguan").await;
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/live", second.base))
        .bearer_auth(&listener.token)
        .send()
        .await
        .expect("subscribe");
    let mut events = response.bytes_stream();
    let mut desk = first.device("kefu").await;
    let id = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    synced(&mut desk).await;
    // …and of a note (written with the rest of its batch), at the feed's newest position.
    desk.replica.add_note(id, "已联系业主").expect("note");
    synced(&mut desk).await;
    let latest = first.state.db.latest_seq(&desk.session.org).await.expect("latest");
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut text = String::new();
        while let Some(Ok(chunk)) = events.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains(&format!("event: feed\ndata: {latest}\n")) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(heard, "a push through one replica reaches the other's live listeners, with the feed's position");
    second.stop().await;
    first.stop().await.drop_database().await;
}

fn leak_in(unit: &str, building: &str, reporter: loopwork_sync_core::UserId) -> NewOrder {
    NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade: Grade::Serious,
        channel: Channel::Hotline,
        location: Location::unit("hy-garden", building, unit),
        description: "卫生间天花板渗水".into(),
        reporter,
        occurred_at_ms: None,
    }
}

/// A request that pushes `changes` and nothing else (no cursor).
fn pushing(changes: Vec<OrderBytes>) -> SyncRequest {
    SyncRequest { cursor: None, limit: 10, changes, ..Default::default() }
}

async fn synced(device: &mut Device) {
    device.synced().await;
}

fn status_of(device: &Device, id: OrderId) -> Status {
    device.status_of(id)
}

async fn the_loop_closes_technician_offline_owner_confirms(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let mut owner = server.device("yezhu1502").await;
    let owner_id = owner.session.user;
    for d in [&mut desk, &mut wang, &mut owner] {
        synced(d).await;
    }

    // 客服 registers the owner's call and assigns 王师傅.
    let id = desk.replica.create(&leak_in("3-1502", "3", owner_id)).expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    synced(&mut desk).await;
    let number = desk.replica.order(id).expect("order").official_number().expect("numbered on first sync");
    assert!(number.starts_with("GD"), "{number}");

    // Wang receives it, goes into the basement and works offline.
    synced(&mut wang).await;
    let mine = wang.replica.list(&OrderQuery::assigned_to(wang.session.user, 10)).expect("list");
    assert!(mine.iter().any(|o| o.id == id));
    wang.online = false;
    for action in [Action::Accept, Action::Arrive, Action::Start] {
        wang.replica.transition(id, action, None).expect("offline transition");
    }
    wang.replica.add_note(id, "楼上卫生间防水层破损,已临时封堵").expect("note");
    wang.replica.transition(id, Action::Complete, None).expect("complete");
    assert!(matches!(wang.sync().await, Err(SyncError::Offline)));
    assert_eq!(wang.replica.pending_count().expect("pending"), 5);

    // Back in signal: everything merges.
    wang.online = true;
    synced(&mut wang).await;
    assert_eq!(wang.replica.pending_count().expect("pending"), 0);

    // The owner sees it completed and confirms with a rating, then everyone converges.
    synced(&mut owner).await;
    assert_eq!(status_of(&owner, id), Status::AwaitingConfirmation);
    owner.replica.transition(id, Action::Confirm { rating: 5 }, Some("师傅很专业")).expect("confirm");
    for d in [&mut owner, &mut desk, &mut wang] {
        synced(d).await;
    }
    let heads = desk.replica.order(id).expect("order").heads();
    for d in [&desk, &wang, &owner] {
        let order = d.replica.order(id).expect("order");
        assert_eq!(order.heads(), heads);
        assert_eq!(order.state().expect("state").status, Status::Confirmed);
        assert_eq!(order.state().expect("state").rating, Some(5));
        assert_eq!(order.notes().len(), 1);
        assert_eq!(order.official_number().as_deref(), Some(number.as_str()));
    }
    server.stop().await.drop_database().await;
}

async fn reassignment_moves_the_order_and_tells_the_old_technician_why(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let mut li = server.device("li").await;
    let owner = server.login("yezhu1502").await;
    let id = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    synced(&mut desk).await;
    synced(&mut wang).await;
    synced(&mut li).await;
    assert!(li.replica.order(id).is_err(), "Li sees nothing before assignment");

    // Wang works offline while the desk reassigns to Li.
    wang.online = false;
    wang.replica.transition(id, Action::Accept, None).expect("accept");
    wang.replica.add_note(id, "已关闭总阀").expect("note");
    desk.replica.transition(id, Action::Assign(li.session.user), Some("王师傅请假")).expect("reassign");
    synced(&mut desk).await;

    synced(&mut li).await;
    assert_eq!(status_of(&li, id), Status::Assigned);
    assert_eq!(li.replica.order(id).expect("order").state().expect("state").assignee, Some(li.session.user));

    wang.online = true;
    synced(&mut wang).await;
    assert_eq!(wang.replica.pending_count().expect("pending"), 0, "Wang's offline work was accepted");
    assert_eq!(wang.replica.revocation(id).expect("revocation").as_deref(), Some("reassigned"));
    assert!(matches!(wang.replica.add_note(id, "还能写吗"), Err(CoreError::ReadOnly { .. })));

    synced(&mut desk).await;
    synced(&mut li).await;
    for d in [&desk, &li] {
        let order = d.replica.order(id).expect("order");
        assert_eq!(order.notes().len(), 1, "Wang's note is kept");
        let state = order.state().expect("state");
        assert_eq!(state.assignee, Some(li.session.user));
        let wang_accept = state.history.iter().find(|f| f.transition.by == wang.session.user).expect("Wang's accept");
        assert_eq!(wang_accept.verdict, Verdict::Superseded(Supersession::Reassigned));
    }
    server.stop().await.drop_database().await;
}

async fn nobody_reads_or_writes_outside_their_scope(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut li = server.device("li").await;
    let mut owner_0801 = server.device("yezhu0801").await;
    let owner_1502 = server.login("yezhu1502").await;
    let id = desk.replica.create(&leak_in("3-1502", "3", owner_1502.user)).expect("create");
    synced(&mut desk).await;

    // Another organization's dispatcher sees nothing of ours.
    let db = server.state.db.as_ref();
    let other_org = db.create_organization("别家物业", 0).await.expect("org");
    db.create_project(&other_org, "other-garden", "别家小区").await.expect("project");
    let hash = loopwork_server::auth::hash_password(loopwork_server::demo::DEMO_PASSWORD).expect("hash");
    db.create_user(
        &loopwork_server::store::NewUser {
            org: other_org.clone(),
            login: "other-kefu".into(),
            password_hash: hash,
            role: loopwork_sync_core::Role::Dispatcher,
            display_name: "别家客服".into(),
            phone: None,
        },
        0,
    )
    .await
    .expect("user");
    let mut stranger = server.device("other-kefu").await;
    for d in [&mut li, &mut owner_0801, &mut stranger] {
        synced(d).await;
        assert!(d.replica.order(id).is_err(), "{} does not see the order", d.session.role);
    }
    assert_eq!(li.replica.order_count().expect("count"), 0, "nothing is assigned to Li");
    assert_eq!(stranger.replica.order_count().expect("count"), 0, "another organization sees nothing of ours");
    let own = owner_0801.replica.list(&OrderQuery { limit: 100, ..Default::default() }).expect("list");
    assert!(
        !own.is_empty()
            && own
                .iter()
                .all(|o| o.location.unit.as_deref() == Some("5-0801") || o.reporter == owner_0801.session.user)
    );

    // Pushing a change to an order outside one's scope is refused and stores nothing.
    let doc = desk.replica.order(id).expect("order");
    for intruder in [&mut li, &mut owner_0801, &mut stranger] {
        let mut copy = doc.clone().with_device(intruder.session.device);
        let before = copy.heads();
        copy.add_note(&intruder.identity(), "越权写入", 0).expect("local edit");
        let changes = copy.changes_since(&before);
        let request = pushing(vec![OrderBytes { order: id, bytes: changes[0].1.clone() }]);
        match intruder.post(request.encode()).await {
            Err(SyncError::Refused { status: 403, code }) => assert_eq!(code, "out_of_scope"),
            other => panic!("expected out_of_scope, got {other:?}"),
        }
    }
    // A request that writes in scope and out of it is refused whole: nothing of it is stored.
    let own = desk.replica.create(&leak_in("3-1502", "3", owner_1502.user)).expect("create");
    desk.replica.transition(own, Action::Assign(li.session.user), None).expect("assign");
    synced(&mut desk).await;
    synced(&mut li).await;
    li.replica.add_note(own, "本单的记录").expect("note on his own order");
    let mine = li.replica.pending(10).expect("pending");
    let mut copy = doc.clone().with_device(li.session.device);
    let before = copy.heads();
    copy.add_note(&li.identity(), "越权写入", 0).expect("local edit");
    let mixed = pushing(vec![
        OrderBytes { order: own, bytes: mine[0].bytes.clone() },
        OrderBytes { order: id, bytes: copy.changes_since(&before)[0].1.clone() },
    ]);
    match li.post(mixed.encode()).await {
        Err(SyncError::Refused { status: 403, code }) => assert_eq!(code, "out_of_scope"),
        other => panic!("expected out_of_scope, got {other:?}"),
    }
    synced(&mut desk).await;
    assert!(desk.replica.order(own).expect("order").notes().is_empty(), "the in-scope half was not stored either");

    // An owner may not create an order for someone else's unit.
    let foreign_unit = owner_0801.replica.create(&leak_in("3-1502", "3", owner_0801.session.user)).expect("local");
    match owner_0801.sync().await {
        Err(SyncError::Refused { status: 403, code }) => assert_eq!(code, "out_of_scope"),
        other => panic!("expected out_of_scope, got {other:?}"),
    }
    let _ = foreign_unit;

    // A change made by another device is refused, whoever sends it.
    let before = doc.heads();
    let mut forged = doc.clone().with_device(desk.session.device);
    forged.add_note(&desk.identity(), "冒名修改", 0).expect("edit");
    let forged_change = forged.changes_since(&before)[0].1.clone();
    let request = pushing(vec![OrderBytes { order: id, bytes: forged_change }]);
    match li.post(request.encode()).await {
        Err(SyncError::Refused { status: 403, code }) => assert_eq!(code, "foreign_actor"),
        other => panic!("expected foreign_actor, got {other:?}"),
    }

    synced(&mut desk).await;
    assert!(desk.replica.order(id).expect("order").notes().is_empty(), "nothing refused was stored");
    server.stop().await.drop_database().await;
}

async fn duplicated_and_replayed_requests_are_harmless(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let owner = server.login("yezhu1502").await;
    synced(&mut desk).await;
    let id = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    desk.replica.add_note(id, "业主下午在家").expect("note");

    let request = desk.replica.sync_request().expect("request").encode();
    let first = desk.post(request.clone()).await.expect("first");
    let second = desk.post(request.clone()).await.expect("replayed request");
    let decode = |b: &[u8]| {
        loopwork_sync_core::protocol::SyncResponse::decode(b, &loopwork_sync_core::protocol::Limits::default())
            .expect("response")
    };
    let (first, second) = (decode(&first), decode(&second));
    assert_eq!(first.acked, second.acked, "a replay is acknowledged the same");
    assert_eq!(first.acked.len(), 2);

    // Receiving the same response twice changes nothing.
    desk.replica.apply_sync_response(&first).expect("apply");
    let heads = desk.replica.order(id).expect("order").heads();
    desk.replica.apply_sync_response(&first).expect("apply again");
    assert_eq!(desk.replica.order(id).expect("order").heads(), heads);
    assert_eq!(desk.replica.pending_count().expect("pending"), 0);

    // The same exchange as a JSON debug view, for a person with curl.
    let debug: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/sync/v1", server.base))
        .bearer_auth(&desk.session.token)
        .header("content-type", CONTENT_TYPE)
        .header("accept", "application/json")
        .body(request.clone())
        .send()
        .await
        .expect("debug view")
        .json()
        .await
        .expect("json");
    assert_eq!(debug["acked"].as_array().map(Vec::len), Some(2));
    assert_eq!(debug["protocol"], 1);

    // The order exists once, with one note, for everyone.
    let mut other_desk = server.device("zhuguan").await;
    synced(&mut other_desk).await;
    let order = other_desk.replica.order(id).expect("order");
    assert_eq!(order.notes().len(), 1);
    let filter = loopwork_server::store::OrderFilter { limit: Some(100), ..Default::default() };
    let orders = server.state.db.query_orders(&principal_of(&desk), &filter, 0).await.expect("list");
    assert_eq!(orders.iter().filter(|o| o.id == id.to_string()).count(), 1);
    server.stop().await.drop_database().await;
}

fn principal_of(device: &Device) -> loopwork_server::replication::Principal {
    device.session.principal()
}

async fn a_cut_off_or_malformed_request_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let owner = server.login("yezhu1502").await;
    let id = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    for i in 0..20 {
        desk.replica.add_note(id, &format!("记录 {i}:{}", "检查管道".repeat(10))).expect("note");
    }
    let body = desk.replica.sync_request().expect("request").encode();
    for cut in [1, 7, 12, body.len() / 2, body.len() - 1] {
        match desk.post(body[..cut].to_vec()).await {
            Err(SyncError::Refused { status: 400, code }) => assert!(code == "malformed_frame", "{code}"),
            other => panic!("a request cut at {cut} of {} was not refused: {other:?}", body.len()),
        }
    }
    match desk.post(b"{\"json\": true}".to_vec()).await {
        Err(SyncError::Refused { status: 400, code }) => assert_eq!(code, "malformed_frame"),
        other => panic!("{other:?}"),
    }
    let mut other = server.device("zhuguan").await;
    synced(&mut other).await;
    assert!(other.replica.order(id).is_err(), "nothing of the cut requests was stored");

    synced(&mut desk).await;
    synced(&mut other).await;
    assert_eq!(other.replica.order(id).expect("order").notes().len(), 20);

    // A request over the body limit is refused as too large, from its headers alone, with the
    // documented error frame; a JSON call over its limit with the documented JSON error.
    let (status, body) = announce_oversized_body(&server.base, &desk.session.token).await;
    assert_eq!(status, 413);
    let error = loopwork_sync_core::protocol::ErrorFrame::decode(&body).expect("an error frame, not plain text");
    assert_eq!(error.code, "too_large");
    let register = |body: reqwest::Body| {
        reqwest::Client::new()
            .post(format!("{}/api/v1/orders", server.base))
            .bearer_auth(&desk.session.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let too_large = |status: u16, body: serde_json::Value| status == 413 && body["error"]["code"] == "too_large";
    let response = register(format!("{{\"description\": \"{}\"}}", "漏".repeat(30_000)).into()).await.expect("post");
    let status = response.status().as_u16();
    assert!(too_large(status, response.json().await.expect("a JSON error")), "status {status}, not too_large");
    // The same body sent in chunks, with no length announced, is cut off at the limit.
    let chunks = (0..30).map(|_| Ok::<_, std::io::Error>("漏漏漏漏漏漏漏漏".repeat(100).into_bytes()));
    let streamed = futures_util::stream::iter(std::iter::once(Ok(b"{\"description\": \"".to_vec())).chain(chunks));
    let response = register(reqwest::Body::wrap_stream(streamed)).await.expect("post");
    let status = response.status().as_u16();
    assert!(too_large(status, response.json().await.expect("a JSON error")), "status {status}, not too_large");
    server.stop().await.drop_database().await;
}

async fn the_server_restarts_mid_test_and_nothing_acknowledged_is_lost(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let owner = server.login("yezhu1502").await;
    let id = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    synced(&mut desk).await;
    synced(&mut wang).await;
    wang.replica.transition(id, Action::Accept, None).expect("accept");
    synced(&mut wang).await;

    let server = server.restart().await;
    desk.base = server.base.clone();
    wang.base = server.base.clone();
    wang.replica.transition(id, Action::Arrive, None).expect("arrive");
    synced(&mut wang).await;
    synced(&mut desk).await;
    assert_eq!(status_of(&desk, id), Status::OnSite);
    assert_eq!(desk.replica.order(id).expect("order").heads(), wang.replica.order(id).expect("order").heads());
    server.stop().await.drop_database().await;
}

async fn an_old_client_is_told_to_upgrade(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut frame = SyncRequest::default().encode();
    frame[4] = 9;
    match desk.post(frame).await {
        Err(SyncError::Refused { status: 426, code }) => assert_eq!(code, "upgrade_required"),
        other => panic!("{other:?}"),
    }
    // The error itself is a well-formed frame with both languages.
    let response = reqwest::Client::new()
        .post(format!("{}/sync/v1", server.base))
        .bearer_auth(&desk.session.token)
        .header("content-type", CONTENT_TYPE)
        .body({
            let mut f = SyncRequest::default().encode();
            f[4] = 9;
            f
        })
        .send()
        .await
        .expect("post");
    let error =
        loopwork_sync_core::protocol::ErrorFrame::decode(&response.bytes().await.expect("body")).expect("frame");
    assert!(error.message_zh.contains("升级"));
    server.stop().await.drop_database().await;
}

async fn a_revoked_device_is_refused_at_its_next_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut wang = server.device("wang").await;
    let admin = server.login("admin").await;
    synced(&mut wang).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/devices/{}/revoke", server.base, wang.session.device))
        .bearer_auth(&admin.token)
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 204);
    match wang.sync().await {
        Err(SyncError::Refused { status: 401, code }) => assert_eq!(code, "unauthenticated"),
        other => panic!("{other:?}"),
    }
    // Signing in again registers a new device, which works.
    let mut again = server.device("wang").await;
    synced(&mut again).await;
    server.stop().await.drop_database().await;
}

async fn a_large_initial_sync_is_paged(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let owner = server.login("yezhu1502").await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let id = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
        desk.replica.add_note(id, &format!("第{i}单")).expect("note");
        ids.push(id);
    }
    synced(&mut desk).await;
    let mut fresh = server.device("zhuguan").await;
    // A small page forces several round trips; a page cut at any point resumes from the cursor.
    let mut round_trips = 0;
    loop {
        let mut request = fresh.replica.sync_request().expect("request");
        request.limit = 7;
        let bytes = fresh.post(request.encode()).await.expect("post");
        let response = loopwork_sync_core::protocol::SyncResponse::decode(&bytes, &Default::default()).expect("decode");
        let outcome = fresh.replica.apply_sync_response(&response).expect("apply");
        round_trips += 1;
        if !outcome.again {
            break;
        }
    }
    assert!(round_trips >= 60 / 7, "{round_trips}");
    assert_eq!(fresh.replica.store().order_count().expect("count"), 60 + 4, "60 orders and the 4 demo orders");
    for id in &ids {
        assert_eq!(fresh.replica.order(*id).expect("order").notes().len(), 1);
    }

    // A catch-up from the feed is paged the same way: each page ends mid-feed, and the next
    // resumes from there.
    for (i, id) in ids.iter().enumerate().take(30) {
        desk.replica.add_note(*id, &format!("回访{i}")).expect("note");
    }
    synced(&mut desk).await;
    let mut round_trips = 0;
    loop {
        let mut request = fresh.replica.sync_request().expect("request");
        request.limit = 7;
        let bytes = fresh.post(request.encode()).await.expect("post");
        let response = loopwork_sync_core::protocol::SyncResponse::decode(&bytes, &Default::default()).expect("decode");
        assert!(!response.reconcile_required, "every page's cursor is known to the server");
        assert!(response.changes.len() <= 7);
        let outcome = fresh.replica.apply_sync_response(&response).expect("apply");
        round_trips += 1;
        if !outcome.again {
            break;
        }
    }
    assert!(round_trips > 30 / 7, "{round_trips}");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(fresh.replica.order(*id).expect("order").notes().len(), if i < 30 { 2 } else { 1 });
    }
    server.stop().await.drop_database().await;
}

/// Sends only the head of a request that announces a body one byte over the limit, and reads
/// the answer: its status and body.
async fn announce_oversized_body(base: &str, token: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /sync/v1 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n\r\n",
        loopwork_server::http::sync::MAX_SYNC_BODY + 1
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let (status, body) = loop {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "the connection closed before the answer was whole");
        answer.extend_from_slice(&buf[..n]);
        let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a content length");
        if answer.len() >= end + 4 + length {
            let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            break (status, answer[end + 4..end + 4 + length].to_vec());
        }
    };
    (status, body)
}

async fn a_server_restored_from_backup_reconciles_and_loses_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let owner = server.login("yezhu1502").await;
    let a = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    desk.replica.transition(a, Action::Assign(wang.session.user), None).expect("assign");
    synced(&mut desk).await;
    synced(&mut wang).await;

    // Nightly backup.
    let database = server.stop().await;
    let backup = database.backup().await;
    let server = TestServer::start_on(database).await;
    desk.base = server.base.clone();
    wang.base = server.base.clone();

    // Work after the backup, acknowledged by the server.
    desk.replica.add_note(a, "业主改约明天上午").expect("note");
    let b = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    synced(&mut desk).await;
    assert_eq!(desk.replica.pending_count().expect("pending"), 0);
    let b_number = desk.replica.order(b).expect("b").official_number().expect("numbered");
    wang.replica.transition(a, Action::Accept, None).expect("accept");
    synced(&mut wang).await;

    // The disk dies; the database is restored from the backup, and others write to it again so
    // that its feed grows past the devices' cursors.
    let database = server.stop().await;
    let database = database.restore(backup).await;
    let server = TestServer::start_on(database).await;
    // The runbook's step before serving (`loopwork admin skip-numbers`; `loopwork restore` does it).
    server.state.db.skip_numbers(1_000, server.state.clock.now_ms()).await.expect("skip numbers");
    let mut boss = server.device("zhuguan").await;
    for _ in 0..5 {
        boss.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    }
    synced(&mut boss).await;

    desk.base = server.base.clone();
    wang.base = server.base.clone();
    synced(&mut desk).await;
    synced(&mut wang).await;
    synced(&mut desk).await;
    synced(&mut boss).await;
    for d in [&desk, &wang, &boss] {
        let order = d.replica.order(a).expect("order a");
        assert_eq!(order.notes().len(), 1, "the note made after the backup came back");
        assert_eq!(order.state().expect("state").status, Status::Accepted, "Wang's accept came back");
    }
    assert!(boss.replica.order(b).is_ok(), "the order created after the backup came back");
    // With the number it was given: a phone re-pushing it does not get it renumbered, and no
    // other order has that number.
    assert_eq!(boss.replica.order(b).expect("b").official_number().as_deref(), Some(b_number.as_str()));
    let numbers: Vec<String> = boss
        .replica
        .list(&loopwork_sync_core::store::OrderQuery { limit: 1_000, ..Default::default() })
        .expect("list")
        .into_iter()
        .filter_map(|o| boss.replica.order(o.id).ok()?.official_number())
        .collect();
    let unique: std::collections::BTreeSet<&String> = numbers.iter().collect();
    assert_eq!(unique.len(), numbers.len(), "official numbers are unique after the restore: {numbers:?}");
    assert_eq!(boss.replica.order(a).expect("a").heads(), wang.replica.order(a).expect("a").heads());
    server.stop().await.drop_database().await;
}

async fn online_clients_hear_of_changes_live(backend: Backend) {
    use futures_util::StreamExt;
    let server = TestServer::start(backend).await;
    let listener = server.login("zhuguan").await;
    let mut desk = server.device("kefu").await;
    let owner = server.login("yezhu1502").await;
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/live", server.base))
        .bearer_auth(&listener.token)
        .send()
        .await
        .expect("subscribe");
    assert_eq!(response.status(), 200);
    let mut events = response.bytes_stream();
    desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    synced(&mut desk).await;
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut text = String::new();
        while let Some(Ok(chunk)) = events.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("event: feed") {
                return text;
            }
        }
        text
    })
    .await
    .expect("a feed event arrives");
    assert!(heard.contains("event: feed"), "{heard}");
    server.stop().await.drop_database().await;
}

async fn metrics_count_syncs_and_refusals_by_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    let health = reqwest::get(format!("{}/healthz", server.base)).await.expect("healthz");
    assert_eq!(health.status(), 200, "ready");
    let mut desk = server.device("kefu").await;
    let owner = server.login("yezhu1502").await;
    desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    synced(&mut desk).await;
    let mut frame = SyncRequest::default().encode();
    frame[4] = 7;
    let _ = desk.post(frame).await;
    let text =
        reqwest::get(format!("{}/metrics", server.metrics_base)).await.expect("metrics").text().await.expect("body");
    // A metric's value, summed over its labels matching `labels`.
    let value = |name: &str, labels: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(value("loopwork_sync_requests_total", "outcome=\"ok\"") >= 1.0, "{text}");
    assert_eq!(value("loopwork_errors_total", "code=\"upgrade_required\""), 1.0, "{text}");
    assert!(value("loopwork_sync_bytes_total", "direction=\"in\"") > 100.0, "a pushed order's bytes: {text}");
    assert!(value("loopwork_sync_bytes_total", "direction=\"out\"") > 0.0, "{text}");
    assert!(value("loopwork_changes_merged_total", "") >= 1.0, "{text}");
    assert!(value("loopwork_sync_merge_seconds_count", "") >= 1.0, "{text}");
    assert_eq!(value("loopwork_active_devices", ""), 1.0, "the desk synced just now: {text}");
    assert!(text.contains("route=\"/sync/v1\""), "labelled by route, not by URI");
    assert!(!text.contains(&desk.session.user.to_string()), "no user ids in metrics");
    assert!(!text.contains(&desk.session.device.to_string()), "no device ids in metrics");
    server.stop().await.drop_database().await;
}

async fn a_change_whose_dependencies_have_not_arrived_is_refused_until_they_do(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let owner = server.login("yezhu1502").await;
    let id = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    desk.replica.add_note(id, "先到的请求").expect("note");
    let pending = desk.replica.pending(10).expect("pending");
    assert_eq!(pending.len(), 2);
    // The second change arrives alone, before the first (a reordered or lost request).
    let alone = pushing(vec![OrderBytes { order: id, bytes: pending[1].bytes.clone() }]);
    match desk.post(alone.encode()).await {
        Err(SyncError::Refused { status: 400, code }) => assert_eq!(code, "invalid_change"),
        other => panic!("{other:?}"),
    }
    // The device's next ordinary sync sends both, oldest first, and everything lands.
    synced(&mut desk).await;
    let mut other = server.device("zhuguan").await;
    synced(&mut other).await;
    assert_eq!(other.replica.order(id).expect("order").notes().len(), 1);
    server.stop().await.drop_database().await;
}

async fn a_tampered_or_foreign_document_change_is_refused_and_nothing_is_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let owner = server.login("yezhu1502").await;
    let id = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    synced(&mut desk).await;
    desk.replica.add_note(id, "原始记录").expect("note");
    let honest = desk.replica.pending(1).expect("pending")[0].bytes.clone();
    let push = |bytes: Vec<u8>, order: OrderId| pushing(vec![OrderBytes { order, bytes }]);

    // Every single flipped byte in the change's body is caught (checksum, or the change no
    // longer parses), never stored.
    for at in (8..honest.len()).step_by(7) {
        let mut forged = honest.clone();
        forged[at] ^= 0x20;
        match desk.post(push(forged, id).encode()).await {
            Err(SyncError::Refused { status: 400 | 403, .. }) => {}
            other => panic!("a change with byte {at} flipped was not refused: {other:?}"),
        }
    }
    // A real change sent under another order's id.
    let other = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    match desk.post(push(honest.clone(), other).encode()).await {
        Err(SyncError::Refused { status: 400, code }) => {
            assert!(code == "invalid_change" || code == "wrong_order", "{code}")
        }
        other => panic!("{other:?}"),
    }

    let mut boss = server.device("zhuguan").await;
    synced(&mut boss).await;
    assert!(boss.replica.order(id).expect("order").notes().is_empty(), "nothing forged was stored");
    synced(&mut desk).await;
    synced(&mut boss).await;
    assert_eq!(boss.replica.order(id).expect("order").notes().len(), 1, "the honest change lands afterwards");
    server.stop().await.drop_database().await;
}

/// A modified app writes what its user may not (a technician grading an order, offline); the
/// server keeps the change, compensates it, records why, and keeps the honest edits around it.
async fn a_dishonest_offline_edit_is_compensated_and_the_device_told_why(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let owner = server.login("yezhu1502").await;
    let id = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    synced(&mut desk).await;
    synced(&mut wang).await;

    wang.online = false;
    wang.replica.transition(id, Action::Accept, None).expect("accept");
    // `Replica::edit` writes without the field check, as a modified app would.
    wang.replica.edit(id, |order, _, now| order.set_grade(Grade::Critical, now)).expect("raw edit");
    wang.replica.add_note(id, "现场查看:三通接头老化").expect("note");
    wang.online = true;
    synced(&mut wang).await;
    assert_eq!(wang.replica.pending_count().expect("pending"), 0, "the dishonest change is stored, not refused");

    let order = wang.replica.order(id).expect("order");
    assert_eq!(order.grade().expect("grade"), Grade::Serious, "compensated on the device too");
    assert_eq!(order.notes().len(), 1);
    assert_eq!(order.state().expect("state").status, Status::Accepted);
    let rejections = order.rejections();
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0].reason.code(), "role_not_permitted");
    assert_eq!(rejections[0].by, wang.session.user);

    synced(&mut desk).await;
    let at_desk = desk.replica.order(id).expect("order");
    assert_eq!(at_desk.heads(), order.heads());
    assert_eq!(at_desk.rejections().len(), 1);
    let text =
        reqwest::get(format!("{}/metrics", server.metrics_base)).await.expect("metrics").text().await.expect("body");
    assert!(text.contains("loopwork_compensations_total{reason=\"role_not_permitted\"} 1"), "{text}");

    // The audit trail: every change, who made it from which device, when the server got it,
    // and the verdict.
    let http = reqwest::Client::new();
    let audit = |token: String| {
        let request = http.get(format!("{}/api/v1/orders/{id}/audit", server.base)).bearer_auth(token);
        async move { request.send().await.expect("audit") }
    };
    let forbidden = audit(wang.session.token.clone()).await;
    assert_eq!(forbidden.status(), 403, "technicians do not read the audit trail");
    let trail: Vec<serde_json::Value> = audit(desk.session.token.clone()).await.json().await.expect("json");
    let whats: Vec<&str> = trail.iter().map(|e| e["what"].as_str().unwrap_or_default()).collect();
    assert_eq!(&whats[..2], &["create", "assign"], "{whats:?}");
    assert!(trail.iter().all(|e| e["received_at_ms"].is_i64()), "every change has a receipt time");
    let compensated: Vec<&serde_json::Value> = trail.iter().filter(|e| e["verdict"] == "compensated").collect();
    assert_eq!(compensated.len(), 1);
    assert_eq!(compensated[0]["what"], "grade");
    assert_eq!(compensated[0]["reason_code"], "role_not_permitted");
    assert_eq!(compensated[0]["user_id"], wang.session.user.to_string());
    assert_eq!(compensated[0]["role"], "technician");
    assert_eq!(compensated[0]["device_id"], wang.session.device.to_string());
    let server_change = trail.iter().find(|e| e["what"] == "compensate").expect("the compensation is on record");
    assert!(server_change["user_id"].is_null(), "made by the server");
    server.stop().await.drop_database().await;
}

/// Registers a 较重 (serious) order for the owner of 3-1502 and takes it to 已确认.
async fn confirmed_serious_order(desk: &mut Device, wang: &mut Device, owner: &mut Device) -> OrderId {
    let id = desk.replica.create(&leak_in("3-1502", "3", owner.session.user)).expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    synced(desk).await;
    synced(wang).await;
    for action in [Action::Accept, Action::Arrive, Action::Start, Action::Complete] {
        wang.replica.transition(id, action, None).expect("work");
    }
    synced(wang).await;
    synced(owner).await;
    owner.replica.transition(id, Action::Confirm { rating: 5 }, None).expect("confirm");
    synced(owner).await;
    synced(desk).await;
    assert_eq!(status_of(desk, id), Status::Confirmed);
    id
}

async fn who_may_close_follows_the_grade_and_the_organization_s_settings(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let mut owner = server.device("yezhu1502").await;
    let mut chief = server.device("zhuguan").await;
    let admin = server.login("admin").await;

    // By default customer service closes 一般 orders only; a 较重 one needs a supervisor.
    let id = confirmed_serious_order(&mut desk, &mut wang, &mut owner).await;
    desk.replica.transition(id, Action::Close, None).expect("the device's rules allow staff to close");
    synced(&mut desk).await;
    assert_eq!(status_of(&desk, id), Status::Confirmed, "the close is compensated");
    let order = desk.replica.order(id).expect("order");
    assert_eq!(order.rejections()[0].reason.code(), "closing_authority");
    synced(&mut chief).await;
    chief.replica.transition(id, Action::Close, None).expect("close");
    synced(&mut chief).await;
    synced(&mut desk).await;
    assert_eq!(status_of(&desk, id), Status::Closed);

    // The organization lets customer service close 较重 orders too.
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/settings/closing-authority", server.base);
    let current: serde_json::Value =
        http.get(&url).bearer_auth(&desk.session.token).send().await.expect("get").json().await.expect("json");
    assert_eq!(current["serious"], "supervisor");
    let mut wanted = current.clone();
    wanted["serious"] = "dispatcher".into();
    let refused = http.put(&url).bearer_auth(&desk.session.token).json(&wanted).send().await.expect("put");
    assert_eq!(refused.status(), 403, "only an administrator changes it");
    let mut bad = wanted.clone();
    bad["minor"] = "owner".into();
    let invalid = http.put(&url).bearer_auth(&admin.token).json(&bad).send().await.expect("put");
    assert_eq!(invalid.status(), 400);
    let done = http.put(&url).bearer_auth(&admin.token).json(&wanted).send().await.expect("put");
    assert_eq!(done.status(), 204);

    let id = confirmed_serious_order(&mut desk, &mut wang, &mut owner).await;
    desk.replica.transition(id, Action::Close, None).expect("close");
    synced(&mut desk).await;
    assert_eq!(status_of(&desk, id), Status::Closed);
    assert!(desk.replica.order(id).expect("order").rejections().is_empty());
    server.stop().await.drop_database().await;
}

async fn an_owner_marking_their_own_order_completed_changes_nothing_but_is_on_record(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut owner = server.device("yezhu1502").await;
    let id = desk.replica.create(&leak_in("3-1502", "3", owner.session.user)).expect("create");
    synced(&mut desk).await;
    synced(&mut owner).await;
    // The app would refuse; a modified one writes the entry anyway, honestly attributed.
    assert!(owner.replica.transition(id, Action::Complete, None).is_err());
    owner
        .replica
        .edit(id, |order, me, now| order.append_transition_unchecked(me, Action::Complete, None, now))
        .expect("raw");
    // And one claiming to be a technician.
    owner
        .replica
        .edit(id, |order, me, now| {
            let claim = loopwork_sync_core::Identity { role: loopwork_sync_core::Role::Technician, ..*me };
            order.append_transition_unchecked(&claim, Action::Complete, None, now)
        })
        .expect("raw");
    synced(&mut owner).await;
    synced(&mut desk).await;
    for device in [&owner, &desk] {
        let order = device.replica.order(id).expect("order");
        let state = order.state().expect("state");
        assert_eq!(state.status, Status::New, "nothing took effect");
        let superseded: Vec<Supersession> = state.superseded().map(|(_, why)| why).collect();
        assert_eq!(superseded, vec![Supersession::RoleNotPermitted], "the honest entry stays, superseded");
        let rejections = order.rejections();
        assert_eq!(rejections.len(), 1);
        assert_eq!(rejections[0].reason.code(), "misattributed", "the forged one is compensated");
    }
    server.stop().await.drop_database().await;
}

/// The server keeps a noted order as its last snapshot plus the notes logged since (folding
/// them into a new snapshot every few dozen): every way the document leaves the server must
/// still give all of it. Forty notes cross one fold and leave a tail.
async fn an_order_with_many_notes_reads_whole_from_every_door(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let owner = server.login("yezhu1502").await;
    let id = desk.replica.create(&leak_in("3-1502", "3", owner.user)).expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    synced(&mut desk).await;
    synced(&mut wang).await;
    wang.replica.transition(id, Action::Accept, None).expect("accept");
    synced(&mut wang).await;
    for n in 0..40 {
        wang.replica.add_note(id, &format!("第{n}次巡查记录")).expect("note");
        synced(&mut wang).await;
        if n == 4 {
            // A short tail: a new desk device's first sync gets the order whole.
            let mut second_desk = server.device("kefu").await;
            synced(&mut second_desk).await;
            assert_eq!(second_desk.replica.order(id).expect("order").notes().len(), 5);
        }
    }
    let heads = wang.replica.order(id).expect("order").heads();

    // The first sync of a new device.
    let mut new_desk = server.device("kefu").await;
    synced(&mut new_desk).await;
    assert_eq!(new_desk.replica.order(id).expect("order").heads(), heads);
    assert_eq!(new_desk.replica.order(id).expect("order").notes().len(), 40);

    // The audit trail lists every change the technician's phone holds.
    let trail: Vec<serde_json::Value> = reqwest::Client::new()
        .get(format!("{}/api/v1/orders/{id}/audit", server.base))
        .bearer_auth(&desk.session.token)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    let held = loopwork_sync_core::timeline::change_log(&wang.replica.order(id).expect("order")).len();
    assert_eq!(trail.len(), held);

    // After a restart the writer has nothing cached and merges the next note into the stored
    // snapshot and tail.
    let server = server.restart().await;
    for d in [&mut desk, &mut wang] {
        d.base = server.base.clone();
    }
    wang.replica.add_note(id, "重启后的记录").expect("note");
    synced(&mut wang).await;
    assert_eq!(wang.replica.pending_count().expect("pending"), 0);

    // Reassigned: the new technician receives the whole order.
    let mut li = server.device("li").await;
    synced(&mut li).await;
    desk.replica.transition(id, Action::Assign(li.session.user), Some("王师傅休假")).expect("reassign");
    synced(&mut desk).await;
    synced(&mut li).await;
    let heads = desk.replica.order(id).expect("order").heads();
    for d in [&desk, &li] {
        let order = d.replica.order(id).expect("order");
        assert_eq!(order.heads(), heads);
        assert_eq!(order.notes().len(), 41);
    }
    server.stop().await.drop_database().await;
}
