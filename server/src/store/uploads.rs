//! Attachments' bytes (docs/attachments.md): the organization's blobs by content hash and the
//! resumable uploads that bring them, with each upload's chunks. The bytes themselves are in the
//! blob store (`crate::blobs`); this file keeps what is known of them.

use super::*;

/// An upload as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRecord {
    pub id: String,
    pub org: String,
    pub user: String,
    pub sha256: String,
    /// `photo`, `signature` or `file`.
    pub kind: String,
    pub length: i64,
    /// The bytes the server holds, from the first.
    pub received: i64,
    /// `open`, `complete` or `failed`.
    pub state: String,
    /// Why it failed (an error code), when it did.
    pub fault: Option<String>,
}

/// A chunk of an upload: where it starts, how long it is, its object in the blob store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRecord {
    pub start: i64,
    pub length: i64,
    pub object: String,
}

/// A blob as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRecord {
    pub sha256: String,
    pub size: i64,
    pub mime: String,
    pub created_at: i64,
    /// Whether the blob store holds a thumbnail of it.
    pub thumbnail: bool,
}

/// What an order's reference to a blob finds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Referenced {
    /// The order references no such blob.
    No,
    /// The order references it; its bytes have not arrived.
    NotUploaded,
    Blob(BlobRecord),
}

/// An upload nobody finished, and the chunks it left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abandoned {
    pub id: String,
    pub objects: Vec<String>,
}

type UploadTuple = (String, String, String, String, String, i64, i64, String, Option<String>);

fn upload_of(row: UploadTuple) -> UploadRecord {
    let (id, org, user, sha256, kind, length, received, state, fault) = row;
    UploadRecord { id, org, user, sha256, kind, length, received, state, fault }
}

const UPLOAD_COLUMNS: &str = "id, org_id, user_id, sha256, kind, length, received, state, fault";

#[async_trait]
pub trait Uploads: Send + Sync {
    /// A new upload, open with nothing received; `false` when the user already has `max_open`
    /// open uploads.
    async fn create_upload(&self, upload: &UploadRecord, max_open: i64, now_ms: i64) -> Result<bool>;
    /// An upload of the organization.
    async fn upload(&self, org: &str, id: &str) -> Result<Option<UploadRecord>>;
    /// Records a chunk received at `start` (the upload's `received` when it began): `false`, and
    /// nothing recorded, when the upload is no longer open at that offset (another request's
    /// chunk came first).
    async fn add_chunk(&self, id: &str, chunk: &ChunkRecord, now_ms: i64) -> Result<bool>;
    /// An upload's chunks, in order.
    async fn chunks(&self, id: &str) -> Result<Vec<ChunkRecord>>;
    /// Ends an upload: complete with its blob recorded (once per organization and hash), or
    /// failed with a fault; its chunk records go.
    async fn finish_upload(&self, id: &str, blob: Result<&BlobRecord, &str>, by: &str, now_ms: i64) -> Result<()>;
    /// An organization's blob.
    async fn blob(&self, org: &str, sha256: &str) -> Result<Option<BlobRecord>>;
    /// The organization's blob, if `user` completed an upload of it (sent its bytes, or found
    /// them held): what the desk's attaching takes, so that knowing a hash is not enough.
    async fn uploaded_by(&self, org: &str, user: &str, sha256: &str) -> Result<Option<BlobRecord>>;
    /// Forgets an open upload (its client ended it); its chunks' records go.
    async fn delete_upload(&self, id: &str) -> Result<()>;
    /// The blobs an order references, each with the phase it was attached at and what the
    /// server holds of it (`None`: not uploaded): sha256 → (phase, blob).
    async fn order_blobs(&self, org: &str, order: OrderId) -> Result<HashMap<String, (String, Option<BlobRecord>)>>;
    /// What the order's reference to blob `sha256` finds (the caller has checked the order is
    /// in the principal's scope).
    async fn referenced(&self, org: &str, order: OrderId, sha256: &str) -> Result<Referenced>;
    /// Blobs no order references whose grace period ended before `before_ms` (from when they
    /// were stored, or lost their last reference, whichever is later), at most `limit`.
    async fn collectable_blobs(&self, before_ms: i64, limit: i64) -> Result<Vec<(String, BlobRecord)>>;
    /// Forgets a blob if it is still collectable (no reference came since), under the
    /// organization's lock (so no push adding a reference is between its check and its
    /// commit): whether it did.
    async fn forget_blob(&self, org: &str, sha256: &str, before_ms: i64) -> Result<bool>;
    /// A blob stored again (its bytes uploaded anew, or found held at an upload's creation):
    /// its grace period starts again now.
    async fn touch_blob(&self, org: &str, sha256: &str, now_ms: i64) -> Result<()>;
    /// The one-time backfill of the references of orders written before references were kept
    /// (migration 0032/0033): the next `limit` orders by id, each document read and its
    /// references added; where it got to is kept in `meta`. Whether orders remain.
    async fn backfill_references(&self, limit: i64) -> Result<bool>;
    /// Open uploads that received nothing since `before_ms`, at most `limit`, with their
    /// chunks' objects; their records are deleted (the caller deletes the objects).
    async fn abandon_uploads(&self, before_ms: i64, limit: i64) -> Result<Vec<Abandoned>>;
}

