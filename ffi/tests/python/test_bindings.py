"""The generated Python bindings against a running Loopwork server.

Run by `tests/tests/bindings.rs`, which starts a server with the demo data, builds the library,
generates the bindings next to it and sets LOOPWORK_SERVER_URL and PYTHONPATH. These tests cover
the binding glue only (types cross, errors map, callbacks fire, threads are safe); the domain is
tested in Rust.
"""

import os
import threading
import time
import urllib.request
import uuid

import pytest

import loopwork_ffi as lw
from transport import HttpTransport

SERVER = os.environ["LOOPWORK_SERVER_URL"]
PASSWORD = "loopwork-demo"


class Recorder(lw.ChangeObserver):
    def __init__(self):
        self.calls = []

    def orders_changed(self, order_ids, from_sync):
        self.calls.append((list(order_ids), from_sync))


def device(tmp_path, name, login, transport=None):
    transport = transport or HttpTransport()
    app = lw.Loopwork.open(str(tmp_path / name), transport)
    app.sign_in(SERVER, login, PASSWORD, f"{name} phone")
    return app, transport


def dispatch(tmp_path, tech, category="water_electric", description="卫生间地漏返水"):
    """The desk registers a call from the owner of 3-1502 and assigns it to `tech`: each test
    works its own order on the shared server."""
    desk, _ = device(tmp_path, "desk", "kefu")
    desk.sync()
    reporter = next(o.reporter_id for o in desk.list_orders(lw.ListFilter()) if o.location.unit == "3-1502")
    order_id = desk.create_order(
        lw.NewOrderInput(
            kind=lw.Kind.REPAIR,
            category=category,
            grade=lw.Grade.SERIOUS,
            channel=lw.Channel.HOTLINE,
            location=lw.Location(project="hy-garden", building="3", unit="3-1502", area=None),
            description=description,
            reporter_id=reporter,
        )
    )
    desk.assign(order_id, tech.session().user_id)
    desk.sync()
    return order_id


def test_offline_work_then_owner_confirms(tmp_path):
    tech, net = device(tmp_path, "tech", "wang")
    assert tech.session().role == lw.Role.TECHNICIAN
    order_id = dispatch(tmp_path, tech)
    report = tech.sync()
    assert report.round_trips >= 1
    assert order_id in report.updated_order_ids
    mine = tech.list_orders(lw.ListFilter(assigned_to_me=True, open_only=True))
    order = next(o for o in mine if o.id == order_id)
    assert order.status == lw.Status.ASSIGNED
    assert order.category.code == "water_electric"
    assert order.status_label_zh == "已派单"

    # In the basement: no signal.
    net.online = False
    tech.accept(order.id)
    tech.arrive(order.id)
    tech.start_work(order.id)
    tech.add_note(order.id, "更换三通接头,已试水")
    tech.add_part(order.id, "三通接头 DN20", 1)
    item = tech.add_checklist_item(order.id, "关闭总阀")
    tech.tick_checklist_item(order.id, item, True)
    tech.attach(order.id, "a" * 64, "image/jpeg")
    tech.complete(order.id, "已修复")
    assert tech.sync_status().pending_uploads >= 9
    with pytest.raises(lw.LoopworkError.Offline):
        tech.sync()
    detail = tech.get_order(order.id)
    assert detail.summary.status == lw.Status.AWAITING_CONFIRMATION
    assert [n.text for n in detail.notes] == ["更换三通接头,已试水"]
    assert detail.parts[0].quantity == 1 and detail.checklist[0].done
    assert detail.attachments[0].mime == "image/jpeg"

    # Back in signal.
    net.online = True
    report = tech.sync()
    assert report.acknowledged >= 9
    assert tech.sync_status().pending_uploads == 0
    assert tech.sync_status().last_sync_ms is not None

    owner, _ = device(tmp_path, "owner", "yezhu1502")
    owner.sync()
    seen = owner.get_order(order.id)
    assert seen.summary.status == lw.Status.AWAITING_CONFIRMATION
    owner.confirm(order.id, 5, "师傅很专业")
    owner.sync()

    tech.sync()
    for app in (tech, owner):
        done = app.get_order(order.id)
        assert done.summary.status == lw.Status.CONFIRMED
        assert done.rating == 5
        assert done.rating_comment == "师傅很专业"
    actions = [e.event.action for e in tech.timeline(order.id) if isinstance(e.event, lw.TimelineEvent.TRANSITION)]
    assert actions == ["assign", "accept", "arrive", "start", "complete", "confirm"]


