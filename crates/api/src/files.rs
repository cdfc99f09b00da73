//! Deposited files: streamed to the object store while hashed and measured, refused past the size
//! limit without ever holding the whole file in memory, recognised by content (PDF, JPEG, PNG),
//! then stored content-addressed by SHA-256.
//!
//! Storage goes through `object_store`: a local folder by default, or an S3-compatible bucket
//! (`s3://bucket/prefix`, credentials and endpoint from the standard `AWS_*` variables). Layout,
//! relative to the folder or prefix:
//!
//! - `tmp/<uuid>`: an upload in progress, removed on any failure;
//! - `sha256/<first 2 hex>/<hash>`: a stored file, moved there once complete and accepted.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use cachet_domain::dossier::{FileRef, MediaType};
use cachet_domain::ids::Sha256Hex;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

use crate::error::ApiError;

/// Below this, an upload is buffered and written with one request; above it, it is written in
/// parts of this size. Small for a local folder: nothing is gained by buffering.
const LOCAL_PART_BYTES: usize = 256 * 1024;
/// S3 refuses multipart parts under 5 MiB (except the last one).
const S3_PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts being written at the same time, at most.
const MAX_PARTS_IN_FLIGHT: usize = 2;
/// The type is decided once this many bytes have arrived (the signatures are shorter).
const HEAD_BYTES: usize = 16;

/// The error of an unusable storage configuration, at start-up.
#[derive(Debug, thiserror::Error)]
pub enum FileStoreError {
    #[error("Adresse de stockage des fichiers non reconnue : {0} (attendu : file:///chemin ou s3://seau/prefixe)")]
    UnknownUrl(String),
    #[error("Impossible d'ouvrir le dossier des pièces {path} : {cause}")]
    Local { path: String, cause: String },
    #[error("Configuration du stockage S3 invalide : {0}")]
    S3(String),
}

#[derive(Clone, Debug)]
pub struct FileStore {
    /// The local folder to open on first use (`FileStore::new`); `None` when already open.
    lazy_root: Option<PathBuf>,
    store: Arc<OnceCell<Arc<dyn ObjectStore>>>,
    part_bytes: usize,
    pub max_bytes: u64,
}

/// The type of a file, from its first bytes.
pub fn sniff(head: &[u8]) -> Option<MediaType> {
    if head.starts_with(b"%PDF-") {
        Some(MediaType::Pdf)
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(MediaType::Jpeg)
    } else if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(MediaType::Png)
    } else {
        None
    }
}

/// The MIME type of a stored piece, from the media type code its read model keeps.
pub fn content_type(media_type: Option<&str>) -> &'static str {
    match media_type {
        Some("pdf") => "application/pdf",
        Some("jpeg") => "image/jpeg",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// Keeps the last path component, and only letters, digits, spaces and `.-_`; at most 100
/// characters.
pub fn sanitise_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_alphanumeric() || " .-_".contains(c) { c } else { '_' })
        .collect::<String>()
        .trim_matches(|c: char| c == '.' || c.is_whitespace())
        .chars()
        .take(100)
        .collect();
    if cleaned.is_empty() {
        "piece".to_owned()
    } else {
        cleaned
    }
}

/// A size limit in French units: `10 Mio`, or `64 Kio` below one mebibyte (rounded down, so
/// the limit shown is never more than the real one).
pub fn describe_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB {
        format!("{} Mio", bytes / MIB)
    } else if bytes >= 1024 {
        format!("{} Kio", bytes / 1024)
    } else {
        format!("{bytes} octets")
    }
}

fn too_large(max_bytes: u64) -> ApiError {
    ApiError::TooLarge(format!("Le fichier dépasse la taille maximale de {}.", describe_size(max_bytes)))
}

fn not_found() -> ApiError {
    ApiError::NotFound("Ce fichier n'existe pas.".to_owned())
}

/// Where a stored file lives.
fn object_path(sha256: &str) -> ObjectPath {
    ObjectPath::from_iter(["sha256", &sha256[..2], sha256])
}

