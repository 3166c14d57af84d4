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
    a_photo_reaches_those_who_see_its_order_without_where_it_was_taken,
    a_blob_no_order_references_is_collected_after_its_grace_and_a_referenced_one_never,
    attachments_live_in_an_s3_compatible_store_that_replicas_share,
    a_phone_s_upload_session_resumes_through_drops_without_sending_twice,
    the_owner_signs_on_the_technician_s_phone_where_the_organization_requires_it,
    an_organization_sets_its_own_attachment_limits_within_the_server_s,
);

/// A PNG of noise at least `len` bytes long (noise does not compress), different per seed.
/// It holds no metadata, so the server keeps it byte for byte.
fn photo(len: usize, seed: u8) -> Vec<u8> {
    let side = ((len as f64 / 3.0).sqrt().ceil() as u32).max(1);
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    let pixels = image::RgbImage::from_fn(side, side, |_, _| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let [r, g, b, _] = state.to_be_bytes();
        image::Rgb([r, g, b])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(pixels)
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("png");
    assert!(bytes.len() >= len, "{} < {len}", bytes.len());
    bytes
}

/// A 640×480 JPEG as a phone's camera saves it: EXIF with the camera's make and model, a GPS
/// position, the capture time and an orientation.
fn camera_photo(seed: u8) -> Vec<u8> {
    use exif::{Field, In, Tag, Value};
    let pixels = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x / 3) as u8, (y / 2) as u8, seed]));
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut plain).encode_image(&pixels).expect("jpeg");
    let fields = [
        Field { tag: Tag::Make, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"Loopwork".to_vec()]) },
        Field { tag: Tag::Model, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"Field Phone 9".to_vec()]) },
        Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![1]) },
        Field {
            tag: Tag::DateTimeOriginal,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"2026:12:07 09:30:00".to_vec()]),
        },
        Field { tag: Tag::GPSLatitudeRef, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"N".to_vec()]) },
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![(31, 1).into(), (14, 1).into(), (1_234, 100).into()]),
        },
    ];
    let mut writer = exif::experimental::Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).expect("exif");
    let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(plain.into()).expect("jpeg");
    img_parts::ImageEXIF::set_exif(&mut jpeg, Some(tiff.into_inner().into()));
    jpeg.encoder().bytes().to_vec()
}

