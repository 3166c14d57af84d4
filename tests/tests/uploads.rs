//! Attachments' bytes through resumable uploads (tus 1.0; docs/attachments.md), on SQLite and
//! PostgreSQL with the blob store on the filesystem: an upload cut off mid-way resumes at the
//! byte the server holds; the same photo is stored once; bad uploads are refused with their
//! documented codes and lose nothing else; nobody else reaches an upload.

use base64::Engine;
use loopwork_tests::{Backend, TestServer, error_code, on_both_backends};
use reqwest::header::HeaderMap;
use sha2::{Digest, Sha256};

on_both_backends!(
    an_interrupted_upload_resumes_at_the_byte_the_server_holds_and_the_same_photo_is_stored_once,
    bad_uploads_are_refused_with_their_documented_codes,
    another_organization_neither_reaches_an_upload_nor_shares_a_blob,
);

/// A PNG's first bytes, then `len` bytes of a pattern: what the server sniffs as a PNG photo.
fn photo(len: usize, seed: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bytes.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    bytes
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn metadata(pairs: &[(&str, &str)]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    pairs.iter().map(|(k, v)| format!("{k} {}", b64.encode(v))).collect::<Vec<_>>().join(",")
}

struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    async fn new(server: &TestServer, login: &str) -> Client {
        Client { base: server.base.clone(), token: server.login(login).await.token, http: reqwest::Client::new() }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("tus-resumable", "1.0.0")
    }

    /// Starts an upload: (status, headers, body).
    async fn create(&self, length: usize, meta: &str) -> (u16, HeaderMap, serde_json::Value) {
        let response = self
            .request(reqwest::Method::POST, "/api/v1/uploads")
            .header("upload-length", length.to_string())
            .header("upload-metadata", meta)
            .send()
            .await
            .expect("create");
        answer(response).await
    }

    async fn patch(&self, location: &str, offset: usize, bytes: Vec<u8>) -> (u16, HeaderMap, serde_json::Value) {
        let response = self
            .request(reqwest::Method::PATCH, location)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(bytes)
            .send()
            .await
            .expect("patch");
        answer(response).await
    }

    async fn head(&self, location: &str) -> (u16, HeaderMap) {
        let response = self.request(reqwest::Method::HEAD, location).send().await.expect("head");
        (response.status().as_u16(), response.headers().clone())
    }
}