impl<B: Backend> Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    for<'s> &'s str: sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
{
    /// Records how a push changed the blobs an order references (the writer, under the
    /// organization's lock, which collection takes too); the blobs it no longer references
    /// start their grace period now.
    pub(crate) async fn set_references(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        order_id: &str,
        references: &crate::replication::References,
        now_ms: i64,
    ) -> Result<()> {
        for (sha256, attached) in &references.added {
            Self::add_reference(tx, org, order_id, sha256, attached).await?;
        }
        for sha256 in &references.released {
            sqlx::query("DELETE FROM attachment_refs WHERE org_id = $1 AND sha256 = $2 AND order_id = $3")
                .bind(org)
                .bind(sha256.as_str())
                .bind(order_id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("UPDATE blobs SET released_at = $3 WHERE org_id = $1 AND sha256 = $2")
                .bind(org)
                .bind(sha256.as_str())
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn add_reference(
        tx: &mut sqlx::Transaction<'_, B>,
        org: &str,
        order_id: &str,
        sha256: &str,
        attached: &crate::replication::Attached,
    ) -> Result<()> {
        let by = attached.by.to_string();
        sqlx::query(
            "INSERT INTO attachment_refs (org_id, sha256, order_id, phase, attached_by) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (org_id, sha256, order_id) DO NOTHING",
        )
        .bind(org)
        .bind(sha256)
        .bind(order_id)
        .bind(attached.phase)
        .bind(by.as_str())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Where the backfill of references got to (`meta`): the last order id done, or `done`.
const BACKFILL_KEY: &str = "references_backfilled_to";

/// A blob no order references, stored (or released) before `$1`.
const COLLECTABLE: &str =
    "NOT EXISTS (SELECT 1 FROM attachment_refs r WHERE r.org_id = b.org_id AND r.sha256 = b.sha256)
     AND b.created_at < $1 AND COALESCE(b.released_at, 0) < $1";

const BLOB_COLUMNS: &str = "sha256, size, mime, created_at, thumbnail";

type BlobTuple = (String, i64, String, i64, bool);

fn blob_of((sha256, size, mime, created_at, thumbnail): BlobTuple) -> BlobRecord {
    BlobRecord { sha256, size, mime, created_at, thumbnail }
}

#[async_trait]
impl<B: Backend> Uploads for Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::ColumnIndex<B::Row> + sqlx::Encode<'s, B> + sqlx::Type<B>,
    for<'s> &'s [u8]: sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    i32: Column<B>,
    bool: Column<B>,
    String: Column<B>,
    Vec<u8>: Column<B>,
    Option<i64>: Column<B>,
    Option<String>: Column<B>,
    Option<Vec<u8>>: Column<B>,
    for<'s> Option<&'s str>: sqlx::Encode<'s, B>,
{
    async fn create_upload(&self, upload: &UploadRecord, max_open: i64, now_ms: i64) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        let (open,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM uploads WHERE user_id = $1 AND state = 'open'")
            .bind(upload.user.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if open >= max_open {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO uploads (id, org_id, user_id, sha256, kind, length, received, state, fault, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(upload.id.as_str())
        .bind(upload.org.as_str())
        .bind(upload.user.as_str())
        .bind(upload.sha256.as_str())
        .bind(upload.kind.as_str())
        .bind(upload.length)
        .bind(upload.received)
        .bind(upload.state.as_str())
        .bind(upload.fault.as_deref())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn upload(&self, org: &str, id: &str) -> Result<Option<UploadRecord>> {
        let row: Option<UploadTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE org_id = $1 AND id = $2"
        )))
        .bind(org)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(upload_of))
    }

    async fn add_chunk(&self, id: &str, chunk: &ChunkRecord, now_ms: i64) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        let moved = sqlx::query(
            "UPDATE uploads SET received = received + $3, updated_at = $4
             WHERE id = $1 AND state = 'open' AND received = $2 AND received + $3 <= length",
        )
        .bind(id)
        .bind(chunk.start)
        .bind(chunk.length)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO upload_chunks (upload_id, start, length, object) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(chunk.start)
            .bind(chunk.length)
            .bind(chunk.object.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn chunks(&self, id: &str) -> Result<Vec<ChunkRecord>> {
        let rows: Vec<(i64, i64, String)> =
            sqlx::query_as("SELECT start, length, object FROM upload_chunks WHERE upload_id = $1 ORDER BY start")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(start, length, object)| ChunkRecord { start, length, object }).collect())
    }

    async fn finish_upload(&self, id: &str, blob: Result<&BlobRecord, &str>, by: &str, now_ms: i64) -> Result<()> {
        let mut tx = B::begin_write(&self.pool).await?;
        let (state, fault) = match blob {
            Ok(_) => ("complete", None),
            Err(fault) => ("failed", Some(fault)),
        };
        sqlx::query("UPDATE uploads SET state = $2, fault = $3, updated_at = $4 WHERE id = $1")
            .bind(id)
            .bind(state)
            .bind(fault)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        if let Ok(blob) = blob {
            sqlx::query(
                "INSERT INTO blobs (org_id, sha256, size, mime, created_at, created_by, thumbnail)
                 SELECT org_id, $2, $3, $4, $5, $6, $7 FROM uploads WHERE id = $1
                 ON CONFLICT (org_id, sha256) DO UPDATE SET released_at = excluded.created_at",
            )
            .bind(id)
            .bind(blob.sha256.as_str())
            .bind(blob.size)
            .bind(blob.mime.as_str())
            .bind(now_ms)
            .bind(by)
            .bind(blob.thumbnail)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM upload_chunks WHERE upload_id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn blob(&self, org: &str, sha256: &str) -> Result<Option<BlobRecord>> {
        let row: Option<BlobTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {BLOB_COLUMNS} FROM blobs WHERE org_id = $1 AND sha256 = $2"
        )))
        .bind(org)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(blob_of))
    }

    async fn uploaded_by(&self, org: &str, user: &str, sha256: &str) -> Result<Option<BlobRecord>> {
        let theirs: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM uploads
                            WHERE org_id = $1 AND user_id = $2 AND sha256 = $3 AND state = 'complete')",
        )
        .bind(org)
        .bind(user)
        .bind(sha256)
        .fetch_one(&self.pool)
        .await?;
        if !theirs {
            return Ok(None);
        }
        self.blob(org, sha256).await
    }