def test_errors_map_to_what_an_app_can_act_on(tmp_path):
    net = HttpTransport()
    app = lw.Loopwork.open(str(tmp_path / "errors"), net)
    with pytest.raises(lw.LoopworkError.NotSignedIn):
        app.list_orders(lw.ListFilter())
    with pytest.raises(lw.LoopworkError.NotSignedIn):
        app.sign_in(SERVER, "wang", "wrong password", "phone")
    with pytest.raises(lw.LoopworkError.InvalidInput):
        app.sign_in("ftp://example", "wang", PASSWORD, "phone")
    net.online = False
    with pytest.raises(lw.LoopworkError.Offline):
        app.sign_in(SERVER, "wang", PASSWORD, "phone")
    net.online = True
    app.sign_in(SERVER, "wang", PASSWORD, "phone")
    order_id = dispatch(tmp_path, app)
    app.sync()
    order = next(o for o in app.list_orders(lw.ListFilter(assigned_to_me=True)) if o.id == order_id)

    with pytest.raises(lw.LoopworkError.NotPermitted) as refused:
        app.set_grade(order.id, lw.Grade.CRITICAL)
    assert refused.value.code == "role_not_permitted"
    assert refused.value.message_zh == "您的角色无权执行此操作"
    with pytest.raises(lw.LoopworkError.NotPermitted) as refused:
        app.complete(order.id, None)
    assert refused.value.code == "invalid_from_state"
    with pytest.raises(lw.LoopworkError.InvalidInput):
        app.get_order("not-an-id")
    with pytest.raises(lw.LoopworkError.NotFound):
        app.get_order(str(uuid.uuid4()))
    app.accept(order.id)
    # 改约: the technician moves the preferred window offline; a window ending before it starts
    # is refused on the phone.
    start = int(time.time() * 1000) + 86_400_000
    app.set_appointment(order.id, lw.Appointment(from_ms=start, to_ms=start + 3 * 3_600_000))
    assert app.get_order(order.id).appointment == lw.Appointment(from_ms=start, to_ms=start + 3 * 3_600_000)
    with pytest.raises(lw.LoopworkError.InvalidInput):
        app.set_appointment(order.id, lw.Appointment(from_ms=start, to_ms=start - 1))
    # The technician scans the QR code on the pump: the order names it, offline.
    app.set_asset(order.id, "0191e0a1b2c3d4e5f60718293a4b5c6d")
    assert app.get_order(order.id).asset == "0191e0a1b2c3d4e5f60718293a4b5c6d"
    with pytest.raises(lw.LoopworkError.InvalidInput):
        app.set_asset(order.id, "loopwork://asset/not an id")
    with pytest.raises(lw.LoopworkError.InvalidInput):
        app.add_part(order.id, "阀门", 0)
    with pytest.raises(lw.LoopworkError.InvalidInput):
        app.attach(order.id, "not a hash", "image/jpeg")

    # A request the server cannot read as this protocol version: "upgrade required".
    net.rewrite = lambda body: bytes(body[:4]) + bytes([99]) + bytes(body[5:])
    with pytest.raises(lw.LoopworkError.UpgradeRequired) as upgrade:
        app.sync()
    assert upgrade.value.message_zh
    net.rewrite = None
    assert app.sync().acknowledged >= 1

    # The device is revoked (a lost phone): its next request signs it out, its data stays.
    revoke = urllib.request.Request(
        f"{SERVER}/api/v1/devices/{app.session().device_id}/revoke", method="POST", data=b""
    )
    token = lw_token_of(tmp_path / "errors")
    revoke.add_header("authorization", f"Bearer {token}")
    urllib.request.urlopen(revoke, timeout=10)
    with pytest.raises(lw.LoopworkError.NotSignedIn):
        app.sync()
    assert app.session() is None
    assert not app.sync_status().signed_in