async fn answer(response: reqwest::Response) -> (u16, HeaderMap, serde_json::Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    (status, headers, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// The files under the blob store's `blobs/` (every organization's).
fn stored_blobs(server: &TestServer) -> Vec<std::path::PathBuf> {
    walk(&server.blob_dir.path().join("blobs"))
}

async fn an_interrupted_upload_resumes_at_the_byte_the_server_holds_and_the_same_photo_is_stored_once(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let wang = Client::new(&server, "wang").await;
    let bytes = photo(1_000_000, 7);
    let hash = sha256(&bytes);
    let (status, headers, body) = wang.create(bytes.len(), &metadata(&[("sha256", &hash), ("kind", "photo")])).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((header(&headers, "upload-offset"), header(&headers, "tus-resumable")), ("0".into(), "1.0.0".into()));
    let location = header(&headers, "location");
    assert!(location.starts_with("/api/v1/uploads/"), "{location}");

    // A first part arrives whole.
    let (status, headers, body) = wang.patch(&location, 0, bytes[..300_000].to_vec()).await;
    assert_eq!((status, header(&headers, "upload-offset")), (204, "300000".into()), "{body}");
    // The next is cut off after 200,000 of its bytes (the link drops): what arrived is kept.
    let cut: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(bytes[300_000..400_000].to_vec()),
        Ok(bytes[400_000..500_000].to_vec()),
        Err(std::io::Error::other("the link dropped")),
    ];
    let dropped = wang
        .request(reqwest::Method::PATCH, &location)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "300000")
        // (The link drops a moment after the bytes went: a reset at once could discard them
        // unread at the server's socket.)
        .body(reqwest::Body::wrap_stream(futures_util::StreamExt::then(
            futures_util::stream::iter(cut),
            |item| async move {
                if item.is_err() {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
                item
            },
        )))
        .send()
        .await;
    assert!(dropped.is_err(), "the request did not complete: {dropped:?}");
    let mut held = 0;
    for _ in 0..50 {
        let (status, headers) = wang.head(&location).await;
        assert_eq!(status, 200);
        held = header(&headers, "upload-offset").parse::<usize>().expect("an offset");
        if held == 500_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(held, 500_000, "the bytes that arrived before the drop are held");
    // Sending from anywhere else is refused with where to resume.
    let (status, headers, body) = wang.patch(&location, 300_000, bytes[300_000..].to_vec()).await;
    assert_eq!(
        (status, error_code(&body), header(&headers, "upload-offset")),
        (409, "offset_mismatch", "500000".into())
    );
    // The rest, from the byte the server holds: the blob is stored.
    let (status, headers, body) = wang.patch(&location, held, bytes[held..].to_vec()).await;
    assert_eq!((status, header(&headers, "upload-offset")), (204, bytes.len().to_string()), "{body}");
    let stored = stored_blobs(&server);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(std::fs::read(&stored[0]).expect("the blob"), bytes, "the blob is the photo, byte for byte");
    assert!(stored[0].ends_with(&hash), "named by its hash: {stored:?}");
    let org = server.state.db.user_by_login("wang").await.expect("wang").expect("demo user").org;
    let blob = server.state.db.blob(&org, &hash).await.expect("blob").expect("recorded");
    assert_eq!((blob.size, blob.mime.as_str()), (bytes.len() as i64, "image/png"));
    // No chunk is left behind.
    let uploads_dir = server.blob_dir.path().join("uploads");
    let leftovers: Vec<_> = walk(&uploads_dir);
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The same photo from another phone: complete at once, stored once.
    let li = Client::new(&server, "li").await;
    let (status, headers, body) = li.create(bytes.len(), &metadata(&[("sha256", &hash)])).await;
    assert_eq!((status, header(&headers, "upload-offset")), (201, bytes.len().to_string()), "{body}");
    let again = header(&headers, "location");
    let (status, headers) = li.head(&again).await;
    assert_eq!((status, header(&headers, "upload-offset")), (200, bytes.len().to_string()));
    // A client that sends the bytes anyway is told the server holds them all.
    let (status, headers, body) = li.patch(&again, 0, bytes.clone()).await;
    assert_eq!(
        (status, error_code(&body), header(&headers, "upload-offset")),
        (409, "offset_mismatch", bytes.len().to_string())
    );
    assert_eq!(stored_blobs(&server).len(), 1, "stored once");

    // The metrics count it: two uploads (one complete at creation), the bytes received once
    // and stored once, and those sent from a wrong offset discarded.
    let metrics =
        reqwest::get(format!("{}/metrics", server.metrics_base)).await.expect("metrics").text().await.expect("text");
    let total = bytes.len();
    for line in [
        "loopwork_uploads_total{outcome=\"created\"} 1".to_owned(),
        "loopwork_uploads_total{outcome=\"deduplicated\"} 1".to_owned(),
        "loopwork_uploads_total{outcome=\"completed\"} 1".to_owned(),
        format!("loopwork_upload_bytes_total{{kind=\"received\"}} {total}"),
        format!("loopwork_upload_bytes_total{{kind=\"stored\"}} {total}"),
        format!("loopwork_upload_bytes_total{{kind=\"discarded\"}} {}", (total - 300_000) + total),
    ] {
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() { dirs.push(entry.path()) } else { found.push(entry.path()) }
        }
    }
    found
}

async fn bad_uploads_are_refused_with_their_documented_codes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let wang = Client::new(&server, "wang").await;
    let bytes = photo(50_000, 3);
    let hash = sha256(&bytes);
    let good = metadata(&[("sha256", &hash)]);

    // The protocol's options, without signing in.
    let options = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/api/v1/uploads", server.base))
        .send()
        .await
        .expect("options");
    assert_eq!(options.status(), 204);
    assert_eq!(header(options.headers(), "tus-version"), "1.0.0");
    assert_eq!(header(options.headers(), "tus-extension"), "creation,termination");

    // Creation: the protocol version, the length, the metadata, who.
    let (status, body) = {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/uploads", server.base))
            .bearer_auth(&wang.token)
            .header("upload-length", "10")
            .header("upload-metadata", good.as_str())
            .send()
            .await
            .expect("post");
        let (s, _, b) = answer(r).await;
        (s, b)
    };
    assert_eq!((status, error_code(&body)), (412, "tus_version"));
    let r = reqwest::Client::new()
        .head(format!("{}/api/v1/uploads/anything", server.base))
        .bearer_auth(&wang.token)
        .send()
        .await
        .expect("head");
    assert_eq!(
        (r.status().as_u16(), header(r.headers(), "tus-version")),
        (412, "1.0.0".into()),
        "a 412 names the version"
    );
    let unsigned = reqwest::Client::new()
        .post(format!("{}/api/v1/uploads", server.base))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .send()
        .await
        .expect("post");
    assert_eq!(unsigned.status(), 401);
    for (length, meta, status, code) in [
        ("0", good.clone(), 400, "invalid_upload_length"),
        ("104857601", good.clone(), 413, "too_large"),
        ("-1", good.clone(), 400, "invalid_upload_length"),
        ("ten", good.clone(), 400, "invalid_upload_length"),
        ("10", "sha256 not-base64!".to_owned(), 400, "invalid_metadata"),
        ("10", metadata(&[("sha256", "ABC")]), 400, "invalid_sha256"),
        ("10", metadata(&[("sha256", &hash.to_uppercase())]), 400, "invalid_sha256"),
        ("10", String::new(), 400, "invalid_sha256"),
        ("10", metadata(&[("sha256", &hash), ("kind", "video")]), 400, "invalid_kind"),
    ] {
        let r = wang
            .request(reqwest::Method::POST, "/api/v1/uploads")
            .header("upload-length", length)
            .header("upload-metadata", meta.as_str())
            .send()
            .await
            .expect("post");
        let (got, headers, body) = answer(r).await;
        assert_eq!((got, error_code(&body)), (status, code), "{length} {meta}: {body}");
        assert_eq!(header(&headers, "tus-resumable"), "1.0.0", "errors carry the protocol version too");
    }

    // Bytes: the content type, past the length.
    let (_, headers, _) = wang.create(bytes.len(), &good).await;
    let location = header(&headers, "location");
    let r = wang
        .request(reqwest::Method::PATCH, &location)
        .header("content-type", "application/octet-stream")
        .header("upload-offset", "0")
        .body(bytes.clone())
        .send()
        .await
        .expect("patch");
    let (status, _, body) = answer(r).await;
    assert_eq!((status, error_code(&body)), (415, "invalid_content_type"));
    let mut longer = bytes.clone();
    longer.push(0);
    let (status, _, body) = wang.patch(&location, 0, longer).await;
    assert_eq!((status, error_code(&body)), (413, "beyond_length"));
    let (_, headers) = wang.head(&location).await;
    assert_eq!(header(&headers, "upload-offset"), "0", "nothing of a refused request is kept");

    // Nobody else reaches it: another user of the organization (404, as an unknown upload).
    let li = Client::new(&server, "li").await;
    assert_eq!(li.head(&location).await.0, 404);
    let (status, _, _) = li.patch(&location, 0, bytes.clone()).await;
    assert_eq!(status, 404);
    let r = li.request(reqwest::Method::DELETE, &location).send().await.expect("delete");
    assert_eq!(r.status(), 404);
    assert_eq!(wang.head("/api/v1/uploads/nothing-here").await.0, 404);

    // Bytes that do not hash to what was declared: the upload fails, and stays failed.
    let wrong = photo(50_000, 4);
    let (status, _, body) = wang.patch(&location, 0, wrong).await;
    assert_eq!((status, error_code(&body)), (422, "hash_mismatch"), "{body}");
    let (status, headers) = wang.head(&location).await;
    assert_eq!(
        (status, header(&headers, "loopwork-upload-fault")),
        (410, "hash_mismatch".into()),
        "no offset to take for done"
    );
    let (status, _, body) = wang.patch(&location, 50_000 + 16, Vec::new()).await;
    assert_eq!((status, error_code(&body)), (410, "upload_failed"));

    // Disguised bytes: a ZIP archive as a photo, a PDF as a signature (the bytes' own type).
    let mut zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    zip.extend(std::iter::repeat_n(7u8, 4_000));
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend(std::iter::repeat_n(b'x', 4_000));
    for (kind, bytes) in [("photo", zip), ("signature", pdf.clone())] {
        let (status, headers, body) =
            wang.create(bytes.len(), &metadata(&[("sha256", &sha256(&bytes)), ("kind", kind)])).await;
        assert_eq!(status, 201, "{body}");
        let (status, _, body) = wang.patch(&header(&headers, "location"), 0, bytes).await;
        assert_eq!((status, error_code(&body)), (415, "unsupported_type"), "{kind}: {body}");
    }
    // A PDF is a file.
    let (_, headers, _) = wang.create(pdf.len(), &metadata(&[("sha256", &sha256(&pdf)), ("kind", "file")])).await;
    let (status, _, body) = wang.patch(&header(&headers, "location"), 0, pdf.clone()).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(stored_blobs(&server).len(), 1, "only the PDF is stored");
    // The same PDF as a signature is not taken from the store: its bytes are judged, and refused.
    let (status, headers, _) =
        wang.create(pdf.len(), &metadata(&[("sha256", &sha256(&pdf)), ("kind", "signature")])).await;
    assert_eq!((status, header(&headers, "upload-offset")), (201, "0".into()), "not complete at once");
    let (status, _, body) = wang.patch(&header(&headers, "location"), 0, pdf.clone()).await;
    assert_eq!((status, error_code(&body)), (415, "unsupported_type"));

    // An unfinished upload ended by its client: its bytes go.
    let (_, headers, _) = wang.create(bytes.len(), &good).await;
    let location = header(&headers, "location");
    let (status, _, _) = wang.patch(&location, 0, bytes[..10_000].to_vec()).await;
    assert_eq!(status, 204);
    let r = wang.request(reqwest::Method::DELETE, &location).send().await.expect("delete");
    assert_eq!(r.status(), 204);
    assert_eq!(wang.head(&location).await.0, 404);
    assert!(walk(&server.blob_dir.path().join("uploads")).is_empty(), "its chunks are deleted");
}

