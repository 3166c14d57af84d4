//! The blob store (docs/attachments.md): attachments' bytes, by organization and content hash,
//! through the `object_store` crate (the local filesystem under the data directory by default,
//! `serve --blob-dir`). Uploads arrive in chunks, each its own object; the last chunk's arrival
//! assembles them into the blob, hashing and sniffing the bytes as they stream (memory does not
//! grow with the file), and the blob is kept only if its bytes hash to what the client declared
//! and are a type the attachment's kind allows. A picture is then stripped of its metadata as
//! it streams from the staging object (`loopwork_pictures::strip_stream`) into a temporary
//! file, thumbnailed from that file, and copied into the blob.

use std::sync::Arc;

use futures_util::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The blob store of a server.
#[derive(Clone, Debug)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// What a writer buffers before it writes a part: S3 takes parts of 5 MiB or more.
    part_bytes: usize,
}

/// What assembling an upload found wrong with its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The bytes do not hash to the SHA-256 the client declared.
    HashMismatch,
    /// The bytes are not a type the attachment's kind takes (sniffed, not as declared).
    UnsupportedType,
    /// A picture larger than [`MAX_PICTURE_BYTES`]: its metadata could not be stripped.
    PictureTooLarge,
    /// A picture whose structure cannot be read, so its metadata cannot be stripped.
    UnreadablePicture,
}

/// A blob as assembled: its type, the size of the bytes kept, whether a thumbnail was made.
#[derive(Clone, Debug, PartialEq)]
pub struct Assembled {
    pub mime: String,
    pub size: i64,
    pub thumbnail: bool,
    /// How long stripping the picture and making its thumbnail took (pictures only).
    pub picture_seconds: Option<f64>,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::HashMismatch => "hash_mismatch",
            Refusal::UnsupportedType => "unsupported_type",
            Refusal::PictureTooLarge => "picture_too_large",
            Refusal::UnreadablePicture => "unreadable_picture",
        }
    }
}

/// The largest picture (JPEG, PNG, WebP) kept, whatever its kind: sync-core's.
pub const MAX_PICTURE_BYTES: i64 = loopwork_sync_core::upload::MAX_PICTURE_BYTES as i64;
/// Pictures being stripped and thumbnailed at once, per process (each holds the stripper's two
/// buffers and its thumbnail's decoded pixels: about 1 MB for a baseline JPEG, at most 160 MiB
/// for other pictures).
static PICTURES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
/// The stripper's read and write buffers, and the thumbnail's read buffer.
const STRIP_BUFFER_BYTES: usize = 256 << 10;

/// How many of a blob's first bytes are read to tell its type.
const SNIFF_BYTES: usize = 8 << 10;
/// What a writer buffers in memory before it writes (per request), on the filesystem.
const BUFFER_BYTES: usize = 1 << 20;
/// The same on an S3-compatible store: the smallest part of a multipart upload S3 takes.
const S3_PART_BYTES: usize = 5 << 20;
/// How long a request's body may send nothing before the server keeps what arrived and stops
/// reading it.
pub const IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// The types each kind of attachment takes, by what its bytes are.
pub fn accepted(kind: &str, mime: &str) -> bool {
    const IMAGES: &[&str] = &["image/jpeg", "image/png", "image/webp"];
    match kind {
        "photo" => IMAGES.contains(&mime),
        "signature" => matches!(mime, "image/png" | "image/jpeg" | "image/webp"),
        "file" => IMAGES.contains(&mime) || mime == "application/pdf",
        _ => false,
    }
}

/// Whether a text names a blob: a SHA-256 as 64 lowercase hex digits.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether blobs of this type are pictures: stripped of their metadata and thumbnailed.
pub fn is_picture(mime: &str) -> bool {
    matches!(mime, "image/jpeg" | "image/png" | "image/webp")
}

/// A blob's type, by its first bytes (`None`: not one Loopwork knows).
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let kind = infer::get(head)?;
    // infer names HEIC photos `image/heif`.
    Some(kind.mime_type())
}

