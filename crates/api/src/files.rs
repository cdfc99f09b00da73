//! Deposited files: streamed to disk while hashed and measured, refused past the size limit
//! without ever holding the whole file in memory, recognised by content (PDF, JPEG, PNG), then
//! stored content-addressed by SHA-256 under the data folder.

use std::path::PathBuf;

use axum::body::Body;
use cachet_domain::dossier::{FileRef, MediaType};
use cachet_domain::ids::Sha256Hex;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;

#[derive(Clone, Debug)]
pub struct FileStore {
    root: PathBuf,
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

impl FileStore {
    pub fn new(root: PathBuf, max_bytes: u64) -> Self {
        Self { root, max_bytes }
    }

    fn path_of(&self, sha256: &str) -> PathBuf {
        self.root.join("sha256").join(&sha256[..2]).join(sha256)
    }

    /// Streams a request body into the store.
    pub async fn put(&self, body: Body, filename: &str) -> Result<FileRef, ApiError> {
        let tmp_dir = self.root.join("tmp");
        tokio::fs::create_dir_all(&tmp_dir).await.map_err(|e| ApiError::internal("create upload folder", e))?;
        let tmp = tmp_dir.join(uuid::Uuid::new_v4().to_string());
        let result = self.receive(body, &tmp, filename).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    async fn receive(&self, body: Body, tmp: &std::path::Path, filename: &str) -> Result<FileRef, ApiError> {
        let mut file = tokio::fs::File::create(tmp).await.map_err(|e| ApiError::internal("create upload file", e))?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut head: Vec<u8> = Vec::with_capacity(16);
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|_| ApiError::BadRequest("Le transfert du fichier a été interrompu.".to_owned()))?;
            size += chunk.len() as u64;
            if size > self.max_bytes {
                return Err(ApiError::TooLarge(format!(
                    "Le fichier dépasse la taille maximale de {}.",
                    describe_size(self.max_bytes)
                )));
            }
            if head.len() < 16 {
                head.extend(chunk.iter().take(16 - head.len()));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| ApiError::internal("write upload", e))?;
        }
        file.sync_all().await.map_err(|e| ApiError::internal("sync upload", e))?;
        drop(file);
        if size == 0 {
            return Err(ApiError::Unprocessable("Le fichier est vide.".to_owned()));
        }
        let media_type = sniff(&head).ok_or_else(|| {
            ApiError::UnsupportedMediaType(
                "Seuls les fichiers PDF, JPEG ou PNG sont acceptés : le contenu de ce fichier n'est ni un PDF ni une image JPEG ou PNG."
                    .to_owned(),
            )
        })?;
        let digest = hex::encode(hasher.finalize());
        let target = self.path_of(&digest);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| ApiError::internal("create file folder", e))?;
        }
        tokio::fs::rename(tmp, &target).await.map_err(|e| ApiError::internal("store upload", e))?;
        let sha256 = Sha256Hex::parse(&digest).map_err(|e| ApiError::internal("hash", e))?;
        Ok(FileRef { sha256, size, media_type, filename: sanitise_filename(filename) })
    }

    /// Stores bytes already in memory (demo data, generated documents).
    pub async fn put_bytes(&self, bytes: Vec<u8>, filename: &str) -> Result<FileRef, ApiError> {
        self.put(Body::from(bytes), filename).await
    }

    /// The bytes of a stored file.
    pub async fn read(&self, sha256: &str) -> Result<Vec<u8>, ApiError> {
        if Sha256Hex::parse(sha256).is_err() {
            return Err(ApiError::NotFound("Ce fichier n'existe pas.".to_owned()));
        }
        tokio::fs::read(self.path_of(sha256))
            .await
            .map_err(|_| ApiError::NotFound("Ce fichier n'existe pas.".to_owned()))
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
}