async fn another_organization_neither_reaches_an_upload_nor_shares_a_blob(backend: Backend) {
    let server = TestServer::start(backend).await;
    let wang = Client::new(&server, "wang").await;
    let bytes = photo(20_000, 9);
    let hash = sha256(&bytes);
    let (_, headers, _) = wang.create(bytes.len(), &metadata(&[("sha256", &hash)])).await;
    let location = header(&headers, "location");
    let (status, _, _) = wang.patch(&location, 0, bytes[..5_000].to_vec()).await;
    assert_eq!(status, 204);

    // A technician of another property company.
    let db = server.state.db.as_ref();
    let org = db.create_organization("别家物业", 0).await.expect("org");
    let user = loopwork_server::store::NewUser {
        org,
        login: "bj-tech".into(),
        password_hash: loopwork_server::auth::hash_password("bj-tech-password").expect("hash"),
        role: loopwork_sync_core::Role::Technician,
        display_name: "别家师傅".into(),
        phone: None,
    };
    db.create_user(&user, 0).await.expect("user");
    let stranger = Client {
        base: server.base.clone(),
        token: loopwork_tests::login_at(&server.base, "bj-tech", "bj-tech-password").await.token,
        http: reqwest::Client::new(),
    };
    // Wang's upload is unknown to them, and nothing they send reaches it.
    assert_eq!(stranger.head(&location).await.0, 404);
    let (status, _, body) = stranger.patch(&location, 5_000, bytes[5_000..].to_vec()).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    let r = stranger.request(reqwest::Method::DELETE, &location).send().await.expect("delete");
    assert_eq!(r.status(), 404);
    let (status, headers) = wang.head(&location).await;
    assert_eq!((status, header(&headers, "upload-offset")), (200, "5000".into()), "untouched");

    // Wang's organization holds the photo once done; the other company does not share it: its
    // upload of the same bytes starts at 0 and stores its own.
    let (status, _, _) = wang.patch(&location, 5_000, bytes[5_000..].to_vec()).await;
    assert_eq!(status, 204);
    let (status, headers, _) = stranger.create(bytes.len(), &metadata(&[("sha256", &hash)])).await;
    assert_eq!((status, header(&headers, "upload-offset")), (201, "0".into()), "no blob of another organization");
    let (status, _, body) = stranger.patch(&header(&headers, "location"), 0, bytes.clone()).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(stored_blobs(&server).len(), 2, "one blob per organization");
}
