//! `loopwork-sim attachments`: photos through the server (docs/attachments.md).
//!
//! 1. **A flaky link**: one large photo sent at a phone's uplink rate over a connection that drops
//!    every few seconds; the client asks the server what it holds (`HEAD`) and goes on from there.
//!    How long it took, how many drops, and the bytes sent twice.
//! 2. **Many phones at once**: phones each uploading photos at the same time: throughput, each
//!    upload's latency, the server's memory before and after (it must not grow with file size),
//!    and the time to strip and thumbnail each picture (the server's own histogram).
//! 3. **Downloads**: the desk attaches every photo to orders; thumbnails and originals fetched by
//!    several clients at once: latency p50 and p99.
//!
//! The server runs in its own process (a `loopwork` beside this binary, or `--server-binary`),
//! so that its memory is its own; else in this process.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use futures_util::StreamExt;

use loopwork_tests::uploads::{create, tus, upload};

use super::*;

#[derive(Debug, clap::Args)]
pub(crate) struct AttachmentArgs {
    /// The flaky link's photo, in MB.
    #[arg(long, default_value_t = 8.0)]
    big_photo_mb: f64,
    /// The phone's uplink, in kilobits per second.
    #[arg(long, default_value_t = 2_000)]
    link_kbps: u64,
    /// The link drops each request after this many seconds.
    #[arg(long, default_value_t = 20)]
    drop_every: u64,
    /// Phones uploading at once.
    #[arg(long, default_value_t = 10)]
    phones: usize,
    /// Photos each phone uploads.
    #[arg(long, default_value_t = 10)]
    photos_per_phone: usize,
    /// Each photo's size, in MB.
    #[arg(long, default_value_t = 3.0)]
    photo_mb: f64,
    /// Thumbnail downloads per client (as many clients as phones).
    #[arg(long, default_value_t = 100)]
    downloads_per_client: usize,
    #[arg(long)]
    server_binary: Option<std::path::PathBuf>,
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: AttachmentArgs) {
    let binary = args.server_binary.clone().or_else(|| {
        let beside = std::env::current_exe().ok()?.with_file_name("loopwork");
        beside.exists().then_some(beside)
    });
    let database = TestDatabase::new(Backend::Sqlite).await;
    let server = TestServer::start_on(database).await;
    demo::seed(server.state.db.as_ref(), SystemClock.now_ms()).await.expect("demo data");
    let desk = server.device("kefu").await;
    let hash = auth::hash_password(PASSWORD).expect("hash");
    let mut logins = Vec::new();
    for i in 0..args.phones.max(1) {
        let login = format!("photo-{i}");
        new_technician(&server, &desk.session.org, &login, &hash).await;
        logins.push(login);
    }
    // Orders the desk attaches the photos to.
    let orders: Vec<String> = {
        let mut ids = Vec::new();
        for i in 0..args.phones.max(1) {
            let body = serde_json::json!({
                "kind": "repair", "category": "water_electric", "grade": "minor", "channel": "hotline",
                "project": demo::DEMO_PROJECT, "building": "3", "unit": "3-1502",
                "description": format!("第{i}号:卫生间漏水"),
            });
            let (status, answer) = server.call(&desk.session.token, "POST", "/api/v1/orders", Some(body)).await;
            assert_eq!(status, 201, "{answer}");
            ids.push(answer["id"].as_str().expect("id").to_owned());
        }
        ids
    };
    let blob_dir = tempfile::tempdir().expect("blob dir");
    // The database (its files are deleted when it is dropped) and the in-process server, kept
    // to the end.
    let (base, metrics, child, running, _database) = match &binary {
        Some(binary) => {
            let stopped = server.stop().await;
            let metrics_port =
                std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
            let mut command = tokio::process::Command::new(binary);
            command
                .args(["serve", "--no-demo", "--listen", "127.0.0.1:0", "--metrics-listen"])
                .arg(format!("127.0.0.1:{metrics_port}"))
                .arg("--database-url")
                .arg(&stopped.url)
                .arg("--blob-dir")
                .arg(blob_dir.path())
                .env("RUST_LOG", "warn");
            let (base, _, child) = loopwork_tests::tools::serve_binary(command).await;
            (base, format!("http://127.0.0.1:{metrics_port}"), Some(child), None, Some(stopped))
        }
        None => (server.base.clone(), server.metrics_base.clone(), None, Some(server), None),
    };
    let pid = child.as_ref().and_then(|c| c.id());
    let status_file = pid.map(|p| format!("/proc/{p}/status")).unwrap_or_else(|| "/proc/self/status".into());
    let http = reqwest::Client::new();
    let tokens: Vec<String> = {
        let mut tokens = Vec::new();
        for login in &logins {
            tokens.push(login_at(&base, login, PASSWORD).await.token);
        }
        tokens
    };
    let desk_token = login_at(&base, "kefu", demo::DEMO_PASSWORD).await.token;
    let rss_start = memory(&status_file);

    // 1. A flaky link.
    let big = photo((args.big_photo_mb * 1e6) as usize, 1);
    let flaky = flaky_upload(&http, &base, &tokens[0], &big, args.link_kbps, args.drop_every).await;

    // 2. Many phones at once.
    let template = photo((args.photo_mb * 1e6) as usize, 2);
    let rss_before = memory(&status_file);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (phone, token) in tokens.iter().enumerate() {
        let (http, base, token, template) = (http.clone(), base.clone(), token.clone(), template.clone());
        let count = args.photos_per_phone;
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            for n in 0..count {
                let bytes = variant(&template, phone * 10_000 + n);
                let started = Instant::now();
                let sha = upload(&http, &base, &token, &bytes).await;
                done.push((sha, bytes.len(), started.elapsed().as_secs_f64() * 1_000.0));
            }
            done
        }));
    }
    let mut uploaded = Vec::new();
    for task in tasks {
        uploaded.extend(task.await.expect("phone"));
    }
    let burst_seconds = started.elapsed().as_secs_f64();
    let rss_after = memory(&status_file);
    let total_bytes = template.len() as f64 * uploaded.len() as f64;
    let mut upload_ms: Vec<f64> = uploaded.iter().map(|(_, _, ms)| *ms).collect();

    // 3. Downloads: every photo attached to an order by the desk (which attaches only its own
    // uploads: the same bytes, found held at once).
    let mut attached: Vec<(String, String)> = Vec::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    for (i, (sha, length, _)) in uploaded.iter().enumerate() {
        let held = tus(http.post(format!("{base}/api/v1/uploads")), &desk_token)
            .header("upload-length", length.to_string())
            .header("upload-metadata", format!("sha256 {}", b64.encode(sha)))
            .send()
            .await
            .expect("create");
        assert_eq!(held.headers()["upload-offset"].to_str().expect("offset"), length.to_string(), "held at once");
        let order = &orders[i % orders.len()];
        let r = http
            .post(format!("{base}/api/v1/orders/{order}/attachments"))
            .bearer_auth(&desk_token)
            .json(&serde_json::json!({ "sha256": sha }))
            .send()
            .await
            .expect("attach");
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap_or_default());
        attached.push((order.clone(), sha.clone()));
    }
    let attached = Arc::new(attached);
    let fetch = |suffix: &'static str, per_client: usize| {
        let mut tasks = Vec::new();
        for client in 0..args.phones.max(1) {
            let (http, base, token, attached) = (http.clone(), base.clone(), desk_token.clone(), attached.clone());
            tasks.push(tokio::spawn(async move {
                let mut ms = Vec::new();
                for n in 0..per_client {
                    let (order, sha) = &attached[(client * 7919 + n * 104_729) % attached.len()];
                    let started = Instant::now();
                    let r = http
                        .get(format!("{base}/api/v1/orders/{order}/attachments/{sha}{suffix}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("download");
                    assert_eq!(r.status().as_u16(), 200);
                    let _ = r.bytes().await.expect("body");
                    ms.push(started.elapsed().as_secs_f64() * 1_000.0);
                }
                ms
            }));
        }
        tasks
    };
    let mut thumbnail_ms = Vec::new();
    for task in fetch("/thumbnail", args.downloads_per_client) {
        thumbnail_ms.extend(task.await.expect("client"));
    }
    let mut original_ms = Vec::new();
    for task in fetch("", (args.downloads_per_client / 10).max(1)) {
        original_ms.extend(task.await.expect("client"));
    }
    let text = http.get(format!("{metrics}/metrics")).send().await.expect("metrics").text().await.expect("text");
    let scraped = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok())).unwrap_or(f64::NAN)
    };
    let picture_mean_ms =
        scraped("loopwork_picture_seconds_sum ") / scraped("loopwork_picture_seconds_count ") * 1_000.0;
    let report = serde_json::json!({
        "server_process": child.is_some(),
        "flaky_link": flaky,
        "burst": {
            "phones": args.phones, "photos": uploaded.len(), "photo_mb": round(template.len() as f64 / 1e6),
            "seconds": round(burst_seconds), "mb_per_second": round(total_bytes / 1e6 / burst_seconds),
            "upload_ms_p50": round(percentile(&mut upload_ms, 0.5)), "upload_ms_p99": round(percentile(&mut upload_ms, 0.99)),
            "picture_ms_mean": round(picture_mean_ms),
        },
        "server_memory_mb": {
            "rss_at_start": rss_start.0, "rss_before_burst": rss_before.0, "rss_after_burst": rss_after.0,
            "peak": rss_after.1,
        },
        "downloads": {
            "thumbnails": thumbnail_ms.len(), "thumbnail_ms_p50": round(percentile(&mut thumbnail_ms, 0.5)),
            "thumbnail_ms_p99": round(percentile(&mut thumbnail_ms, 0.99)),
            "originals": original_ms.len(), "original_ms_p50": round(percentile(&mut original_ms, 0.5)),
            "original_ms_p99": round(percentile(&mut original_ms, 0.99)),
        },
    });
    if args.json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    }
    if let Some(mut child) = child {
        let _ = child.kill().await;
    }
    drop(running);
}