/// A local folder as an object store, created if missing.
fn open_local(root: &std::path::Path) -> Result<Arc<dyn ObjectStore>, FileStoreError> {
    let failed = |cause: String| FileStoreError::Local { path: root.display().to_string(), cause };
    std::fs::create_dir_all(root).map_err(|e| failed(e.to_string()))?;
    let store = LocalFileSystem::new_with_prefix(root).map_err(|e| failed(e.to_string()))?;
    Ok(Arc::new(store))
}

/// Decodes the `%XX` escapes of a URL path.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The error a stream gives when the transfer fails: the request body limit is a 413, anything
/// else an interrupted transfer.
fn transfer_error(error: axum::BoxError, max_bytes: u64) -> ApiError {
    if let Some(multipart) = error.downcast_ref::<axum::extract::multipart::MultipartError>() {
        if multipart.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            return too_large(max_bytes);
        }
    }
    tracing::debug!(%error, "upload interrupted");
    ApiError::BadRequest("Le transfert du fichier a été interrompu.".to_owned())
}

/// An upload to a temporary object. Unless `keep` is called, the partial upload and the
/// temporary object are removed: by `discard`, or in the background when dropped (a request
/// cancelled mid-upload).
struct TempUpload {
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
    /// `None` once completion has started.
    writer: Option<BufWriter>,
    armed: bool,
}

impl TempUpload {
    fn new(store: Arc<dyn ObjectStore>, part_bytes: usize) -> Self {
        let location = ObjectPath::from_iter(["tmp".to_owned(), uuid::Uuid::new_v4().to_string()]);
        let writer = BufWriter::with_capacity(store.clone(), location.clone(), part_bytes)
            .with_max_concurrency(MAX_PARTS_IN_FLIGHT);
        Self { store, location, writer: Some(writer), armed: true }
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), ApiError> {
        let writer = self.writer.as_mut().ok_or_else(|| ApiError::Internal("upload already completed".to_owned()))?;
        writer.put(chunk).await.map_err(|e| ApiError::internal("write upload", e))
    }

    /// Completes the temporary object.
    async fn complete(&mut self) -> Result<(), ApiError> {
        let mut writer = self.writer.take().ok_or_else(|| ApiError::Internal("upload already completed".to_owned()))?;
        writer.shutdown().await.map_err(|e| ApiError::internal("complete upload", e))
    }

    /// The temporary object was moved away: nothing to clean up.
    fn keep(mut self) {
        self.armed = false;
    }

    async fn discard(mut self) {
        // Still armed meanwhile: if this is cancelled, dropping finishes the job.
        remove(self.store.clone(), self.location.clone(), self.writer.take()).await;
        self.armed = false;
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(remove(self.store.clone(), self.location.clone(), self.writer.take()));
        } else {
            tracing::warn!(location = %self.location, "temporary upload left behind");
        }
    }
}

/// Aborts a partial upload and deletes a temporary object, logging what fails.
async fn remove(store: Arc<dyn ObjectStore>, location: ObjectPath, writer: Option<BufWriter>) {
    if let Some(mut writer) = writer {
        if let Err(error) = writer.abort().await {
            tracing::warn!(%location, %error, "failed to abort a partial upload");
        }
    }
    match store.delete(&location).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(error) => tracing::warn!(%location, %error, "failed to delete a temporary upload"),
    }
}

impl FileStore {
    /// Files in a local folder, created on first use.
    pub fn new(root: PathBuf, max_bytes: u64) -> Self {
        Self { lazy_root: Some(root), store: Arc::new(OnceCell::new()), part_bytes: LOCAL_PART_BYTES, max_bytes }
    }

    fn with_store(store: Arc<dyn ObjectStore>, part_bytes: usize, max_bytes: u64) -> Self {
        Self { lazy_root: None, store: Arc::new(OnceCell::new_with(Some(store))), part_bytes, max_bytes }
    }