impl Blobs {
    /// The blob store in a directory (created if missing).
    pub fn in_directory(dir: &std::path::Path) -> Result<Blobs, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the blob directory {}: {e}", dir.display()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| format!("cannot open the blob directory {}: {e}", dir.display()))?;
        Ok(Blobs { store: Arc::new(store), part_bytes: BUFFER_BYTES })
    }

    /// The blob store a URL names: `s3://bucket` or `s3://bucket/prefix`, an S3-compatible
    /// store, with the endpoint, region and credentials from the standard AWS environment
    /// variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP` for a store on plain HTTP).
    pub fn at_url(url: &str) -> Result<Blobs, String> {
        Self::s3(url, &[])
    }

    /// The same, with settings over the environment's: object_store's S3 keys
    /// (`aws_endpoint`, `aws_access_key_id`, `aws_secret_access_key`, `aws_region`,
    /// `aws_allow_http`, …).
    pub fn s3(url: &str, settings: &[(&str, &str)]) -> Result<Blobs, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("--blob-store {url}: {e}"))?;
        if parsed.scheme() != "s3" || parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("--blob-store takes s3://bucket[/prefix], not {url}"));
        }
        crate::tls_provider();
        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url);
        // `AWS_ENDPOINT_URL` is the name today's AWS tools read; object_store reads `AWS_ENDPOINT`.
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            builder = builder.with_endpoint(endpoint);
        }
        for (key, value) in settings {
            let key: object_store::aws::AmazonS3ConfigKey =
                key.parse().map_err(|e| format!("--blob-store setting {key}: {e}"))?;
            builder = builder.with_config(key, *value);
        }
        let s3 = builder.build().map_err(|e| format!("--blob-store {url}: {e}"))?;
        let prefix = parsed.path().trim_matches('/');
        let store: Arc<dyn ObjectStore> =
            if prefix.is_empty() { Arc::new(s3) } else { Arc::new(object_store::prefix::PrefixStore::new(s3, prefix)) };
        Ok(Blobs { store, part_bytes: S3_PART_BYTES })
    }

    /// The names of the objects under a prefix (`blobs/`, `thumbs/`, `uploads/`), for checks.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        let mut listed = self.store.list(Some(&Path::from(prefix)));
        while let Some(meta) = listed.next().await {
            names.push(meta.map_err(|e| e.to_string())?.location.to_string());
        }
        names.sort();
        Ok(names)
    }

    fn blob_path(org: &str, sha256: &str) -> Path {
        Path::from(format!("blobs/{org}/{sha256}"))
    }

    fn thumbnail_path(org: &str, sha256: &str) -> Path {
        Path::from(format!("thumbs/{org}/{sha256}"))
    }

    /// Writes the bytes of a stream into a new chunk object until the stream ends, fails, or
    /// would pass `limit` bytes; the object keeps what arrived before a failure (the client
    /// resumes after it). Its name and length, and whether the stream went past the limit.
    pub async fn write_chunk<S, E>(
        &self,
        upload: &str,
        start: i64,
        mut body: S,
        limit: i64,
    ) -> Result<(String, i64, bool), String>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    {
        let name = format!("uploads/{upload}/{start:016}-{}", uuid::Uuid::new_v4().simple());
        let mut writer = BufWriter::with_capacity(self.store.clone(), Path::from(name.clone()), self.part_bytes);
        let mut length = 0i64;
        let mut over = false;
        // A dropped connection, or one that stalls for a minute, ends the chunk with what came.
        while let Ok(Some(frame)) = tokio::time::timeout(IDLE, body.next()).await {
            let Ok(frame) = frame else { break };
            let room = (limit - length).max(0) as usize;
            if frame.len() > room {
                over = true;
                break;
            }
            if let Err(e) = writer.write_all(&frame).await {
                let _ = writer.abort().await;
                return Err(e.to_string());
            }
            length += frame.len() as i64;
        }
        if over {
            let _ = writer.abort().await;
            return Ok((name, 0, true));
        }
        writer.shutdown().await.map_err(|e| e.to_string())?;
        Ok((name, length, false))
    }

    /// Deletes a chunk object (one that lost a race, or an ended upload's).
    pub async fn delete_object(&self, name: &str) {
        if let Err(e) = self.store.delete(&Path::from(name)).await {
            tracing::warn!(object = name, error = %e, "blob store object not deleted");
        }
    }

    /// Assembles an upload's chunks into the organization's blob `sha256` when the bytes hash
    /// to it and are a type `kind` takes: its sniffed MIME type, or why not. The chunks stay
    /// (the caller deletes them once the verdict is recorded: an assembly cut off by a failure
    /// is made again from them).
    pub async fn assemble(
        &self,
        org: &str,
        upload: &str,
        chunks: &[String],
        sha256: &str,
        kind: &str,
    ) -> Result<Result<Assembled, Refusal>, String> {
        let staging = Path::from(format!("uploads/{upload}/assembled"));
        let mut writer = BufWriter::with_capacity(self.store.clone(), staging.clone(), self.part_bytes);
        let mut hasher = Sha256::new();
        let mut head: Vec<u8> = Vec::new();
        for chunk in chunks {
            let got = self.store.get(&Path::from(chunk.as_str())).await.map_err(|e| e.to_string())?;
            let mut stream = got.into_stream();
            while let Some(bytes) = stream.next().await {
                let bytes = bytes.map_err(|e| e.to_string())?;
                hasher.update(&bytes);
                if head.len() < SNIFF_BYTES {
                    let take = (SNIFF_BYTES - head.len()).min(bytes.len());
                    head.extend_from_slice(&bytes[..take]);
                }
                writer.write_all(&bytes).await.map_err(|e| e.to_string())?;
            }
        }
        writer.shutdown().await.map_err(|e| e.to_string())?;
        let verdict = if hex::encode(hasher.finalize()) != sha256 {
            Err(Refusal::HashMismatch)
        } else {
            match sniff(&head) {
                Some(mime) if accepted(kind, mime) => Ok(mime),
                _ => Err(Refusal::UnsupportedType),
            }
        };
        let kept = match verdict {
            Ok(mime) if is_picture(mime) => match self.keep_picture(org, sha256, &staging, mime).await {
                Ok(kept) => kept,
                Err(e) => {
                    // The request fails; the upload's next request assembles it again.
                    self.delete_object(staging.as_ref()).await;
                    return Err(e);
                }
            },
            Ok(mime) => {
                let size = self.store.head(&staging).await.map_err(|e| e.to_string())?.size as i64;
                self.store.rename(&staging, &Self::blob_path(org, sha256)).await.map_err(|e| e.to_string())?;
                Ok(Assembled { mime: mime.to_owned(), size, thumbnail: false, picture_seconds: None })
            }
            Err(refusal) => Err(refusal),
        };
        if kept.is_err() {
            self.delete_object(staging.as_ref()).await;
        }
        Ok(kept)
    }

    /// Keeps a picture as it is served: its metadata stripped (`loopwork_pictures`), and a
    /// thumbnail when one can be made. The staging object goes once the blob is written.
    async fn keep_picture(
        &self,
        org: &str,
        sha256: &str,
        staging: &Path,
        mime: &'static str,
    ) -> Result<Result<Assembled, Refusal>, String> {
        use std::io::{BufReader, Seek, Write};
        let got = self.store.get(staging).await.map_err(|e| e.to_string())?;
        if got.meta.size as i64 > MAX_PICTURE_BYTES {
            return Ok(Err(Refusal::PictureTooLarge));
        }
        let _turn = PICTURES.acquire().await.map_err(|e| e.to_string())?;
        // On the filesystem the staging file is read directly; from S3, the response's stream
        // through a bridge to the blocking thread.
        let range = got.range.clone();
        let staged: Box<dyn std::io::Read + Send> = match got.payload {
            object_store::GetResultPayload::File(mut file, _) => {
                file.seek(std::io::SeekFrom::Start(range.start)).map_err(|e| e.to_string())?;
                Box::new(std::io::Read::take(file, range.end - range.start))
            }
            object_store::GetResultPayload::Stream(stream) => {
                let stream = tokio_util::io::StreamReader::new(stream.map(|part| part.map_err(std::io::Error::other)));
                Box::new(tokio_util::io::SyncIoBridge::new(stream))
            }
        };
        // The picture streams from the store through the stripper into a file that has no name
        // (the system's temporary directory; gone with the process), which the thumbnail is
        // then made from: what is held in memory is the stripper's buffers and the thumbnail's
        // decoded pixels, not the picture.
        let made = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let staged = BufReader::with_capacity(STRIP_BUFFER_BYTES, staged);
            let mut file = tempfile::tempfile().map_err(loopwork_pictures::StripError::Io)?;
            let mut out = std::io::BufWriter::with_capacity(STRIP_BUFFER_BYTES, &mut file);
            let size = loopwork_pictures::strip_stream(mime, staged, &mut out)?;
            out.flush()?;
            drop(out);
            file.rewind()?;
            let thumbnail =
                loopwork_pictures::thumbnail_of(BufReader::with_capacity(STRIP_BUFFER_BYTES, &mut file), mime);
            file.rewind()?;
            Ok::<_, loopwork_pictures::StripError>((file, size, thumbnail, started.elapsed().as_secs_f64()))
        })
        .await;
        let (file, size, thumbnail, seconds) = match made {
            Ok(Ok(made)) => made,
            // Reading the staging object or writing the file failed: the request fails, and the
            // upload's next request assembles it again.
            Ok(Err(loopwork_pictures::StripError::Io(e))) => return Err(e.to_string()),
            // Bytes the picture crates cannot read, or that make one panic, are refused for good.
            Ok(Err(loopwork_pictures::StripError::Unreadable(_))) | Err(_) => {
                return Ok(Err(Refusal::UnreadablePicture));
            }
        };
        let mut kept = tokio::io::BufReader::with_capacity(BUFFER_BYTES, tokio::fs::File::from_std(file));
        let mut writer = BufWriter::with_capacity(self.store.clone(), Self::blob_path(org, sha256), self.part_bytes);
        let copied = match tokio::io::copy_buf(&mut kept, &mut writer).await {
            Ok(_) => writer.shutdown().await,
            Err(e) => Err(e),
        };
        if let Err(e) = copied {
            // An S3 multipart upload begun is abandoned, not left to the bucket's lifecycle.
            let _ = writer.abort().await;
            return Err(e.to_string());
        }
        let thumbnail = match thumbnail {
            Ok(small) => {
                self.store.put(&Self::thumbnail_path(org, sha256), small.into()).await.map_err(|e| e.to_string())?;
                true
            }
            Err(why) => {
                tracing::info!(error = %why, "attachment kept without a thumbnail");
                false
            }
        };
        self.delete_object(staging.as_ref()).await;
        Ok(Ok(Assembled { mime: mime.to_owned(), size: size as i64, thumbnail, picture_seconds: Some(seconds) }))
    }

    /// A blob's bytes (`thumbnail`: its thumbnail's), streamed from the store: `None` when the
    /// store has none.
    pub async fn open(
        &self,
        org: &str,
        sha256: &str,
        thumbnail: bool,
    ) -> Result<Option<object_store::GetResult>, String> {
        let path = if thumbnail { Self::thumbnail_path(org, sha256) } else { Self::blob_path(org, sha256) };
        match self.store.get(&path).await {
            Ok(got) => Ok(Some(got)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Deletes every object of an upload (its chunks, and an assembly a failure cut off).
    pub async fn delete_upload_objects(&self, upload: &str) -> Result<(), String> {
        for name in self.list(&format!("uploads/{upload}")).await? {
            self.delete_object(&name).await;
        }
        Ok(())
    }

    /// Deletes a blob and its thumbnail.
    pub async fn delete_blob(&self, org: &str, sha256: &str) {
        self.delete_object(Self::blob_path(org, sha256).as_ref()).await;
        self.delete_object(Self::thumbnail_path(org, sha256).as_ref()).await;
    }

    /// Whether the organization's blob is in the store.
    pub async fn has(&self, org: &str, sha256: &str) -> bool {
        self.store.head(&Self::blob_path(org, sha256)).await.is_ok()
    }
}
