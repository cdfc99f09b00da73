//! The file store through its public API, on a local folder: accepted files are stored once under
//! their SHA-256 and read back; refused, interrupted or cancelled uploads leave nothing behind;
//! an oversized stream is cut short. With `moto_server` on the PATH, the same on S3.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use cachet_api::error::ApiError;
use cachet_api::files::FileStore;
use cachet_domain::dossier::MediaType;
use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0xFF, 0xD9];
const PNG: &[u8] =
    &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, b'I', b'H', b'D', b'R', 0, 0, 0, 1];
const EXECUTABLE: &[u8] = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xFF\xFF\x00\x00 This program cannot be run";
const UNSUPPORTED: &str =
    "Seuls les fichiers PDF, JPEG ou PNG sont acceptés : le contenu de ce fichier n'est ni un PDF ni une image JPEG ou PNG.";

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every file under `root`, relative to it (folders left empty do not count).
fn files_under(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    out.push(path.strip_prefix(root).expect("under the root").to_owned());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// `bytes` in chunks of `size`, as a request body or a multipart field gives them.
fn chunked(bytes: &[u8], size: usize) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin {
    let chunks: Vec<_> = bytes.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    stream::iter(chunks)
}

/// A PDF of `len` bytes, with varied content.
fn big_pdf(len: usize) -> Vec<u8> {
    let mut bytes = PDF.to_vec();
    bytes.extend((0..len.saturating_sub(PDF.len())).map(|i| (i * 7 % 251) as u8));
    bytes
}

fn store(dir: &tempfile::TempDir, max_bytes: u64) -> (FileStore, PathBuf) {
    let root = dir.path().join("files");
    (FileStore::new(root.clone(), max_bytes), root)
}

#[tokio::test]
async fn pdf_jpeg_and_png_are_stored_under_their_hash_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (files, root) = store(&dir, 64 * 1024);
    for (bytes, name, media_type) in
        [(PDF, "a.pdf", MediaType::Pdf), (JPEG, "b.jpg", MediaType::Jpeg), (PNG, "c.png", MediaType::Png)]
    {
        let file = files.put(Body::from(bytes.to_vec()), name).await.unwrap();
        let hash = sha256_hex(bytes);
        assert_eq!(file.sha256.as_str(), hash);
        assert_eq!(file.size, bytes.len() as u64);
        assert_eq!(file.media_type, media_type);
        assert_eq!(file.filename, name);
        assert_eq!(files.read(&hash).await.unwrap(), bytes);
        assert!(root.join("sha256").join(&hash[..2]).join(&hash).is_file());
    }
    assert_eq!(files_under(&root).len(), 3);
    assert!(files_under(&root).iter().all(|path| path.starts_with("sha256")), "{:?}", files_under(&root));
}

#[tokio::test]
async fn a_type_is_recognised_even_when_the_first_bytes_come_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = store(&dir, 64 * 1024);
    let file = files.put_stream(chunked(PNG, 1), "scan.png").await.unwrap();
    assert_eq!(file.media_type, MediaType::Png);
    assert_eq!(files.read(file.sha256.as_str()).await.unwrap(), PNG);
}

#[tokio::test]
async fn a_file_larger_than_a_part_is_streamed_in_parts_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (files, root) = store(&dir, 2 * 1024 * 1024);
    let bytes = big_pdf(1_300_000);
    let file = files.put_stream(chunked(&bytes, 10_000), "gros.pdf").await.unwrap();
    assert_eq!(file.sha256.as_str(), sha256_hex(&bytes));
    assert_eq!(file.size, bytes.len() as u64);
    assert!(files.read(file.sha256.as_str()).await.unwrap() == bytes);
    let (size, stream) = files.read_stream(file.sha256.as_str()).await.unwrap();
    assert_eq!(size, bytes.len() as u64);
    let streamed: Vec<Bytes> = stream.map(|chunk| chunk.unwrap()).collect().await;
    assert!(streamed.concat() == bytes);
    assert_eq!(files_under(&root).len(), 1);
}

