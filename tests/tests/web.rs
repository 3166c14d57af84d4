//! The web pages in a real headless Chromium (Debian's, driven by npm `playwright-core`), against
//! a real server: `tests/web/flow.mjs` registers a complaint on the desk and assigns it; a
//! technician's phone (a sync-core replica here) completes it offline and syncs; the desk shows
//! it without a reload; the owner confirms and rates on the H5 page at 375 px; the dashboard
//! counts it; the owner signs in with a code sent by text message; an administrator makes and disables an account and changes settings in the admin
//! console; and no page scrolls sideways at 375 or 1440 px. Failures leave screenshots in
//! `target/web-screenshots`.

use std::process::Stdio;

use loopwork_sync_core::{Action, OrderId};
use loopwork_tests::tools::{target_dir, tool, workspace};
use std::sync::Arc;

use loopwork_tests::{Backend, OffsetClock, SmsGateway, TestServer};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A 120×90 PNG of the work (grey, a darker band across it).
fn work_photo() -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(120, 90, |_, y| {
        if (40..50).contains(&y) { image::Rgb([60, 60, 60]) } else { image::Rgb([170, 175, 180]) }
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(pixels)
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("png");
    bytes
}

/// The owner's signature as the technician's phone captures it: a 240×90 PNG, a dark stroke on white.
fn signature_picture() -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(240, 90, |x, y| {
        let stroke = (y as i64 - 45 - ((x as f64 / 20.0).sin() * 20.0) as i64).abs() < 3;
        if stroke { image::Rgb([20, 20, 60]) } else { image::Rgb([255, 255, 255]) }
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(pixels)
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("png");
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_and_the_owners_page_in_chromium() {
    // Deadlines pass when the flow asks (ADVANCE_CLOCK): the desk's alerts are seen arriving.
    let clock = std::sync::Arc::new(OffsetClock::default());
    // Owners sign in with a code: the server texts it through this gateway.
    let gateway = SmsGateway::start().await;
    let provider = gateway.provider();
    let server =
        TestServer::start_configured(Backend::Sqlite, clock.clone(), |state| state.sms = Arc::new(provider)).await;
    let mut wang = server.device("wang").await;
    let node = tool("LOOPWORK_NODE", &[], "node");
    let chromium = tool("CHROMIUM", &[], "chromium");
    let playwright =
        tool("PLAYWRIGHT_CORE", &[target_dir().join("test-tools/node_modules/playwright-core")], "playwright-core");
    let fixture = json!({
        "password": loopwork_server::demo::DEMO_PASSWORD,
        "dispatcher": "kefu",
        "admin": "admin",
        "owner": "yezhu1502",
        "owner_phone": "13800138005",
        "technician_name": "王师傅",
        "technician_id": wang.session.user.to_string(),
        "project": "hy-garden",
        "building": "3",
        "unit": "3-1502",
    });
    let mut flow = tokio::process::Command::new(node)
        .arg(workspace().join("tests/web/flow.mjs"))
        .env("LOOPWORK_URL", &server.base)
        .env("CHROMIUM", chromium)
        .env("PLAYWRIGHT_CORE", playwright)
        .env("FIXTURE", fixture.to_string())
        .env("SCREENSHOTS", target_dir().join("web-screenshots"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut stdin = flow.stdin.take().expect("stdin");
    let mut lines = BufReader::new(flow.stdout.take().expect("stdout")).lines();
    let mut transcript = Vec::new();
    let mut finished = false;
    while let Some(line) = lines.next_line().await.expect("read the flow's output") {
        println!("{line}");
        transcript.push(line.clone());
        if let Some(minutes) = line.strip_prefix("ADVANCE_CLOCK ") {
            clock.advance_minutes(minutes.trim().parse().expect("minutes"));
            // The scan the scanner makes at its next tick (within a minute), made now.
            loopwork_server::escalation::tick(&server.state, loopwork_sync_core::Clock::now_ms(clock.as_ref()))
                .await
                .expect("scan");
            stdin.write_all(b"ADVANCED\n").await.expect("tell the flow");
            stdin.flush().await.expect("flush");
        }
        if let Some(phone) = line.strip_prefix("WANT_CODE ") {
            let mut code = None;
            for _ in 0..50 {
                code = gateway.last_code(phone.trim());
                if code.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            let code = code.expect("the gateway got a code");
            stdin.write_all(format!("CODE {code}\n").as_bytes()).await.expect("tell the flow");
            stdin.flush().await.expect("flush");
        }
        if let Some(id) = line.strip_prefix("WAIT_TECH ") {
            // The technician's phone: receives the order, works it without signal, syncs later.
            let id: OrderId = id.trim().parse().expect("order id");
            wang.synced().await;
            wang.online = false;
            for action in [Action::Accept, Action::Arrive, Action::Start] {
                wang.replica.transition(id, action, None).expect("work offline");
            }
            // A photo of the work, taken offline; its bytes go up once there is signal.
            let photo = work_photo();
            let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&photo));
            wang.replica.attach(id, &hash, "image/png").expect("photo offline");
            // The owner signs on the phone to confirm the work was done (业主签字确认).
            let signed = signature_picture();
            let signature = loopwork_sync_core::NewAttachment {
                kind: loopwork_sync_core::AttachmentKind::Signature,
                ..loopwork_sync_core::NewAttachment::of(
                    &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&signed)),
                    "image/png",
                )
            };
            wang.replica.complete_signed(id, &signature, None).expect("work offline");
            wang.replica.add_note(id, "更换了渗水的上水管接头").expect("note");
            wang.online = true;
            wang.synced().await;
            let http = reqwest::Client::new();
            loopwork_tests::uploads::upload(&http, &server.base, &wang.session.token, &photo).await;
            loopwork_tests::uploads::upload(&http, &server.base, &wang.session.token, &signed).await;
            stdin.write_all(b"DONE\n").await.expect("tell the flow");
            stdin.flush().await.expect("flush");
        }
        finished |= line == "OK";
    }
    let status = flow.wait().await.expect("node exit");
    assert!(
        status.success() && finished,
        "the browser flow failed ({status}); screenshots in {}:\n{}",
        target_dir().join("web-screenshots").display(),
        transcript.join("\n")
    );
    server.stop().await;
}
