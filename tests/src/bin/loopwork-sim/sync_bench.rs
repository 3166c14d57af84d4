//! `loopwork-sim bench`: what one technician's phone pays to sync, and the load phase of many
//! phones against one server.

use super::*;

pub(crate) async fn bench(args: BenchArgs) {
    let BenchArgs {
        orders,
        devices,
        stored_orders,
        requests_per_device,
        rate_per_device,
        database_url,
        server_binary,
        in_process,
        full_phones,
        json,
    } = args;
    let server_binary = if in_process {
        None
    } else {
        server_binary.or_else(|| {
            let beside = std::env::current_exe().ok()?.with_file_name("loopwork");
            beside.exists().then_some(beside)
        })
    };
    // A fresh database on the named PostgreSQL server, or a fresh SQLite file.
    let database = match &database_url {
        Some(url) if url.starts_with("postgres") => TestDatabase::postgres_on(url).await,
        _ => TestDatabase::new(Backend::Sqlite).await,
    };
    let server = TestServer::start_on(database).await;
    let now = SystemClock.now_ms();
    demo::seed(server.state.db.as_ref(), now).await.expect("demo data");
    let mut desk = server.device("kefu").await;
    let desk_principal = desk.session.principal();
    let hash = auth::hash_password(PASSWORD).expect("hash");

    // One technician with `orders` orders.
    let tech = new_technician(&server, &desk.session.org, "sim-tech", &hash).await;
    let seed_started = Instant::now();
    seed_orders(&server, &desk_principal, desk.identity(), &[tech], orders).await;
    let seed_seconds = seed_started.elapsed().as_secs_f64();

    let mut phone = server.device_with_password("sim-tech", PASSWORD).await;
    let started = Instant::now();
    phone.sync().await.expect("initial sync");
    let initial_sync_seconds = started.elapsed().as_secs_f64();
    let initial = phone.traffic;
    let held = phone.replica.order_count().expect("count");
    assert_eq!(held, orders, "the phone holds every assigned order");
    let ids = phone.replica.list(&OrderQuery { limit: usize::MAX, ..Default::default() }).expect("list");
    let saved_docs_bytes: usize = ids.iter().map(|s| phone.replica.order(s.id).expect("order").save().len()).sum();

    let before = phone.traffic;
    phone.sync().await.expect("idle sync");
    let idle = phone.traffic.since(before);

    phone.online = false;
    phone.replica.add_note(ids[ids.len() / 2].id, "已更换水龙头阀芯,试水正常").expect("note");
    phone.online = true;
    let before = phone.traffic;
    phone.sync().await.expect("edit sync");
    let edit = phone.traffic.since(before);
    let _ = desk.sync().await;

    let mut report = serde_json::json!({
        "backend": server.state.db.backend(),
        "orders": orders,
        "seed_seconds": round(seed_seconds),
        "initial_sync_seconds": round(initial_sync_seconds),
        "initial_sync_round_trips": initial.round_trips,
        "initial_sync_bytes": initial.bytes(),
        "saved_docs_bytes": saved_docs_bytes,
        "initial_sync_documents_bytes": initial.items_received,
        "initial_sync_bytes_per_saved_byte": round(initial.bytes() as f64 / saved_docs_bytes.max(1) as f64),
        "idle_sync_round_trips": idle.round_trips,
        "idle_sync_bytes": idle.bytes(),
        "one_edit_round_trips": edit.round_trips,
        "one_edit_bytes": edit.bytes(),
    });

    let mut database = None;
    let mut server = Some(server);
    if devices > 0 {
        let shape = LoadShape { devices, stored_orders, requests_per_device, rate_per_device, full_phones };
        let running = server.as_ref().expect("server");
        let seed_started = Instant::now();
        let mut technicians = Vec::new();
        for i in 0..devices {
            technicians.push(new_technician(running, &desk_principal.org, &format!("load-{i}"), &hash).await);
        }
        seed_orders(running, &desk_principal, desk.identity(), &technicians, stored_orders).await;
        // The scanner's first look at every seeded order is part of seeding, not of the load.
        crate::scan_bench::drain_scans(running, SystemClock.now_ms()).await;
        let seed_seconds = seed_started.elapsed().as_secs_f64();
        let (base, child) = match &server_binary {
            Some(binary) => {
                let stopped = server.take().expect("server").stop().await;
                let (base, child) = spawn_server(binary, &stopped.url).await;
                database = Some(stopped);
                (base, Some(child))
            }
            None => (running.base.clone(), None),
        };
        let mut load = load_phase(&base, shape, child.as_ref().and_then(|c| c.id())).await;
        load.insert("load_seed_seconds".into(), round(seed_seconds).into());
        load.insert("server_process".into(), child.is_some().into());
        let rss = match &child {
            Some(child) => rss_mb(&format!("/proc/{}/status", child.id().unwrap_or(0))),
            None => rss_mb("/proc/self/status"),
        };
        load.insert(if child.is_some() { "server_rss_mb" } else { "process_rss_mb" }.into(), round(rss).into());
        if let Some(mut child) = child {
            let _ = child.kill().await;
        }
        report.as_object_mut().expect("object").extend(load);
    }
    if json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    }
    let database = match server {
        Some(server) => server.stop().await,
        None => database.expect("database"),
    };
    database.drop_database().await;
}