/// The EXIF of a JPEG: (tag, value) pairs.
fn exif_of(jpeg: &[u8]) -> Vec<(exif::Tag, String)> {
    match exif::Reader::new().read_from_container(&mut std::io::Cursor::new(jpeg)) {
        Ok(read) => read.fields().map(|f| (f.tag, f.display_value().to_string())).collect(),
        Err(_) => Vec::new(),
    }
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

    /// A user of another property company, signed in (password `{login}-password`).
    async fn of_another_company(server: &TestServer, login: &str, role: loopwork_sync_core::Role) -> Client {
        let db = server.state.db.as_ref();
        let org = db.create_organization("别家物业", 0).await.expect("org");
        let password = format!("{login}-password");
        let user = loopwork_server::store::NewUser {
            org,
            login: login.into(),
            password_hash: loopwork_server::auth::hash_password(&password).expect("hash"),
            role,
            display_name: format!("别家 {login}"),
            phone: None,
        };
        db.create_user(&user, 0).await.expect("user");
        let token = loopwork_tests::login_at(&server.base, login, &password).await.token;
        Client { base: server.base.clone(), token, http: reqwest::Client::new() }
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

    /// Uploads bytes whole in one request; their hash.
    async fn upload(&self, bytes: &[u8], kind: &str) -> String {
        let hash = sha256(bytes);
        let (status, headers, body) = self.create(bytes.len(), &metadata(&[("sha256", &hash), ("kind", kind)])).await;
        assert_eq!(status, 201, "{body}");
        if header(&headers, "upload-offset") != bytes.len().to_string() {
            let (status, _, body) = self.patch(&header(&headers, "location"), 0, bytes.to_vec()).await;
            assert_eq!(status, 204, "{body}");
        }
        hash
    }

    /// Downloads an attachment through an order: (status, headers, bytes).
    async fn download(&self, path: &str) -> (u16, HeaderMap, Vec<u8>) {
        let response =
            self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await.expect("download");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.bytes().await.expect("body").to_vec())
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
        "loopwork_uploads_in_progress 0".to_owned(),
    ] {
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    // Each HEAD that found bytes held asked where to go on from: at least the one after the drop.
    let resumed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("loopwork_uploads_total{outcome=\"resumed\"} "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(resumed.is_some_and(|n| n >= 1), "{metrics}");
    assert!(metrics.contains("loopwork_picture_seconds_count 1"), "one picture kept:\n{metrics}");
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
        ("41943041", good.clone(), 413, "too_large"),
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
    let mut wrong = bytes.clone();
    wrong[bytes.len() / 2] ^= 0xFF;
    let (status, _, body) = wang.patch(&location, 0, wrong).await;
    assert_eq!((status, error_code(&body)), (422, "hash_mismatch"), "{body}");
    let (status, headers) = wang.head(&location).await;
    assert_eq!(
        (status, header(&headers, "loopwork-upload-fault")),
        (410, "hash_mismatch".into()),
        "no offset to take for done"
    );
    let (status, _, body) = wang.patch(&location, bytes.len(), Vec::new()).await;
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
    // A JPEG whose structure cannot be read: its metadata could not be removed, so it is not kept.
    let mut broken = b"\xFF\xD8\xFF\xE1\x00\x10Exif\0\0".to_vec();
    broken.extend(std::iter::repeat_n(0x55u8, 3_000));
    let (_, headers, _) = wang.create(broken.len(), &metadata(&[("sha256", &sha256(&broken))])).await;
    let (status, _, body) = wang.patch(&header(&headers, "location"), 0, broken).await;
    assert_eq!((status, error_code(&body)), (415, "unreadable_picture"), "{body}");
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
    let stranger = Client::of_another_company(&server, "bj-tech", loopwork_sync_core::Role::Technician).await;
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

/// A repair order for the owner of 3-1502, registered by the desk and assigned to 王师傅, who
/// has started work: the desk's, 王师傅's and the owner's devices (which last synced before
/// 王师傅 accepted), and the order.
async fn started_order(
    server: &TestServer,
) -> (loopwork_tests::Device, loopwork_tests::Device, loopwork_tests::Device, loopwork_sync_core::OrderId) {
    use loopwork_sync_core::{Action, Category, Channel, Grade, Kind, Location, NewOrder};
    let mut desk = server.device("kefu").await;
    let mut wang = server.device("wang").await;
    let mut owner = server.device("yezhu1502").await;
    let new = NewOrder {
        kind: Kind::Repair,
        category: Category::WaterElectric,
        grade: Grade::Serious,
        channel: Channel::Hotline,
        location: Location::unit("hy-garden", "3", "1502"),
        description: "卫生间天花板渗水".into(),
        reporter: owner.session.user,
        occurred_at_ms: None,
    };
    let id = desk.replica.create(&new).expect("create");
    desk.replica.transition(id, Action::Assign(wang.session.user), None).expect("assign");
    desk.synced().await;
    owner.synced().await;
    wang.synced().await;
    for action in [Action::Accept, Action::Arrive, Action::Start] {
        wang.replica.transition(id, action, None).expect("transition");
    }
    wang.synced().await;
    (desk, wang, owner, id)
}

async fn a_photo_reaches_those_who_see_its_order_without_where_it_was_taken(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (mut desk_device, mut wang_device, owner_device, id) = started_order(&server).await;
    let wang = Client::new(&server, "wang").await;
    let photo = camera_photo(1);
    let hash = sha256(&photo);
    let tags = exif_of(&photo);
    assert!(tags.iter().any(|(t, _)| *t == exif::Tag::GPSLatitude), "the camera's photo has a position: {tags:?}");

    // 王师傅 photographs the leak in the basement: the reference reaches the server first.
    wang_device.replica.attach(id, &hash, "image/jpeg").expect("attach");
    wang_device.synced().await;
    let path = format!("/api/v1/orders/{id}/attachments/{hash}");
    let (status, _, body) = wang.download(&path).await;
    assert_eq!((status, error_code(&serde_json::from_slice(&body).expect("json"))), (404, "not_uploaded"));

    // Then the bytes. Everyone whose scope holds the order downloads them, without the camera's
    // position, make or model, with the time it was taken.
    assert_eq!(wang.upload(&photo, "photo").await, hash);
    let desk = Client::new(&server, "kefu").await;
    let owner = Client::new(&server, "yezhu1502").await;
    let mut served = Vec::new();
    for who in [&wang, &desk, &owner] {
        let (status, headers, bytes) = who.download(&path).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(header(&headers, "content-type"), "image/jpeg");
        assert_eq!(header(&headers, "content-length"), bytes.len().to_string());
        assert_eq!(header(&headers, "etag"), format!("\"{hash}.1\""));
        assert_eq!(header(&headers, "cache-control"), "private, no-cache");
        served = bytes;
    }
    let tags = exif_of(&served);
    let names: Vec<exif::Tag> = tags.iter().map(|(t, _)| *t).collect();
    assert_eq!(names, vec![exif::Tag::Orientation, exif::Tag::DateTimeOriginal], "{tags:?}");
    assert_eq!(tags[1].1, "2026-12-07 09:30:00");
    let seen = image::load_from_memory(&served).expect("a picture");
    assert_eq!((seen.width(), seen.height()), (640, 480));
    // Its thumbnail, for lists.
    let (status, headers, small) = owner.download(&format!("{path}/thumbnail")).await;
    assert_eq!((status, header(&headers, "content-type")), (200, "image/jpeg".into()));
    let small = image::load_from_memory(&small).expect("a thumbnail");
    assert_eq!((small.width(), small.height()), (320, 240));
    // A client that holds the bytes is told so.
    let r = owner
        .http
        .get(format!("{}{path}", owner.base))
        .bearer_auth(&owner.token)
        .header("if-none-match", format!("\"{hash}.1\""))
        .send()
        .await
        .expect("conditional");
    assert_eq!(r.status().as_u16(), 304);

    // Nobody else: another owner, a technician never given the order, another company.
    for login in ["yezhu0801", "li"] {
        let (status, _, body) = Client::new(&server, login).await.download(&path).await;
        assert_eq!((status, error_code(&serde_json::from_slice(&body).expect("json"))), (404, "not_found"), "{login}");
    }
    let stranger = Client::of_another_company(&server, "bj-kefu", loopwork_sync_core::Role::Dispatcher).await;
    assert_eq!(stranger.download(&path).await.0, 404);
    // A hash copied onto another order by someone who never had the bytes reaches nothing
    // there (the desk's phone pushes a reference to 王师傅's photo on a new order), while the
    // order 王师傅 attached it to still serves it.
    let other = desk_device
        .replica
        .create(&loopwork_sync_core::NewOrder {
            kind: loopwork_sync_core::Kind::Repair,
            category: loopwork_sync_core::Category::WaterElectric,
            grade: loopwork_sync_core::Grade::Minor,
            channel: loopwork_sync_core::Channel::Hotline,
            location: loopwork_sync_core::Location::unit("hy-garden", "3", "1502"),
            description: "阳台地漏堵塞".into(),
            reporter: owner_device.session.user,
            occurred_at_ms: None,
        })
        .expect("another order");
    desk_device.replica.attach(other, &hash, "image/jpeg").expect("a copied hash");
    desk_device.synced().await;
    let (status, _, body) = desk.download(&format!("/api/v1/orders/{other}/attachments/{hash}")).await;
    assert_eq!((status, error_code(&serde_json::from_slice(&body).expect("json"))), (404, "not_uploaded"));
    assert_eq!(desk.download(&path).await.0, 200);
    // A blob of the organization that this order does not reference is not reached through it.
    let elsewhere = wang.upload(&camera_photo(2), "photo").await;
    let (status, _, body) = wang.download(&format!("/api/v1/orders/{id}/attachments/{elsewhere}")).await;
    assert_eq!((status, error_code(&serde_json::from_slice(&body).expect("json"))), (404, "not_found"));
    let (status, _, body) = wang.download(&format!("/api/v1/orders/{id}/attachments/{}", hash.to_uppercase())).await;
    assert_eq!((status, error_code(&serde_json::from_slice(&body).expect("json"))), (400, "invalid_sha256"));

    // The desk attaches through the API only bytes it uploaded itself: knowing a hash is not
    // enough. Once it has uploaded them too (found held at once), they attach, as the desk's.
    let attach = |who: &Client, sha: &str| {
        who.http
            .post(format!("{}/api/v1/orders/{id}/attachments", who.base))
            .bearer_auth(&who.token)
            .json(&serde_json::json!({ "sha256": sha }))
            .send()
    };
    let elsewhere_photo = camera_photo(2);
    let refused = attach(&desk, &elsewhere).await.expect("attach");
    let (status, _, body) = answer(refused).await;
    assert_eq!((status, error_code(&body)), (404, "not_uploaded"), "{body}");
    assert_eq!(desk.upload(&elsewhere_photo, "photo").await, elsewhere);
    let (status, _, detail) = answer(attach(&desk, &elsewhere).await.expect("attach")).await;
    assert_eq!(status, 200, "{detail}");
    let listed = detail["attachments"].as_array().expect("attachments").clone();
    let mine = listed.iter().find(|a| a["sha256"] == elsewhere.as_str()).expect("attached");
    // The order is in progress: during the work; its type as the server found the bytes.
    assert_eq!(
        (mine["phase"].as_str(), mine["stored_type"].as_str(), mine["uploaded"].as_bool()),
        (Some("during"), Some("image/jpeg"), Some(true))
    );
    let first = listed.iter().find(|a| a["sha256"] == hash.as_str()).expect("the first photo");
    assert_eq!((first["phase"].as_str(), first["thumbnail"].as_bool()), (Some("during"), Some(true)));
    // The route's other refusals: a hash in capitals, another company's dispatcher (the order is
    // not theirs to find), the owner once a technician took the order (the field rules).
    let (status, _, body) = answer(attach(&desk, &elsewhere.to_uppercase()).await.expect("attach")).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_sha256"), "{body}");
    assert_eq!(stranger.upload(&elsewhere_photo, "photo").await, elsewhere);
    let (status, _, body) = answer(attach(&stranger, &elsewhere).await.expect("attach")).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    assert_eq!(owner.upload(&elsewhere_photo, "photo").await, elsewhere);
    let (status, _, body) = answer(attach(&owner, &elsewhere).await.expect("attach")).await;
    assert_eq!((status, error_code(&body)), (409, "refused"), "{body}");

    // A file is saved, never shown in the page; it has no thumbnail.
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend(std::iter::repeat_n(b'x', 2_000));
    let pdf_hash = wang.upload(&pdf, "file").await;
    wang_device.replica.attach(id, &pdf_hash, "application/pdf").expect("attach");
    wang_device.synced().await;
    let pdf_path = format!("/api/v1/orders/{id}/attachments/{pdf_hash}");
    let (status, headers, bytes) = desk.download(&pdf_path).await;
    assert_eq!((status, header(&headers, "content-disposition"), bytes), (200, "attachment".into(), pdf));
    let (status, _, body) = desk.download(&format!("{pdf_path}/thumbnail")).await;
    assert_eq!((status, error_code(&serde_json::from_slice(&body).expect("json"))), (404, "no_thumbnail"));
}

async fn a_blob_no_order_references_is_collected_after_its_grace_and_a_referenced_one_never(backend: Backend) {
    use loopwork_sync_core::Clock as _;
    let clock = std::sync::Arc::new(loopwork_tests::OffsetClock::default());
    let server = TestServer::start_with_clock(backend, clock.clone()).await;
    let (_desk, mut wang_device, mut owner_device, id) = started_order(&server).await;
    let wang = Client::new(&server, "wang").await;
    let owner = Client::new(&server, "yezhu1502").await;
    let org = server.state.db.user_by_login("wang").await.expect("wang").expect("demo user").org;

    // A photo the order references; one nobody references; an upload left half done.
    let kept = wang.upload(&camera_photo(3), "photo").await;
    wang_device.replica.attach(id, &kept, "image/jpeg").expect("attach");
    wang_device.synced().await;
    let stray = wang.upload(&camera_photo(4), "photo").await;
    let half = photo(40_000, 5);
    let (_, headers, _) = wang.create(half.len(), &metadata(&[("sha256", &sha256(&half))])).await;
    let (status, _, _) = wang.patch(&header(&headers, "location"), 0, half[..10_000].to_vec()).await;
    assert_eq!(status, 204);
    // The owner's phone attaches a photo after the technician accepted (a client that skips
    // its own check): no longer theirs to add, so the server compensates the reference, and
    // nothing references the blob.
    let late = owner.upload(&camera_photo(5), "photo").await;
    owner_device.synced().await;
    let mut copy = owner_device.replica.order(id).expect("order").with_device(owner_device.session.device);
    let before = copy.heads();
    copy.attach(&owner_device.identity(), &late, "image/jpeg", clock.now_ms()).expect("attach");
    let bytes = copy.changes_since(&before)[0].1.clone();
    let request = loopwork_sync_core::protocol::SyncRequest {
        cursor: None,
        limit: 10,
        changes: vec![loopwork_sync_core::protocol::OrderBytes { order: id, bytes }],
        ..Default::default()
    };
    owner_device.post(request.encode()).await.expect("pushed");
    owner_device.synced().await;
    let attached = owner_device.replica.order(id).expect("order").attachments();
    assert!(attached.iter().all(|a| a.sha256 != late), "compensated: {attached:?}");

    let (status, _, _) = owner.download(&format!("/api/v1/orders/{id}/attachments/{late}")).await;
    assert_eq!(status, 404, "a compensated reference reaches nothing");
    let files =
        || walk(&server.blob_dir.path().join("blobs")).len() + walk(&server.blob_dir.path().join("uploads")).len();
    assert_eq!(files(), 4, "three blobs and a chunk");

    // As a server from before references were kept would have left it: the order's reference
    // is not recorded. It is read from the order's document before anything is collected.
    server.execute("DELETE FROM attachment_refs").await;
    server.execute("DELETE FROM meta WHERE key = 'references_backfilled_to'").await;
    let kept_path = format!("/api/v1/orders/{id}/attachments/{kept}");
    assert_eq!(wang.download(&kept_path).await.0, 404, "not recorded yet");

    // Within the grace period (30 days) nothing goes.
    let collect = || loopwork_server::tasks::collector::collect(&server.state, clock.now_ms());
    clock.advance_minutes(29 * 24 * 60);
    let none = collect().await.expect("collect");
    assert_eq!((none.blobs, none.uploads), (0, 0));
    assert_eq!(files(), 4);
    assert_eq!(wang.download(&kept_path).await.0, 200, "the reference was read from the document");
    // After it, what nothing references goes, with its thumbnail; the referenced photo stays.
    // A photo uploaded again (found held at once) starts its grace period over.
    clock.advance_minutes(2 * 24 * 60);
    let late_length = camera_photo(5).len();
    let (status, headers, _) = owner.create(late_length, &metadata(&[("sha256", &late)])).await;
    assert_eq!((status, header(&headers, "upload-offset")), (201, late_length.to_string()), "held");
    let done = collect().await.expect("collect");
    assert_eq!((done.blobs, done.uploads), (1, 1));
    let db = server.state.db.as_ref();
    assert!(db.blob(&org, &stray).await.expect("blob").is_none());
    assert!(db.blob(&org, &late).await.expect("blob").is_some() && db.blob(&org, &kept).await.expect("blob").is_some());
    let left = walk(&server.blob_dir.path().join("blobs"));
    assert_eq!(left.len(), 2, "{left:?}");
    let thumbs = walk(&server.blob_dir.path().join("thumbs"));
    assert!(thumbs.iter().all(|t| !t.ends_with(&stray)) && thumbs.len() == 2, "{thumbs:?}");
    assert!(walk(&server.blob_dir.path().join("uploads")).is_empty());
    assert_eq!(wang.download(&kept_path).await.0, 200);
    // Its own grace over, the photo uploaded again and referenced by nothing goes too.
    clock.advance_minutes(31 * 24 * 60);
    assert_eq!(collect().await.expect("collect").blobs, 1);
    assert!(db.blob(&org, &late).await.expect("blob").is_none());
    // Years later, still referenced, still there; the same bytes sent again are stored anew.
    clock.advance_minutes(400 * 24 * 60);
    assert_eq!(collect().await.expect("collect").blobs, 0);
    assert_eq!(wang.download(&kept_path).await.0, 200);
    assert_eq!(wang.upload(&camera_photo(4), "photo").await, stray);
    assert!(db.blob(&org, &stray).await.expect("blob").is_some());
}

async fn attachments_live_in_an_s3_compatible_store_that_replicas_share(backend: Backend) {
    // A real S3-protocol server (moto), one bucket; two server processes on one database keep
    // attachments in it under one prefix.
    use loopwork_sync_core::Clock as _;
    let s3 = loopwork_tests::S3Server::start("loopwork-attachments").await;
    let clock = std::sync::Arc::new(loopwork_tests::OffsetClock::default());
    let server = TestServer::start_configured(backend, clock.clone(), |state| {
        state.blobs = Some(s3.blobs("site-a"));
    })
    .await;
    let replica = server.replica_configured(|state| state.blobs = Some(s3.blobs("site-a"))).await;
    let (_desk, mut wang_device, _owner, id) = started_order(&server).await;
    let store = s3.blobs("site-a");
    let wang = Client::new(&server, "wang").await;
    let wang_at_replica = Client::new(&replica, "wang").await;

    // A 12 MiB file sent in two parts, the second to the other replica: parts of the upload and
    // the blob assembled from them go up in S3's multipart parts (5 MiB).
    let mut file = b"%PDF-1.7\n".to_vec();
    file.extend((0..12 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let hash = sha256(&file);
    let (status, headers, body) = wang.create(file.len(), &metadata(&[("sha256", &hash), ("kind", "file")])).await;
    assert_eq!(status, 201, "{body}");
    let location = header(&headers, "location");
    let (status, headers, body) = wang.patch(&location, 0, file[..7 << 20].to_vec()).await;
    assert_eq!((status, header(&headers, "upload-offset")), (204, (7 << 20).to_string()), "{body}");
    let (status, headers) = wang_at_replica.head(&location).await;
    assert_eq!((status, header(&headers, "upload-offset")), (200, (7 << 20).to_string()), "the replica sees it");
    let (status, _, body) = wang_at_replica.patch(&location, 7 << 20, file[7 << 20..].to_vec()).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(store.list("uploads").await.expect("list"), Vec::<String>::new(), "no chunk left");
    assert_eq!(store.list("blobs").await.expect("list").len(), 1);

    // A photo, stripped and thumbnailed in the bucket; both downloaded through either replica.
    let photo = camera_photo(6);
    let photo_hash = wang_at_replica.upload(&photo, "photo").await;
    wang_device.replica.attach(id, &hash, "application/pdf").expect("attach");
    wang_device.replica.attach(id, &photo_hash, "image/jpeg").expect("attach");
    wang_device.synced().await;
    assert_eq!(store.list("thumbs").await.expect("list").len(), 1);
    let owner = Client::new(&replica, "yezhu1502").await;
    let (status, _, bytes) = owner.download(&format!("/api/v1/orders/{id}/attachments/{hash}")).await;
    assert_eq!(status, 200);
    assert!(bytes == file, "the 12 MiB file, byte for byte");
    let (status, _, bytes) = wang.download(&format!("/api/v1/orders/{id}/attachments/{photo_hash}")).await;
    assert_eq!(status, 200);
    let tags: Vec<exif::Tag> = exif_of(&bytes).into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags, vec![exif::Tag::Orientation, exif::Tag::DateTimeOriginal]);
    let (status, _, _) = owner.download(&format!("/api/v1/orders/{id}/attachments/{photo_hash}/thumbnail")).await;
    assert_eq!(status, 200);

    // A photo nobody references is collected from the bucket after its grace, by either.
    let stray = wang.upload(&camera_photo(7), "photo").await;
    assert_eq!(store.list("blobs").await.expect("list").len(), 3);
    clock.advance_minutes(31 * 24 * 60);
    let done = loopwork_server::tasks::collector::collect(&replica.state, clock.now_ms()).await.expect("collect");
    assert_eq!(done.blobs, 1);
    let left = store.list("blobs").await.expect("list");
    assert!(left.len() == 2 && left.iter().all(|name| !name.ends_with(&stray)), "{left:?}");
    assert_eq!(store.list("thumbs").await.expect("list").len(), 1);
}

async fn a_phone_s_upload_session_resumes_through_drops_without_sending_twice(backend: Backend) {
    use loopwork_sync_core::upload::{PART_BYTES, Step, Upload, UploadKind, UploadResponse};
    let server = TestServer::start(backend).await;
    let wang = Client::new(&server, "wang").await;
    let bytes = photo(700_000, 11);
    let mut upload = Upload::new(&sha256(&bytes), bytes.len() as u64, UploadKind::Photo);
    let (mut now, mut sent, mut patches, mut cut) = (0i64, 0usize, 0, false);
    loop {
        let request = match upload.next(PART_BYTES, now) {
            Step::Send(request) => request,
            Step::Wait { until_ms } => {
                now = until_ms;
                continue;
            }
            Step::Done => break,
            Step::Failed(code) => panic!("the upload failed: {code}"),
        };
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("method");
        let mut builder = wang.http.request(method, format!("{}{}", wang.base, request.path)).bearer_auth(&wang.token);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let body = bytes[request.body.start as usize..request.body.end as usize].to_vec();
        sent += body.len();
        if request.method == "PATCH" {
            patches += 1;
        }
        // The second part is cut off after half of it (the phone went into the lift).
        let answer = if request.method == "PATCH" && patches == 2 && !cut {
            cut = true;
            let half = body.len() / 2;
            let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
                vec![Ok(body[..half].to_vec()), Err(std::io::Error::other("the link dropped"))];
            let stream = futures_util::StreamExt::then(futures_util::stream::iter(pieces), |item| async move {
                if item.is_err() {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
                item
            });
            let dropped = builder.body(reqwest::Body::wrap_stream(stream)).send().await;
            assert!(dropped.is_err(), "{dropped:?}");
            None
        } else {
            let r = builder.body(body).send().await.expect("the server answers");
            let status = r.status().as_u16();
            let headers = r
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                .collect();
            let text = r.text().await.unwrap_or_default();
            let code = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|j| j["error"]["code"].as_str().map(str::to_owned));
            Some(UploadResponse { status, headers, code })
        };
        upload.answer(&request, answer.as_ref(), now);
    }
    // Only the unsent half of the cut part went twice; the server kept what arrived.
    let part = PART_BYTES as usize;
    assert!(sent <= bytes.len() + part / 2 + 1, "sent {sent} for {}", bytes.len());
    let org = server.state.db.user_by_login("wang").await.expect("wang").expect("demo user").org;
    let blob = server.state.db.blob(&org, &upload.sha256).await.expect("blob").expect("stored");
    assert_eq!(blob.size, bytes.len() as i64);
}

/// The organization requires the owner's signature for repairs registered by the hotline: the
/// server records it in the order, 王师傅's phone refuses to complete without one, and the
/// signed completion reaches the desk with the signature's picture, which the owner can open.
async fn the_owner_signs_on_the_technician_s_phone_where_the_organization_requires_it(backend: Backend) {
    use loopwork_sync_core::{Action, AttachmentKind, CoreError, NewAttachment, Supersession};
    let server = TestServer::start(backend).await;
    let admin = server.login("admin").await;
    let kefu = server.login("kefu").await;
    let rules = serde_json::json!({"rules": [{"kind": "repair", "require": "signature_unless_app"}]});
    let path = "/api/v1/settings/signature-rules";
    let (status, body) = server.call(&kefu.token, "PUT", path, Some(rules.clone())).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    let bad = serde_json::json!({"rules": [{"kind": "repair", "require": "always"}]});
    let (status, body) = server.call(&admin.token, "PUT", path, Some(bad)).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_signature_rules"), "{body}");
    assert_eq!(server.call(&admin.token, "PUT", path, Some(rules.clone())).await.0, 204);
    let (status, body) = server.call(&kefu.token, "GET", path, None).await;
    assert_eq!((status, body), (200, rules));

    let (_desk, mut wang, _owner, id) = started_order(&server).await;
    // The scanner looks at the new order within seconds and records the requirement.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !wang.replica.order(id).expect("order").signature_required() {
        assert!(std::time::Instant::now() < deadline, "the server never recorded the requirement");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        wang.synced().await;
    }
    let refused = wang.replica.transition(id, Action::Complete, None).expect_err("unsigned");
    assert!(matches!(refused, CoreError::Refused(Supersession::SignatureRequired)), "{refused:?}");
    // A phone that skips its own check: the unsigned completion reaches the server and takes no
    // effect there.
    wang.replica
        .edit(id, |order, me, now| order.append_transition_unchecked(me, Action::Complete, None, now))
        .expect("raw");
    wang.synced().await;
    let (_, detail) = server.call(&kefu.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!(detail["status"], "in_progress", "{detail}");
    let unsigned = detail["timeline"].as_array().expect("timeline").iter().find(|e| e["what"] == "complete").cloned();
    assert_eq!(unsigned.as_ref().map(|e| e["reason_code"].clone()), Some(serde_json::json!("signature_required")));

    // An order the technician registers and completes offline, unsigned, before the server
    // ever saw it: the server's first look judges it all the same.
    let found = {
        use loopwork_sync_core::{Category, Channel, Grade, Kind, Location, NewOrder};
        let new = NewOrder {
            kind: Kind::Repair,
            category: Category::PublicFacilities,
            grade: Grade::Minor,
            channel: Channel::Inspection,
            location: Location::unit("hy-garden", "3", "1502"),
            description: "巡检发现楼道灯不亮,已更换".into(),
            reporter: wang.session.user,
            occurred_at_ms: None,
        };
        let found = wang.replica.create(&new).expect("register on the round");
        for action in [Action::Accept, Action::Arrive, Action::Start, Action::Complete] {
            wang.replica.transition(found, action, None).expect("offline");
        }
        wang.synced().await;
        found
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, detail) = server.call(&kefu.token, "GET", &format!("/api/v1/orders/{found}"), None).await;
        if detail["signature_required"] == true {
            assert_eq!(detail["status"], "in_progress", "the unsigned completion no longer stands: {detail}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the server never judged the order: {detail}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // The owner signs on 王师傅's phone; the picture goes up, the signed completion follows.
    let signed = photo(6_000, 77);
    let hash = Client::new(&server, "wang").await.upload(&signed, "signature").await;
    let signature = NewAttachment {
        kind: AttachmentKind::Signature,
        size: Some(signed.len() as i64),
        ..NewAttachment::of(&hash, "image/png")
    };
    wang.replica.complete_signed(id, &signature, Some("阀门已更换,业主验收签字")).expect("signed");
    wang.synced().await;

    let (status, detail) = server.call(&kefu.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["status"], "awaiting_confirmation", "{detail}");
    assert_eq!(detail["signature_required"], true);
    let attachments = detail["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{detail}");
    assert_eq!(
        (attachments[0]["kind"].as_str(), attachments[0]["uploaded"].as_bool()),
        (Some("signature"), Some(true))
    );
    let completion = detail["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .rfind(|e| e["what"] == "complete")
        .cloned()
        .expect("the signed completion on the timeline");
    assert_eq!(
        (completion["verdict"].as_str(), completion["signature"].as_str()),
        (Some("applied"), Some(hash.as_str()))
    );
    // The owner opens the signature from their page.
    let owner = Client::new(&server, "yezhu1502").await;
    let (status, _, bytes) = owner.download(&format!("/api/v1/orders/{id}/attachments/{hash}")).await;
    assert_eq!((status, bytes.len()), (200, signed.len()));
    server.stop().await.drop_database().await;
}

/// An organization keeps its attachments smaller than the server allows: its administrator sets
/// `attachment-limits`; everyone may read them; a larger upload is refused when created.
async fn an_organization_sets_its_own_attachment_limits_within_the_server_s(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.login("admin").await;
    let kefu = server.login("kefu").await;
    let owner = server.login("yezhu1502").await;
    let path = "/api/v1/settings/attachment-limits";
    let server_max = serde_json::json!({"max_file_bytes": 104_857_600, "max_picture_bytes": 41_943_040});
    assert_eq!(server.call(&owner.token, "GET", path, None).await, (200, server_max));
    let limits = serde_json::json!({"max_file_bytes": 1_000, "max_picture_bytes": 500});
    let (status, body) = server.call(&kefu.token, "PUT", path, Some(limits.clone())).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    for bad in [
        serde_json::json!({"max_file_bytes": 0, "max_picture_bytes": 500}),
        serde_json::json!({"max_file_bytes": 104_857_601, "max_picture_bytes": 500}),
        serde_json::json!({"max_file_bytes": 1_000, "max_picture_bytes": 41_943_041}),
    ] {
        let (status, body) = server.call(&admin.token, "PUT", path, Some(bad.clone())).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_attachment_limits"), "{bad}: {body}");
    }
    let (status, body) =
        server.call(&admin.token, "PUT", path, Some(serde_json::json!({"max_file_bytes": 1_000}))).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_json"), "{body}");
    assert_eq!(server.call(&admin.token, "PUT", path, Some(limits.clone())).await.0, 204);
    assert_eq!(server.call(&owner.token, "GET", path, None).await, (200, limits));

    let wang = Client::new(&server, "wang").await;
    let hash = "ab".repeat(32);
    for (length, kind, status) in
        [(500, "photo", 201), (501, "photo", 413), (501, "signature", 413), (1_000, "file", 201), (1_001, "file", 413)]
    {
        let meta = metadata(&[("sha256", &hash), ("kind", kind)]);
        let (got, _, body) = wang.create(length, &meta).await;
        assert_eq!(got, status, "{length} {kind}: {body}");
        if status == 413 {
            assert_eq!(error_code(&body), "too_large", "{body}");
        }
    }
    // Another organization keeps the server's limits.
    let other = Client::of_another_company(&server, "bie-wang", loopwork_sync_core::Role::Technician).await;
    let (got, _, body) = other.create(501, &metadata(&[("sha256", &hash), ("kind", "photo")])).await;
    assert_eq!(got, 201, "{body}");
}