#[tokio::test]
async fn a_renamed_executable_is_refused_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let (files, root) = store(&dir, 64 * 1024);
    let error = files.put(Body::from(EXECUTABLE.to_vec()), "x.pdf").await.unwrap_err();
    assert!(matches!(error, ApiError::UnsupportedMediaType(_)), "{error:?}");
    assert_eq!(error.status(), 415);
    assert_eq!(error.to_string(), UNSUPPORTED);
    // Longer: refused all the same, and nothing past its first bytes is written.
    let mut big = EXECUTABLE.to_vec();
    big.resize(60_000, 0);
    let error = files.put_stream(chunked(&big, 4096), "x.pdf").await.unwrap_err();
    assert_eq!(error.to_string(), UNSUPPORTED);
    // As before, a file too large is refused as such, whatever its type.
    big.resize(100_000, 0);
    let error = files.put_stream(chunked(&big, 4096), "x.pdf").await.unwrap_err();
    assert_eq!(error.to_string(), "Le fichier dépasse la taille maximale de 64 Kio.");
    assert_eq!(files_under(&root), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn an_endless_stream_is_cut_at_the_limit_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let (files, root) = store(&dir, 1024);
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let endless = stream::repeat_with(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let mut chunk = if n == 0 { PDF.to_vec() } else { Vec::new() };
        chunk.resize(512, b' ');
        Ok::<_, std::io::Error>(Bytes::from(chunk))
    });
    let error = files.put_stream(endless, "sans-fin.pdf").await.unwrap_err();
    assert!(matches!(error, ApiError::TooLarge(_)), "{error:?}");
    assert_eq!(error.status(), 413);
    assert_eq!(error.to_string(), "Le fichier dépasse la taille maximale de 1 Kio.");
    assert_eq!(pulled.load(Ordering::SeqCst), 3, "stopped at the first chunk past the limit");
    assert_eq!(files_under(&root), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_file_past_the_limit_after_parts_were_written_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (files, root) = store(&dir, 600 * 1024);
    let error = files.put_stream(chunked(&big_pdf(700 * 1024), 8192), "gros.pdf").await.unwrap_err();
    assert_eq!(error.to_string(), "Le fichier dépasse la taille maximale de 600 Kio.");
    assert_eq!(files_under(&root), Vec::<PathBuf>::new());
    // Exactly at the limit is accepted.
    files.put_stream(chunked(&big_pdf(600 * 1024), 8192), "juste.pdf").await.unwrap();
    assert_eq!(files_under(&root).len(), 1);
}