/// What the load phase offers.
#[derive(Clone, Copy, Debug)]
struct LoadShape {
    devices: usize,
    stored_orders: usize,
    requests_per_device: usize,
    rate_per_device: f64,
    full_phones: bool,
}

/// Which of its orders a load-phase phone notes at its request `r`: five notes to an order, then
/// the next one; phones move on at different requests, as people do, not all in the same fifth
/// of a second.
fn note_target(r: usize, phone: usize, orders: usize) -> usize {
    ((r + phone) / 5) % orders
}

async fn load_phase(
    base: &str,
    shape: LoadShape,
    server_pid: Option<u32>,
) -> serde_json::Map<String, serde_json::Value> {
    let LoadShape { devices, stored_orders, requests_per_device, rate_per_device, full_phones } = shape;
    // Every phone signs in, syncs, and opens its orders (what an app does at launch) before the
    // clock starts: the load generator's own set-up must not run inside the measured window.
    // A lean phone also makes its notes then: the edits are its own CPU work, which on real
    // phones is not the server's machine's; here it would take a fifth of the two cores the
    // server is measured on. Each request still carries the note made for it, in order.
    let mut phones = Vec::new();
    for i in 0..devices {
        let mut phone = Device::new(base, login_at(base, &format!("load-{i}"), PASSWORD).await);
        phone.sync().await.expect("initial sync");
        let mine = phone.replica.list(&OrderQuery::assigned_to(phone.session.user, 50)).expect("list");
        // A lean phone: the documents it edits and its cursor; nobody else writes them here.
        let mut docs: Vec<_> = mine.iter().map(|s| phone.replica.order(s.id).expect("order")).collect();
        let cursor = phone.replica.store().cursor().expect("cursor");
        let me = phone.identity();
        let notes: Vec<Vec<loopwork_sync_core::protocol::OrderBytes>> = if full_phones {
            Vec::new()
        } else {
            (0..requests_per_device)
                .map(|r| {
                    let at = note_target(r, i, mine.len());
                    let doc = &mut docs[at];
                    let before = doc.heads();
                    doc.add_note(&me, &format!("巡检记录 {r}"), SystemClock.now_ms()).expect("note");
                    doc.changes_since(&before)
                        .into_iter()
                        .map(|(_, bytes)| loopwork_sync_core::protocol::OrderBytes { order: mine[at].id, bytes })
                        .collect()
                })
                .collect()
        };
        phones.push((phone, mine, notes, cursor));
    }
    // Then each syncs once more, as an app coming to the foreground does. Without it, every
    // phone's first request after the seconds of set-up was slow at once (on PostgreSQL p50
    // 115 ms over the first 200 ms of the load); why was not found.
    for (phone, ..) in &mut phones {
        phone.sync().await.expect("sync before the clock");
    }
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let cpu_before = CpuTimes::read(server_pid);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let interval = if rate_per_device > 0.0 {
        std::time::Duration::from_secs_f64(1.0 / rate_per_device)
    } else {
        std::time::Duration::ZERO
    };
    let start = tokio::time::Instant::now();
    for (n, (mut phone, mine, notes, mut cursor)) in phones.into_iter().enumerate() {
        let latencies = Arc::clone(&latencies);
        // Phones start spread over one interval, as real ones would be.
        let first = start + interval.mul_f64(n as f64 / devices as f64);
        tasks.push(tokio::spawn(async move {
            let mut notes = notes.into_iter();
            for r in 0..requests_per_device {
                tokio::time::sleep_until(first + interval * r as u32).await;
                let request = if full_phones {
                    let at = note_target(r, n, mine.len());
                    phone.replica.add_note(mine[at].id, &format!("巡检记录 {r}")).expect("note");
                    phone.replica.sync_request().expect("request")
                } else {
                    loopwork_sync_core::protocol::SyncRequest {
                        cursor: cursor.clone(),
                        limit: 500,
                        changes: notes.next().expect("a note for every request"),
                        relayed: Vec::new(),
                        reconcile: Vec::new(),
                        receipts: Vec::new(),
                    }
                };
                let sent = Instant::now();
                let bytes = phone.post(request.encode()).await.expect("sync");
                latencies
                    .lock()
                    .expect("lock")
                    .push((sent.elapsed().as_secs_f64() * 1000.0, (sent - started).as_secs_f64()));
                let response =
                    loopwork_sync_core::protocol::SyncResponse::decode(&bytes, &Default::default()).expect("decode");
                assert_eq!(response.acked.len(), request.changes.len(), "every pushed change is acknowledged");
                if full_phones {
                    phone.replica.apply_sync_response(&response).expect("apply");
                } else {
                    cursor = Some(response.cursor.clone());
                }
            }
            phone
        }));
    }
    for task in tasks {
        let _ = task.await.expect("phone");
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = CpuTimes::read(server_pid).since(&cpu_before);
    let timed = latencies.lock().expect("lock").clone();
    if let Ok(path) = std::env::var("LOOPWORK_SIM_LATENCY_LOG") {
        // Each request's start (seconds into the load) and latency, to see when slow ones happen.
        let lines: String = timed.iter().map(|(ms, at)| format!("{at:.4} {ms:.3}\n")).collect();
        std::fs::write(&path, lines).expect("write the latency log");
    }
    // The same tail without the first second after the server started (its caches warming).
    let mut warm: Vec<f64> = timed.iter().filter(|(_, at)| *at >= 1.0).map(|(ms, _)| *ms).collect();
    warm.sort_by(f64::total_cmp);
    let warm_p99 = warm.get(((warm.len().max(1) - 1) as f64 * 0.99).round() as usize).copied().unwrap_or(0.0);
    let mut latencies: Vec<f64> = timed.into_iter().map(|(ms, _)| ms).collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let mut out = serde_json::Map::new();
    out.insert("devices".into(), devices.into());
    out.insert("load_phones".into(), if full_phones { "full" } else { "lean" }.into());
    out.insert("stored_orders".into(), (stored_orders + 4).into());
    out.insert("load_requests".into(), latencies.len().into());
    out.insert("load_offered_per_second".into(), round(devices as f64 * rate_per_device).into());
    out.insert("load_requests_per_second".into(), round(latencies.len() as f64 / seconds).into());
    out.insert("load_latency_ms_p50".into(), round(pick(0.5)).into());
    out.insert("load_latency_ms_p99".into(), round(pick(0.99)).into());
    out.insert("load_latency_ms_p99_after_first_second".into(), round(warm_p99).into());
    // Where the cores went during the load: CPU milliseconds per request.
    let per_request = |seconds: f64| round(seconds * 1000.0 / latencies.len().max(1) as f64);
    out.insert("cpu_ms_per_request_server".into(), per_request(cpu.server).into());
    out.insert("cpu_ms_per_request_phones".into(), per_request(cpu.this_process).into());
    out.insert("cpu_ms_per_request_other".into(), per_request(cpu.machine - cpu.server - cpu.this_process).into());
    out.insert("cpu_idle_share".into(), round(cpu.idle / (cpu.machine + cpu.idle).max(f64::EPSILON)).into());
    out.insert("disk_kb_written_per_request".into(), round(cpu.disk_kb / latencies.len().max(1) as f64).into());
    out
}

/// CPU seconds used so far: by the server process, by this process, and by the whole machine
/// (busy and idle), from `/proc` (zero where it cannot be read).
#[derive(Clone, Copy, Debug, Default)]
struct CpuTimes {
    server: f64,
    this_process: f64,
    machine: f64,
    idle: f64,
    /// Kilobytes the machine's disks were given to write (the server's and the database's
    /// writes, whichever process makes them).
    disk_kb: f64,
}

impl CpuTimes {
    const TICKS_PER_SECOND: f64 = 100.0;

    fn read(server_pid: Option<u32>) -> CpuTimes {
        let process = |path: &str| -> f64 {
            let stat = std::fs::read_to_string(path).unwrap_or_default();
            // The fields after the command name (which may hold spaces) start after the last ')'.
            let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
            let fields: Vec<f64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect();
            // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
            (fields.get(11).copied().unwrap_or(0.0) + fields.get(12).copied().unwrap_or(0.0)) / Self::TICKS_PER_SECOND
        };
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<f64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        // user nice system idle iowait irq softirq steal
        let idle = cpu.get(3).copied().unwrap_or(0.0) + cpu.get(4).copied().unwrap_or(0.0);
        let busy: f64 = cpu.iter().take(8).sum::<f64>() - idle;
        CpuTimes {
            server: server_pid.map(|pid| process(&format!("/proc/{pid}/stat"))).unwrap_or(0.0),
            this_process: process("/proc/self/stat"),
            machine: busy / Self::TICKS_PER_SECOND,
            idle: idle / Self::TICKS_PER_SECOND,
            disk_kb: Self::disk_sectors_written() / 2.0,
        }
    }

    /// 512-byte sectors written to the machine's block devices (not loop or RAM disks).
    fn disk_sectors_written() -> f64 {
        let Ok(devices) = std::fs::read_dir("/sys/block") else { return 0.0 };
        devices
            .flatten()
            .filter(|d| !["loop", "ram", "zram"].iter().any(|p| d.file_name().to_string_lossy().starts_with(p)))
            .filter_map(|d| std::fs::read_to_string(d.path().join("stat")).ok())
            .filter_map(|stat| stat.split_whitespace().nth(6).and_then(|f| f.parse::<f64>().ok()))
            .sum()
    }

    fn since(&self, before: &CpuTimes) -> CpuTimes {
        CpuTimes {
            server: self.server - before.server,
            this_process: self.this_process - before.this_process,
            machine: self.machine - before.machine,
            idle: self.idle - before.idle,
            disk_kb: self.disk_kb - before.disk_kb,
        }
    }
}

fn rss_mb(status_file: &str) -> f64 {
    let status = std::fs::read_to_string(status_file).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}