def lw_token_of(directory):
    import json

    with open(directory / "session.json", encoding="utf-8") as f:
        return json.load(f)["token"]


def test_observer_hears_local_edits_and_sync_news(tmp_path):
    tech, _ = device(tmp_path, "tech", "wang")
    heard = Recorder()
    tech.set_observer(heard)
    order_id = dispatch(tmp_path, tech)
    tech.sync()
    assert heard.calls and all(from_sync for _, from_sync in heard.calls)
    assert order_id in heard.calls[0][0]
    order = tech.get_order(order_id).summary
    heard.calls.clear()
    tech.add_note(order.id, "备注")
    assert heard.calls == [([order.id], False)]

    desk, _ = device(tmp_path, "desk2", "kefu")
    desk.sync()
    desk.add_note(order.id, "客服已电话联系业主")
    desk.sync()
    heard.calls.clear()
    tech.sync()
    assert heard.calls == [([order.id], True)]
    tech.set_observer(None)


def test_a_sync_waiting_on_the_network_does_not_block_other_calls(tmp_path):
    net = HttpTransport()
    tech, _ = device(tmp_path, "tech", "wang", net)
    tech.sync()
    order = tech.list_orders(lw.ListFilter(assigned_to_me=True))[0]
    net.delay = 1.5
    syncing = threading.Thread(target=tech.sync)
    syncing.start()
    time.sleep(0.3)
    started = time.monotonic()
    # From other threads, while the sync waits on the network:
    results = []
    workers = [
        threading.Thread(target=lambda: results.append(len(tech.list_orders(lw.ListFilter())))) for _ in range(4)
    ]
    workers.append(threading.Thread(target=lambda: results.append(tech.add_note(order.id, "并发备注"))))
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    assert syncing.is_alive(), "the sync should still be waiting on the network"
    assert elapsed < 1.0, f"local calls waited {elapsed:.2f}s for the network"
    syncing.join()
    net.delay = 0
    assert len(results) == 5
    tech.sync()
    assert tech.sync_status().pending_uploads == 0


def test_sign_out_keeps_or_wipes(tmp_path):
    owner, _ = device(tmp_path, "owner", "yezhu1502")
    owner.sync()
    new_id = owner.create_order(
        lw.NewOrderInput(
            kind=lw.Kind.REPAIR,
            category="doors_windows",
            grade=lw.Grade.MINOR,
            channel=lw.Channel.APP,
            location=lw.Location(project="hy-garden", building="3", unit="3-1502", area=None),
            description="入户门锁芯卡住",
        )
    )
    assert owner.get_order(new_id).summary.number.startswith("临-")
    held = owner.order_count()

    # Sign out keeping data, with a change still unsent: another user may not take the phone.
    owner.sign_out(False)
    assert owner.session() is None
    with pytest.raises(lw.LoopworkError.NotSignedIn):
        owner.sync()
    with pytest.raises(lw.LoopworkError.InvalidInput):
        owner.sign_in(SERVER, "yezhu0801", PASSWORD, "phone")

    # The same owner signs in again: the data and the unsent order are still there and upload.
    owner.sign_in(SERVER, "yezhu1502", PASSWORD, "phone")
    assert owner.order_count() == held
    owner.sync()
    assert owner.sync_status().pending_uploads == 0
    assert not owner.get_order(new_id).summary.number.startswith("临-")

    reopened = lw.Loopwork.open(str(tmp_path / "owner"), HttpTransport())
    assert reopened.session().user_id == owner.session().user_id
    assert reopened.order_count() == held

    owner.sign_out(True)
    assert not (tmp_path / "owner" / "loopwork.db").exists()
    fresh = lw.Loopwork.open(str(tmp_path / "owner"), HttpTransport())
    assert fresh.session() is None
    with pytest.raises(lw.LoopworkError.NotSignedIn):
        fresh.order_count()