    async fn order_blobs(&self, org: &str, order: OrderId) -> Result<HashMap<String, (String, Option<BlobRecord>)>> {
        type Row = (String, String, Option<i64>, Option<String>, Option<i64>, bool);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT r.sha256, r.phase, b.size, b.mime, b.created_at, COALESCE(b.thumbnail, FALSE)
             FROM attachment_refs r
             LEFT JOIN blobs b ON b.org_id = r.org_id AND b.sha256 = r.sha256 AND EXISTS (
                 SELECT 1 FROM uploads u WHERE u.org_id = r.org_id AND u.user_id = r.attached_by
                   AND u.sha256 = r.sha256 AND u.state = 'complete')
             WHERE r.org_id = $1 AND r.order_id = $2",
        )
        .bind(org)
        .bind(order.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(sha256, phase, size, mime, created_at, thumbnail)| {
                let blob = match (size, mime, created_at) {
                    (Some(size), Some(mime), Some(created_at)) => {
                        Some(BlobRecord { sha256: sha256.clone(), size, mime, created_at, thumbnail })
                    }
                    _ => None,
                };
                (sha256, (phase, blob))
            })
            .collect())
    }

    async fn referenced(&self, org: &str, order: OrderId, sha256: &str) -> Result<Referenced> {
        // Referenced, and the bytes uploaded by whoever attached them (a hash copied from
        // another order, by someone who never had the bytes, reaches nothing).
        let found: Option<bool> = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM uploads u WHERE u.org_id = r.org_id AND u.user_id = r.attached_by
                              AND u.sha256 = r.sha256 AND u.state = 'complete')
             FROM attachment_refs r WHERE r.org_id = $1 AND r.sha256 = $2 AND r.order_id = $3",
        )
        .bind(org)
        .bind(sha256)
        .bind(order.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match found {
            None => Referenced::No,
            Some(false) => Referenced::NotUploaded,
            Some(true) => match self.blob(org, sha256).await? {
                Some(blob) => Referenced::Blob(blob),
                None => Referenced::NotUploaded,
            },
        })
    }

    async fn collectable_blobs(&self, before_ms: i64, limit: i64) -> Result<Vec<(String, BlobRecord)>> {
        let rows: Vec<(String, String, i64, String, i64, bool)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT b.org_id, b.sha256, b.size, b.mime, b.created_at, b.thumbnail FROM blobs b
             WHERE {COLLECTABLE} ORDER BY b.created_at LIMIT $2"
        )))
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(org, sha256, size, mime, created_at, thumbnail)| {
                (org, blob_of((sha256, size, mime, created_at, thumbnail)))
            })
            .collect())
    }

    async fn forget_blob(&self, org: &str, sha256: &str, before_ms: i64) -> Result<bool> {
        let mut tx = B::begin_write(&self.pool).await?;
        B::lock_org(&mut tx, org).await?;
        let gone = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM blobs AS b WHERE b.org_id = $2 AND b.sha256 = $3 AND {COLLECTABLE}"
        )))
        .bind(before_ms)
        .bind(org)
        .bind(sha256)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(gone.rows_affected() == 1)
    }

    async fn touch_blob(&self, org: &str, sha256: &str, now_ms: i64) -> Result<()> {
        sqlx::query("UPDATE blobs SET released_at = $3 WHERE org_id = $1 AND sha256 = $2")
            .bind(org)
            .bind(sha256)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn backfill_references(&self, limit: i64) -> Result<bool> {
        const DONE: &str = "done";
        let at: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(BACKFILL_KEY)
            .fetch_optional(&self.pool)
            .await?;
        let after = at.unwrap_or_default();
        if after == DONE {
            return Ok(false);
        }
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT org_id, id FROM orders WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        for (org, id) in &rows {
            let order: OrderId = id.parse().map_err(|_| StoreError::corrupt("order id", id))?;
            // An order that does not load is quarantined by the read; it references nothing here.
            let Ok(Some((_, document, _))) = self.committed_order(org, order).await else { continue };
            let phases = crate::replication::phases(&document);
            if phases.is_empty() {
                continue;
            }
            let mut tx = B::begin_write(&self.pool).await?;
            for (sha256, attached) in &phases {
                Self::add_reference(&mut tx, org, id, sha256, attached).await?;
            }
            tx.commit().await?;
        }
        let reached =
            if (rows.len() as i64) < limit { DONE } else { rows.last().map(|(_, id)| id.as_str()).unwrap_or(DONE) };
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(BACKFILL_KEY)
        .bind(reached)
        .execute(&self.pool)
        .await?;
        Ok(reached != DONE)
    }

    async fn abandon_uploads(&self, before_ms: i64, limit: i64) -> Result<Vec<Abandoned>> {
        let mut tx = B::begin_write(&self.pool).await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM uploads WHERE state = 'open' AND updated_at < $1 ORDER BY updated_at LIMIT $2",
        )
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut abandoned = Vec::with_capacity(ids.len());
        for id in ids {
            let objects: Vec<String> = sqlx::query_scalar("SELECT object FROM upload_chunks WHERE upload_id = $1")
                .bind(id.as_str())
                .fetch_all(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM upload_chunks WHERE upload_id = $1").bind(id.as_str()).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
            abandoned.push(Abandoned { id, objects });
        }
        tx.commit().await?;
        Ok(abandoned)
    }

    async fn delete_upload(&self, id: &str) -> Result<()> {
        let mut tx = B::begin_write(&self.pool).await?;
        sqlx::query("DELETE FROM upload_chunks WHERE upload_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM uploads WHERE id = $1 AND state = 'open'").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