    /// The storage named by `url`: `None` or `file:///path` for a local folder (`local_root`
    /// by default), `s3://bucket/prefix` for an S3-compatible bucket configured by the standard
    /// `AWS_*` variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`…).
    pub fn open(local_root: PathBuf, url: Option<&str>, max_bytes: u64) -> Result<FileStore, FileStoreError> {
        let unknown = || FileStoreError::UnknownUrl(url.unwrap_or_default().to_owned());
        let Some(url) = url.map(str::trim).filter(|url| !url.is_empty()) else {
            return Ok(Self::with_store(open_local(&local_root)?, LOCAL_PART_BYTES, max_bytes));
        };
        if let Some(rest) = url.strip_prefix("file://") {
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(unknown());
            }
            let path = percent_decode(path).ok_or_else(unknown)?;
            return Ok(Self::with_store(open_local(std::path::Path::new(&path))?, LOCAL_PART_BYTES, max_bytes));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || prefix.contains("//") {
                return Err(unknown());
            }
            let s3 = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| FileStoreError::S3(e.to_string()))?;
            let prefix = prefix.trim_matches('/');
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                let prefix = ObjectPath::parse(prefix).map_err(|_| unknown())?;
                Arc::new(PrefixStore::new(s3, prefix))
            };
            return Ok(Self::with_store(store, S3_PART_BYTES, max_bytes));
        }
        Err(unknown())
    }

    async fn store(&self) -> Result<Arc<dyn ObjectStore>, ApiError> {
        let store = self
            .store
            .get_or_try_init(|| async {
                let root = self.lazy_root.clone().ok_or_else(|| ApiError::Internal("no file storage".to_owned()))?;
                tokio::task::spawn_blocking(move || open_local(&root))
                    .await
                    .map_err(|e| ApiError::internal("open file storage", e))?
                    .map_err(|e| ApiError::internal("open file storage", e))
            })
            .await?;
        Ok(store.clone())
    }

    /// Streams a request body into the store.
    pub async fn put(&self, body: Body, filename: &str) -> Result<FileRef, ApiError> {
        self.put_stream(body.into_data_stream(), filename).await
    }

    /// Stores bytes already in memory (demo data, generated documents).
    pub async fn put_bytes(&self, bytes: Vec<u8>, filename: &str) -> Result<FileRef, ApiError> {
        let once = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(Bytes::from(bytes)) });
        self.put_stream(once, filename).await
    }

    /// Streams a file into the store: written to a temporary object while hashed and measured,
    /// refused as soon as it is too large, refused if empty or not a PDF, JPEG or PNG (nothing
    /// more is written once the first bytes show the type is wrong), then moved to its content
    /// address. On any error nothing is left behind. A multipart field
    /// (`axum::extract::multipart::Field`) is such a stream.
    pub async fn put_stream<S, E>(&self, stream: S, filename: &str) -> Result<FileRef, ApiError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: Into<axum::BoxError>,
    {
        let store = self.store().await?;
        let mut upload = TempUpload::new(store.clone(), self.part_bytes);
        match self.receive(stream, filename, &mut upload).await {
            Ok((file, target)) => {
                // Content-addressed: a file already there has the same bytes.
                let stored = match store.head(&target).await {
                    Ok(_) => true,
                    Err(object_store::Error::NotFound { .. }) => false,
                    Err(e) => {
                        upload.discard().await;
                        return Err(ApiError::internal("check stored file", e));
                    }
                };
                if stored {
                    upload.discard().await;
                } else if let Err(e) = store.rename(&upload.location, &target).await {
                    upload.discard().await;
                    return Err(ApiError::internal("store upload", e));
                } else {
                    upload.keep();
                }
                Ok(file)
            }
            Err(error) => {
                upload.discard().await;
                Err(error)
            }
        }
    }

    /// Receives the whole stream into the temporary object; gives the file and its address.
    async fn receive<S, E>(
        &self,
        stream: S,
        filename: &str,
        upload: &mut TempUpload,
    ) -> Result<(FileRef, ObjectPath), ApiError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: Into<axum::BoxError>,
    {
        let unsupported = || {
            ApiError::UnsupportedMediaType(
                "Seuls les fichiers PDF, JPEG ou PNG sont acceptés : le contenu de ce fichier n'est ni un PDF ni une image JPEG ou PNG."
                    .to_owned(),
            )
        };
        let mut stream = std::pin::pin!(stream);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut head: Vec<u8> = Vec::with_capacity(HEAD_BYTES);
        // Decided once the first bytes are in: `Some(None)` for a refused type, whose remaining
        // bytes are still read (not stored) so that a file too large is refused as such.
        let mut sniffed: Option<Option<MediaType>> = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| transfer_error(e.into(), self.max_bytes))?;
            size += chunk.len() as u64;
            if size > self.max_bytes {
                return Err(too_large(self.max_bytes));
            }
            if sniffed.is_none() {
                head.extend(chunk.iter().take(HEAD_BYTES - head.len()));
                if head.len() == HEAD_BYTES {
                    sniffed = Some(sniff(&head));
                }
            }
            if sniffed == Some(None) {
                continue;
            }
            hasher.update(&chunk);
            upload.write(chunk).await?;
        }
        if size == 0 {
            return Err(ApiError::Unprocessable("Le fichier est vide.".to_owned()));
        }
        let media_type = sniffed.unwrap_or_else(|| sniff(&head)).ok_or_else(unsupported)?;
        upload.complete().await?;
        let digest = hex::encode(hasher.finalize());
        let sha256 = Sha256Hex::parse(&digest).map_err(|e| ApiError::internal("hash", e))?;
        let file = FileRef { sha256, size, media_type, filename: sanitise_filename(filename) };
        Ok((file, object_path(&digest)))
    }

    /// The size and bytes of a stored file, as a stream.
    pub async fn read_stream(
        &self,
        sha256: &str,
    ) -> Result<(u64, BoxStream<'static, Result<Bytes, std::io::Error>>), ApiError> {
        if Sha256Hex::parse(sha256).is_err() {
            return Err(not_found());
        }
        let store = self.store().await?;
        match store.get(&object_path(sha256)).await {
            Ok(result) => {
                let size = result.meta.size;
                Ok((size, result.into_stream().map_err(std::io::Error::from).boxed()))
            }
            Err(object_store::Error::NotFound { .. }) => Err(not_found()),
            Err(e) => Err(ApiError::internal("read file", e)),
        }
    }

    /// The bytes of a stored file.
    pub async fn read(&self, sha256: &str) -> Result<Vec<u8>, ApiError> {
        let (size, mut stream) = self.read_stream(sha256).await?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or_default());
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| ApiError::internal("read file", e))?);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_recognised_by_content() {
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(MediaType::Pdf));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(MediaType::Jpeg));
        assert_eq!(sniff(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]), Some(MediaType::Png));
        assert_eq!(sniff(b"MZ\x90\x00"), None);
    }

    #[test]
    fn size_limits_are_described_in_their_unit() {
        assert_eq!(describe_size(10 * 1024 * 1024), "10 Mio");
        assert_eq!(describe_size(64 * 1024), "64 Kio");
        assert_eq!(describe_size(1000), "1000 octets");
    }

    #[test]
    fn hostile_filenames_are_made_harmless() {
        assert_eq!(sanitise_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitise_filename("C:\\x\\dossier <script>.pdf"), "dossier _script_.pdf");
        assert_eq!(sanitise_filename(".."), "piece");
        assert_eq!(sanitise_filename("relevé d'état.pdf"), "relevé d_état.pdf");
    }

    #[test]
    fn storage_urls_are_checked() {
        let dir = std::env::temp_dir();
        for url in ["http://example.org/x", "s3://", "s3:///prefix", "file://relative/path", "ftp://x"] {
            let error = FileStore::open(dir.clone(), Some(url), 1024).expect_err(url);
            assert_eq!(
                error.to_string(),
                format!(
                    "Adresse de stockage des fichiers non reconnue : {url} (attendu : file:///chemin ou s3://seau/prefixe)"
                )
            );
        }
        assert_eq!(percent_decode("/a%20b/c").as_deref(), Some("/a b/c"));
        assert_eq!(percent_decode("/a%2"), None);
    }
}