def test_the_owner_s_phone_is_masked_until_revealed(tmp_path):
    tech, net = device(tmp_path, "tech", "wang")
    order_id = dispatch(tmp_path, tech)
    masked = tech.contact(order_id)
    assert masked.phone == "138****8005" and not masked.revealed
    assert masked.name.startswith("业") and "*" in masked.name
    full = tech.reveal_contact(order_id)
    assert full.phone == "13800138005" and full.revealed
    other, _ = device(tmp_path, "other", "li")
    with pytest.raises(lw.LoopworkError.NotPermitted):
        other.contact(order_id)
    net.online = False
    with pytest.raises(lw.LoopworkError.Offline):
        tech.contact(order_id)


def api(method, path, token=None, body=None):
    import json

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{SERVER}{path}", data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def test_countdowns_follow_the_organization_s_policies(tmp_path):
    tech, net = device(tmp_path, "tech", "wang")
    order_id = dispatch(tmp_path, tech)
    tech.sync()
    created = tech.get_order(order_id).summary.created_at_ms
    before = tech.countdown(order_id)
    assert before.policy == "serious"
    assert before.response_due_ms - created == 30 * 60_000
    assert before.next_due_ms == before.response_due_ms

    # The administrator answers 较重 orders within 10 minutes from now on.
    admin = api("POST", "/api/v1/login", body={"login": "admin", "password": PASSWORD})["token"]
    book = api("GET", "/api/v1/settings/sla", admin)
    for policy in book["policies"]:
        if policy["name"] == "serious":
            policy["response"]["minutes"] = 10
    api("PUT", "/api/v1/settings/sla", admin, book)

    tech.refresh_settings()
    assert tech.countdown(order_id).response_due_ms - created == 10 * 60_000
    # Kept for offline use: a fresh start without signal computes the same.
    net.online = False
    with pytest.raises(lw.LoopworkError.Offline):
        tech.refresh_settings()
    again = lw.Loopwork.open(str(tmp_path / "tech"), HttpTransport())
    assert again.countdown(order_id).response_due_ms - created == 10 * 60_000


def test_an_incident_is_worked_in_one_step_offline(tmp_path):
    """Five households of one riser report no water: the server answers them as one incident;
    the technician's phone holds the five orders with their incident and works them together,
    offline."""
    kefu = api("POST", "/api/v1/login", body={"login": "kefu", "password": PASSWORD, "device_name": "desk"})["token"]
    ids = []
    for floor in range(1, 6):
        made = api("POST", "/api/v1/orders", kefu, {
            "kind": "repair", "category": "water_electric", "grade": "minor", "channel": "hotline",
            "project": "hy-garden", "building": "8", "unit": f"4-{floor:02}01", "description": "家里没水了",
        })
        ids.append(made["id"])
    number = None
    for _ in range(150):  # the server's scanner reads new orders within a few seconds
        found = [i for i in api("GET", "/api/v1/incidents", kefu) if i["building"] == "8" and i["orders"] == 5]
        if found:
            number = found[0]["number"]
            break
        time.sleep(0.1)
    assert number is not None, "the five reports became one incident"
    tech, _ = device(tmp_path, "tech", "wang")
    api("POST", "/api/v1/orders/bulk-assign", kefu, {"ids": ids, "assignee": tech.session().user_id})
    for _ in range(50):
        tech.sync()
        mine = tech.list_orders(lw.ListFilter(incident=number))
        if len(mine) == 5:
            break
        time.sleep(0.1)
    assert sorted(o.id for o in mine) == sorted(ids)
    assert all(o.incident_number == number for o in mine)
    detail = tech.get_order(ids[0])
    assert detail.incident == lw.IncidentInfo(number=number, place="8栋 4单元01立管", category="water_electric")

    # Offline: each step on all five at once.
    for step in [lw.IncidentStep.ACCEPT, lw.IncidentStep.ARRIVE, lw.IncidentStep.START_WORK, lw.IncidentStep.COMPLETE]:
        report = tech.work_incident(number, step, "立管阀门已更换")
        assert sorted(report.changed) == sorted(ids) and report.skipped == [], step
    again = tech.work_incident(number, lw.IncidentStep.COMPLETE, None)
    assert again.changed == [] and len(again.skipped) == 5
    tech.sync()
    for order in tech.list_orders(lw.ListFilter(incident=number)):
        assert order.status == lw.Status.AWAITING_CONFIRMATION