/// (VmRSS, VmHWM) of a process, in MB.
fn memory(status_file: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(status_file).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| round(kb / 1024.0))
            .unwrap_or(f64::NAN)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() as f64 * p).ceil() as usize).clamp(1, values.len()) - 1]
}

/// A camera-like JPEG of about `bytes` bytes (noise, which compresses little).
fn photo(bytes: usize, seed: u64) -> Vec<u8> {
    // At quality 90, noise takes about 1.6 bytes a pixel.
    let pixels = (bytes as f64 / 1.6) as u32;
    let width = ((pixels as f64 * 4.0 / 3.0).sqrt() as u32).max(16);
    let height = (pixels / width).max(16);
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let picture = image::RgbImage::from_fn(width, height, |_, _| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let [r, g, b, ..] = (state >> 24).to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&picture).expect("jpeg");
    out
}

/// The photo made distinct (a comment after the start of image, which the server strips).
fn variant(template: &[u8], n: usize) -> Vec<u8> {
    let text = format!("photo {n}");
    let mut out = Vec::with_capacity(template.len() + text.len() + 4);
    out.extend_from_slice(&template[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((text.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&template[2..]);
    out
}

/// Sends `bytes` at `kbps` over requests cut after `drop_every` seconds, resuming from what the
/// server holds each time.
async fn flaky_upload(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    bytes: &[u8],
    kbps: u64,
    drop_every: u64,
) -> serde_json::Value {
    let (_, location) = create(http, base, token, bytes).await;
    let url = format!("{base}{location}");
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let (mut drops, mut requests) = (0, 0);
    let bytes = Arc::new(bytes.to_vec());
    loop {
        let held = tus(http.head(&url), token).send().await.expect("head");
        let offset: usize = held.headers()["upload-offset"].to_str().expect("offset").parse().expect("a number");
        if std::env::var_os("SIM_TRACE").is_some() {
            eprintln!("offset {offset} sent {}", sent.load(Ordering::Relaxed));
        }
        if offset == bytes.len() {
            break;
        }
        requests += 1;
        // The body at the link's rate, 16 KiB at a time.
        const PIECE: usize = 16 << 10;
        let per_piece = std::time::Duration::from_secs_f64(PIECE as f64 * 8.0 / (kbps as f64 * 1_000.0));
        let (body_bytes, counter) = (bytes.clone(), sent.clone());
        let pieces = futures_util::stream::iter((offset..body_bytes.len()).step_by(PIECE)).then(move |at| {
            let (body_bytes, counter) = (body_bytes.clone(), counter.clone());
            async move {
                tokio::time::sleep(per_piece).await;
                let end = (at + PIECE).min(body_bytes.len());
                counter.fetch_add((end - at) as u64, Ordering::Relaxed);
                Ok::<_, std::io::Error>(body_bytes[at..end].to_vec())
            }
        });
        let request = tus(http.patch(&url), token)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(reqwest::Body::wrap_stream(pieces))
            .send();
        match tokio::time::timeout(std::time::Duration::from_secs(drop_every), request).await {
            Ok(Ok(r)) => assert!(r.status().is_success() || r.status().as_u16() == 409, "{}", r.status()),
            Ok(Err(_)) | Err(_) => drops += 1,
        }
    }
    let sent = sent.load(Ordering::Relaxed) as f64;
    serde_json::json!({
        "photo_mb": round(bytes.len() as f64 / 1e6), "link_kbps": kbps, "drop_every_seconds": drop_every,
        "seconds": round(started.elapsed().as_secs_f64()), "requests": requests, "drops": drops,
        "bytes_sent_mb": round(sent / 1e6), "sent_twice_fraction": round((sent - bytes.len() as f64) / bytes.len() as f64),
    })
}