#[tokio::test]
async fn an_empty_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (files, root) = store(&dir, 1024);
    for error in [
        files.put(Body::empty(), "vide.pdf").await.unwrap_err(),
        files.put_bytes(Vec::new(), "vide.pdf").await.unwrap_err(),
        files.put_stream(stream::empty::<Result<Bytes, std::io::Error>>(), "vide.pdf").await.unwrap_err(),
    ] {
        assert!(matches!(error, ApiError::Unprocessable(_)), "{error:?}");
        assert_eq!(error.to_string(), "Le fichier est vide.");
    }
    assert_eq!(files_under(&root), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn an_interrupted_transfer_is_refused_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let (files, root) = store(&dir, 2 * 1024 * 1024);
    let broken = chunked(&big_pdf(400 * 1024), 8192)
        .chain(stream::once(async { Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset")) }));
    let error = files.put_stream(broken, "coupé.pdf").await.unwrap_err();
    assert!(matches!(error, ApiError::BadRequest(_)), "{error:?}");
    assert_eq!(error.to_string(), "Le transfert du fichier a été interrompu.");
    assert_eq!(files_under(&root), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_cancelled_upload_is_cleaned_up_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let (files, root) = store(&dir, 2 * 1024 * 1024);
    // Past one part, then the client stops sending and the request is dropped.
    let stalled = chunked(&big_pdf(600 * 1024), 8192).chain(stream::pending());
    let mut put = Box::pin(files.put_stream(stalled, "abandon.pdf"));
    tokio::select! {
        result = &mut put => panic!("a stalled upload finished: {result:?}"),
        () = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
    let partial = files_under(&root);
    assert!(partial.len() == 1 && partial[0].starts_with("tmp"), "a partial upload in tmp/: {partial:?}");
    drop(put);
    for _ in 0..100 {
        if files_under(&root).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("left behind: {:?}", files_under(&root));
}

#[tokio::test]
async fn a_hostile_filename_is_sanitised() {
    let dir = tempfile::tempdir().unwrap();
    let (files, root) = store(&dir, 64 * 1024);
    let file = files.put_bytes(PDF.to_vec(), "../../etc/passwd").await.unwrap();
    assert_eq!(file.filename, "passwd");
    let file = files.put_bytes(PDF.to_vec(), "C:\\x\\dossier <script>.pdf").await.unwrap();
    assert_eq!(file.filename, "dossier _script_.pdf");
    assert!(!dir.path().join("etc").exists());
    assert_eq!(files_under(&root).len(), 1);
    assert!(files_under(dir.path()).iter().all(|path| path.starts_with("files/sha256")));
    // Reading only takes a hash.
    for bad in ["../../etc/passwd", "sha256/../x", "", &"A".repeat(64)] {
        let error = files.read(bad).await.unwrap_err();
        assert!(matches!(error, ApiError::NotFound(_)), "{bad}: {error:?}");
    }
    let error = files.read(&sha256_hex(b"never stored")).await.unwrap_err();
    assert_eq!(error.to_string(), "Ce fichier n'existe pas.");
}

#[tokio::test]
async fn the_same_content_twice_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let (files, root) = store(&dir, 64 * 1024);
    let first = files.put_bytes(PDF.to_vec(), "premier.pdf").await.unwrap();
    let second = files.put_stream(chunked(PDF, 7), "second.pdf").await.unwrap();
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(second.filename, "second.pdf");
    let hash = first.sha256.as_str();
    assert_eq!(files_under(&root), vec![PathBuf::from("sha256").join(&hash[..2]).join(hash)]);
}

#[tokio::test]
async fn a_multipart_field_is_streamed_from_another_task() {
    use axum::extract::{FromRequest, Multipart};
    let dir = tempfile::tempdir().unwrap();
    let (files, root) = store(&dir, 64 * 1024);
    let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"fichier\"; filename=\"scan.png\"\r\n\
                     Content-Type: image/png\r\n\r\n"
        .to_vec();
    body.extend_from_slice(PNG);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let request = axum::http::Request::builder()
        .method("POST")
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(Body::from(body))
        .unwrap();
    let file = tokio::spawn(async move {
        let mut multipart = Multipart::from_request(request, &()).await.unwrap();
        let field = multipart.next_field().await.unwrap().unwrap();
        let filename = field.file_name().unwrap_or_default().to_owned();
        files.put_stream(field, &filename).await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(file.media_type, MediaType::Png);
    assert_eq!(file.filename, "scan.png");
    assert_eq!(file.sha256.as_str(), sha256_hex(PNG));
    assert_eq!(files_under(&root).len(), 1);
}

#[tokio::test]
async fn storage_is_opened_from_a_url() {
    let dir = tempfile::tempdir().unwrap();
    let default = dir.path().join("files");
    let files = FileStore::open(default.clone(), None, 1024).unwrap();
    assert!(default.is_dir(), "created on opening");
    files.put_bytes(PDF.to_vec(), "a.pdf").await.unwrap();
    assert_eq!(files_under(&default).len(), 1);

    let elsewhere = dir.path().join("ail leurs");
    let url = format!("file://{}", dir.path().join("ail%20leurs").display());
    let files = FileStore::open(default.clone(), Some(&url), 1024).unwrap();
    assert_eq!(files.max_bytes, 1024);
    let file = files.put_bytes(JPEG.to_vec(), "b.jpg").await.unwrap();
    assert_eq!(files_under(&elsewhere).len(), 1);
    assert_eq!(files.read(file.sha256.as_str()).await.unwrap(), JPEG);
    assert_eq!(files_under(&default).len(), 1, "the default folder is not used");

    let error = FileStore::open(default, Some("https://exemple.fr/pieces"), 1024).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Adresse de stockage des fichiers non reconnue : https://exemple.fr/pieces (attendu : file:///chemin ou \
         s3://seau/prefixe)"
    );
}

// ---------------------------------------------------------------------------------------------
// S3, against moto_server when it is installed (`pip install 'moto[server]'`).

const BUCKET: &str = "cachet-pieces";

/// Ends the server this test started, by its id.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Starts moto_server, creates the bucket, then runs `s3_storage_inner` in a child process of
/// this test binary with the `AWS_*` variables pointing at it (no `set_var` in a threaded test).
#[tokio::test]
async fn s3_storage_against_moto_server() {
    if !on_path("moto_server") {
        println!("moto_server n'est pas installé : test S3 ignoré (pip install 'moto[server]').");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Server(
        std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto_server"),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if client.get(&endpoint).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "moto_server did not start on {endpoint}");
    let created = client.put(format!("{endpoint}/{BUCKET}")).send().await.unwrap();
    assert!(created.status().is_success(), "create bucket: {}", created.status());

    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    let output = command
        .args(["--exact", "s3_storage_inner", "--nocapture", "--test-threads", "1"])
        .env("CACHET_TEST_S3_BUCKET", BUCKET)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{report}");
    assert!(report.contains("1 passed"), "{report}");

    // No multipart upload left open either.
    let uploads = client.get(format!("{endpoint}/{BUCKET}?uploads")).send().await.unwrap().text().await.unwrap();
    assert!(!uploads.contains("<Upload>"), "{uploads}");
}

/// The S3 half of `s3_storage_against_moto_server`, run by it in a child process with the
/// endpoint in the environment; on its own (no `CACHET_TEST_S3_BUCKET`) it has nothing to do.
#[tokio::test]
async fn s3_storage_inner() {
    use object_store::ObjectStore;
    let Ok(bucket) = std::env::var("CACHET_TEST_S3_BUCKET") else {
        return;
    };
    let url = format!("s3://{bucket}/cachet/pieces");
    let unused = PathBuf::from("/nonexistent");
    let raw = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&bucket).build().unwrap();
    let keys = || async {
        let mut keys: Vec<String> = raw.list(None).map(|meta| meta.unwrap().location.to_string()).collect().await;
        keys.sort();
        keys
    };

    let files = FileStore::open(unused.clone(), Some(&url), 12 * 1024 * 1024).unwrap();
    let file = files.put_bytes(PDF.to_vec(), "a.pdf").await.unwrap();
    let hash = sha256_hex(PDF);
    assert_eq!(file.sha256.as_str(), hash);
    assert_eq!(files.read(&hash).await.unwrap(), PDF);
    let again = files.put_stream(chunked(PDF, 5), "b.pdf").await.unwrap();
    assert_eq!(again.sha256, file.sha256);
    assert_eq!(keys().await, vec![format!("cachet/pieces/sha256/{}/{hash}", &hash[..2])]);

    // Three parts of 5 MiB.
    let big = big_pdf(11 * 1024 * 1024);
    let file = files.put_stream(chunked(&big, 64 * 1024), "gros.pdf").await.unwrap();
    assert_eq!(file.sha256.as_str(), sha256_hex(&big));
    assert!(files.read(file.sha256.as_str()).await.unwrap() == big);
    assert_eq!(keys().await.len(), 2);

    let error = files.put_bytes(EXECUTABLE.to_vec(), "x.pdf").await.unwrap_err();
    assert_eq!(error.to_string(), UNSUPPORTED);
    let error = files.put_bytes(Vec::new(), "vide.pdf").await.unwrap_err();
    assert_eq!(error.to_string(), "Le fichier est vide.");
    let small = FileStore::open(unused.clone(), Some(&url), 6 * 1024 * 1024).unwrap();
    let error = small.put_stream(chunked(&big, 64 * 1024), "gros.pdf").await.unwrap_err();
    assert_eq!(error.to_string(), "Le fichier dépasse la taille maximale de 6 Mio.");
    // Cancelled after its first part: the multipart upload is aborted in the background.
    let uploads_url = format!("{}/{bucket}?uploads", std::env::var("AWS_ENDPOINT_URL").unwrap());
    let open_uploads =
        || async { reqwest::get(&uploads_url).await.unwrap().text().await.unwrap().matches("<Upload>").count() };
    let stalled = chunked(&big_pdf(6 * 1024 * 1024), 64 * 1024).chain(stream::pending());
    let mut put = Box::pin(files.put_stream(stalled, "abandon.pdf"));
    tokio::select! {
        result = &mut put => panic!("a stalled upload finished: {result:?}"),
        () = tokio::time::sleep(Duration::from_secs(3)) => {}
    }
    assert_eq!(open_uploads().await, 1, "a multipart upload in progress");
    drop(put);
    for _ in 0..100 {
        if open_uploads().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(open_uploads().await, 0, "the multipart upload is aborted");
    assert_eq!(keys().await.len(), 2, "nothing under tmp/: {:?}", keys().await);
    assert!(keys().await.iter().all(|key| key.starts_with("cachet/pieces/sha256/")));

    let error = FileStore::open(unused, Some("s3:///sans-seau"), 1024).unwrap_err();
    assert!(error.to_string().starts_with("Adresse de stockage des fichiers non reconnue"), "{error}");
}