def png(width, height, seed):
    """A PNG of noise (noise does not compress): no metadata, so the server keeps it byte for byte."""
    import random
    import struct
    import zlib

    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b"")


class Progress(lw.UploadObserver):
    def __init__(self):
        self.calls = []

    def upload_progress(self, sha256, sent, total):
        self.calls.append((sha256, sent, total))


def test_photos_and_the_owner_s_signature_taken_offline_reach_the_server_through_a_dropped_link(tmp_path):
    """Lifts are repaired only with the owner's signature here. The technician photographs the
    fault and has the owner sign on the phone, all offline; the phone restarts; back in signal,
    the link drops in the middle of the photo, and the upload resumes from the byte the server
    holds. The owner's phone then downloads the signature into its cache."""
    admin = api("POST", "/api/v1/login", body={"login": "admin", "password": PASSWORD, "device_name": "console"})["token"]
    rules = {"rules": [{"kind": "repair", "category": "elevator", "require": "signature"}]}
    api("PUT", "/api/v1/settings/signature-rules", admin, rules)
    try:
        tech, net = device(tmp_path, "tech", "wang")
        order_id = dispatch(tmp_path, tech, category="elevator", description="3栋电梯按钮失灵")
        for _ in range(100):  # the server's scanner records the requirement within seconds
            tech.sync()
            if tech.get_order(order_id).signature_required:
                break
            time.sleep(0.2)
        assert tech.get_order(order_id).signature_required

        net.online = False
        tech.accept(order_id)
        tech.arrive(order_id)
        tech.start_work(order_id)
        photo = png(400, 300, 1)
        assert len(photo) > 300_000
        photo_sha = tech.attach_photo(order_id, photo, "image/png", "按钮面板")
        with pytest.raises(lw.LoopworkError.NotPermitted) as refused:
            tech.complete(order_id, None)
        assert refused.value.code == "signature_required"
        with pytest.raises(lw.LoopworkError.InvalidInput):
            tech.complete_signed(order_id, b"not a picture", None)
        signature = png(240, 90, 2)
        signature_sha = tech.complete_signed(order_id, signature, "业主已签字确认")
        assert tech.get_order(order_id).summary.status == lw.Status.AWAITING_CONFIRMATION
        report = tech.upload_attachments()
        assert (report.uploaded, report.pending) == (0, 2)
        kinds = {a.sha256: (a.kind, a.upload) for a in tech.attachments(order_id)}
        assert kinds == {photo_sha: ("photo", lw.UploadStatus.QUEUED()), signature_sha: ("signature", lw.UploadStatus.QUEUED())}

        # The phone restarts: the queue and the bytes are still there.
        del tech
        tech = lw.Loopwork.open(str(tmp_path / "tech"), net)
        progress = Progress()
        tech.set_upload_observer(progress)
        net.online = True
        tech.sync()  # the references first; the bytes follow
        net.cut_next_patch = 100_000
        report = tech.upload_attachments()
        assert (report.uploaded, report.pending, report.failed) == (2, 0, 0)
        assert net.patched == len(photo) + len(signature), "nothing the server held was sent again"
        assert progress.calls[-1] == (signature_sha, len(signature), len(signature))
        assert (photo_sha, 100_000, len(photo)) in progress.calls, "resumed from the byte the server held"
        assert all(a.upload == lw.UploadStatus.UPLOADED() for a in tech.attachments(order_id))

        kefu = api("POST", "/api/v1/login", body={"login": "kefu", "password": PASSWORD, "device_name": "desk"})["token"]
        detail = api("GET", f"/api/v1/orders/{order_id}", kefu)
        assert detail["status"] == "awaiting_confirmation"
        assert sorted((a["kind"], a["uploaded"]) for a in detail["attachments"]) == [("photo", True), ("signature", True)]

        # The owner's phone fetches the signature on demand, into its cache.
        owner, _ = device(tmp_path, "owner", "yezhu1502")
        owner.sync()
        seen = {a.sha256: a for a in owner.attachments(order_id)}
        assert seen[signature_sha].upload == lw.UploadStatus.REMOTE() and seen[signature_sha].local_path is None
        path = owner.attachment_file(order_id, signature_sha, False)
        assert open(path, "rb").read() == signature
        thumb = owner.attachment_file(order_id, signature_sha, True)
        assert open(thumb, "rb").read()[:3] == b"\xff\xd8\xff", "thumbnails are JPEG"
        assert owner.attachments(order_id)[1].local_path == path
        owner.set_cache_budget(1)  # over budget: the least recently used go
        assert not os.path.exists(path) and not os.path.exists(thumb)
        assert open(owner.attachment_file(order_id, signature_sha, False), "rb").read() == signature
        with pytest.raises(lw.LoopworkError.Rejected) as missing:
            owner.attachment_file(order_id, "0" * 64, False)
        assert missing.value.code == "not_found"
    finally:
        api("PUT", "/api/v1/settings/signature-rules", admin, {"rules": []})


