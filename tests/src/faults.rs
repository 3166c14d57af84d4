//! A fault-injecting TCP proxy between devices and a server: each connection it accepts gets one
//! fault drawn from a seeded generator (or none): requests or responses cut at a random byte,
//! a delay, a reset (RST), or the connection's first request replayed to the server on a
//! connection of its own, whose answer nobody reads. Used by `tests/network_faults.rs`; its
//! counts say what it did.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy did to one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Passed through untouched.
    None,
    /// Each answer held back before its first byte.
    Delay(Duration),
    /// The device's bytes cut after this many: the connection closes.
    CutRequest(usize),
    /// The server's bytes cut after this many (the request was whole: the server acted).
    CutResponse(usize),
    /// Reset (RST, no FIN) after this many bytes of the answer.
    Reset(usize),
    /// The connection's first request sent to the server twice.
    Duplicate,
}

/// How many connections got each fault.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub connections: AtomicU64,
    pub delayed: AtomicU64,
    pub requests_cut: AtomicU64,
    pub responses_cut: AtomicU64,
    pub resets: AtomicU64,
    pub duplicated: AtomicU64,
}

impl FaultCounts {
    /// The counts as JSON, for a campaign's report.
    pub fn json(&self) -> serde_json::Value {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "connections": n(&self.connections),
            "delayed": n(&self.delayed),
            "requests_cut": n(&self.requests_cut),
            "responses_cut": n(&self.responses_cut),
            "resets": n(&self.resets),
            "duplicated": n(&self.duplicated),
        })
    }

    /// Faults injected (connections that were not passed through untouched).
    pub fn faults(&self) -> u64 {
        [&self.delayed, &self.requests_cut, &self.responses_cut, &self.resets, &self.duplicated]
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }
}

/// A small deterministic generator (xorshift), so that a campaign is repeated by its seed.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }

    /// The fault for a connection: about half pass untouched.
    pub fn fault(&mut self) -> Fault {
        match self.next(100) {
            0..45 => Fault::None,
            45..55 => Fault::Delay(Duration::from_millis(50 + self.next(550))),
            55..70 => Fault::CutRequest(self.next(1_500) as usize),
            70..85 => Fault::CutResponse(self.next(3_000) as usize),
            85..90 => Fault::Reset(self.next(3_000) as usize),
            _ => Fault::Duplicate,
        }
    }
}

/// The proxy: listening on `addr`, forwarding to the server it was started for.
#[derive(Debug)]
pub struct FaultProxy {
    pub addr: SocketAddr,
    pub counts: Arc<FaultCounts>,
    /// When false, every connection passes untouched (a device reaching signal again).
    pub faulty: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port` or `host:port`) with faults drawn from
    /// `seed`.
    pub async fn start(upstream: &str, seed: u64) -> FaultProxy {
        let upstream: SocketAddr =
            upstream.trim_start_matches("http://").trim_end_matches('/').parse().expect("upstream address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let counts = Arc::new(FaultCounts::default());
        let faulty = Arc::new(AtomicBool::new(true));
        let (c, f) = (counts.clone(), faulty.clone());
        let task = tokio::spawn(async move {
            let mut rng = Rng(seed | 1);
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let fault = if f.load(Ordering::Relaxed) { rng.fault() } else { Fault::None };
                c.connections.fetch_add(1, Ordering::Relaxed);
                let counter = match fault {
                    Fault::None => None,
                    Fault::Delay(_) => Some(&c.delayed),
                    Fault::CutRequest(_) => Some(&c.requests_cut),
                    Fault::CutResponse(_) => Some(&c.responses_cut),
                    Fault::Reset(_) => Some(&c.resets),
                    Fault::Duplicate => Some(&c.duplicated),
                };
                if let Some(counter) = counter {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                tokio::spawn(relay(client, upstream, fault));
            }
        });
        FaultProxy { addr, counts, faulty, task }
    }

    /// The proxy's base URL, for a device.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// One connection through the proxy, with its fault.
async fn relay(client: TcpStream, upstream: SocketAddr, fault: Fault) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    if matches!(fault, Fault::Reset(_)) {
        // Closing with a zero linger sends RST instead of FIN (and does not block: the
        // deprecation is about non-zero lingers).
        #[allow(deprecated)]
        let _ = client.set_linger(Some(Duration::ZERO));
    }
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut from_device, mut to_device) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let answered = Arc::new(AtomicBool::new(false));
    let first_request = Arc::new(tokio::sync::Mutex::new(Vec::new()));

    let upward = {
        let (answered, first_request) = (answered.clone(), first_request.clone());
        async move {
            let limit = match fault {
                Fault::CutRequest(n) => n,
                _ => usize::MAX,
            };
            let (mut sent, mut buf) = (0usize, vec![0u8; 16 * 1024]);
            loop {
                let n = match from_device.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let take = n.min(limit - sent);
                if fault == Fault::Duplicate && !answered.load(Ordering::Relaxed) {
                    first_request.lock().await.extend_from_slice(&buf[..take]);
                }
                if to_server.write_all(&buf[..take]).await.is_err() {
                    return;
                }
                sent += take;
                if sent >= limit {
                    return;
                }
            }
        }
    };
    let downward = async move {
        let first_request = first_request;
        let limit = match fault {
            Fault::CutResponse(n) | Fault::Reset(n) => n,
            _ => usize::MAX,
        };
        let (mut sent, mut buf) = (0usize, vec![0u8; 16 * 1024]);
        loop {
            let n = match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if !answered.swap(true, Ordering::Relaxed) {
                match fault {
                    Fault::Delay(wait) => tokio::time::sleep(wait).await,
                    // The server answers a whole request: send the same bytes again, now.
                    Fault::Duplicate => {
                        let request = std::mem::take(&mut *first_request.lock().await);
                        tokio::spawn(replay(upstream, request));
                    }
                    _ => {}
                }
            }
            let take = n.min(limit - sent);
            if to_device.write_all(&buf[..take]).await.is_err() {
                return;
            }
            sent += take;
            if sent >= limit {
                return;
            }
        }
    };
    // Whichever side ends (or is cut) ends the connection: both sockets are dropped.
    tokio::select! {
        _ = upward => {}
        _ = downward => {}
    }
}

/// Sends a captured request to the server again and reads (and drops) whatever it answers.
async fn replay(upstream: SocketAddr, request: Vec<u8>) {
    if request.is_empty() {
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    if server.write_all(&request).await.is_err() {
        return;
    }
    let mut sink = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while let Ok(n) = server.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