def test_fifty_photos_taken_offline_over_days_all_go_up_when_signal_returns(tmp_path):
    """A technician works a week of plant-room jobs without signal: 50 photos wait on the
    phone (the queue survives a restart), then all go up at once, each stored once."""
    tech, net = device(tmp_path, "tech", "wang")
    order_id = dispatch(tmp_path, tech, description="水泵房巡检,逐台拍照")
    tech.sync()
    net.online = False
    tech.accept(order_id)
    tech.arrive(order_id)
    tech.start_work(order_id)
    shas = [tech.attach_photo(order_id, png(24, 24, 1000 + i), "image/png", f"第{i + 1}台") for i in range(50)]
    assert len(set(shas)) == 50
    tech.attach_photo(order_id, png(24, 24, 1000), "image/png", "同一张再拍一次")  # the same bytes: one upload
    assert tech.upload_attachments().pending == 50
    del tech
    tech = lw.Loopwork.open(str(tmp_path / "tech"), net)
    net.online = True
    tech.sync()
    net.patched = 0
    report = tech.upload_attachments()
    assert (report.uploaded, report.pending, report.failed) == (50, 0, 0)
    assert net.patched == sum(len(png(24, 24, 1000 + i)) for i in range(50)), "each photo's bytes sent once"
    assert tech.upload_attachments().uploaded == 0, "nothing is sent twice"
    kefu = api("POST", "/api/v1/login", body={"login": "kefu", "password": PASSWORD, "device_name": "desk"})["token"]
    detail = api("GET", f"/api/v1/orders/{order_id}", kefu)
    assert len(detail["attachments"]) == 51
    assert all(a["uploaded"] for a in detail["attachments"])
    assert {a["sha256"] for a in detail["attachments"]} == set(shas)
