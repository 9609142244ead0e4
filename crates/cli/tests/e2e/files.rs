//! Agents' file uploads (#21 item 5): an agent uploads a file, it is checked against the
//! number's attachment settings, sent by id, and Twilio (the emulator, which downloads media as
//! Twilio does) fetches it from ingress at a signed URL that expires. Kept in PostgreSQL by
//! default, in S3-compatible storage (moto's S3 server) or a directory behind configuration.

use serde_json::{Value, json};
use switchboard_cli::client::status_of;

use crate::harness::*;

/// `len` bytes of a PDF (its magic number, then noise).
fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    let mut x: u32 = 0x2545_4f46;
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push(x.to_le_bytes()[0]);
    }
    bytes
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

async fn upload(agent: &Agent, conversation: &str, name: &str, content_type: &str, bytes: Vec<u8>) -> Result<Value, (u16, String)> {
    let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("name", name).finish();
    agent
        .api
        .post_bytes(&format!("/conversations/{conversation}/files?{query}"), content_type, bytes)
        .await
        .map_err(|e| (status_of(&e).unwrap_or(0), e.to_string()))
}

async fn files_stored(w: &World) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM session.files")
        .fetch_one(&w.db.pool)
        .await
        .unwrap()
}

/// Sends `file_id` in `conversation` and waits until the emulator has downloaded it; returns
/// the signed URL Twilio was given and what it fetched.
async fn sent_and_fetched(
    w: &World,
    conversation: &str,
    file_id: &str,
    customer: &str,
) -> (String, switchboard_twilio_emulator::FetchedMedia) {
    let message = w
        .ana
        .api
        .post(
            &format!("/conversations/{conversation}/messages"),
            &json!({ "media": { "file_id": file_id } }),
        )
        .await
        .unwrap();
    let media = &message["media"][0];
    assert_eq!(media["file_id"], file_id, "{message}");
    assert!(
        media["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("/api/v1/conversations/{conversation}/messages/")),
        "the API shows the file through itself, never the expiring URL: {message}"
    );
    let to = format!("whatsapp:{customer}");
    let mut found = None;
    switchboard_test_support::wait_until(WAIT, "Twilio downloaded the file", || {
        let sent = w.emulator().sent();
        found = sent.into_iter().find(|m| m.to == to && !m.media.is_empty());
        let done = found.is_some();
        async move { done }
    })
    .await;
    let sent = found.unwrap();
    (sent.media_urls[0].clone(), sent.media[0].clone())
}

#[tokio::test]
async fn an_agents_file_reaches_twilio_at_a_signed_url_that_expires() {
    let w = World::start().await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let customer = "+5511955551001";
    let conversation = w.taken_by(&w.ana, &mut ana, customer).await;

    let bytes = pdf(700 * 1024);
    let file = upload(
        &w.ana,
        &conversation,
        "../../Invoice \"March\".pdf",
        "application/pdf",
        bytes.clone(),
    )
    .await
    .unwrap();
    assert_eq!(file["file_name"], "Invoice March.pdf", "no path, no quotes: {file}");
    assert_eq!(file["content_type"], "application/pdf");
    assert_eq!(file["size_bytes"], bytes.len());
    assert_eq!(file["sha256"], hex_sha256(&bytes).as_str());
    let stored: (Option<i32>, Option<String>) =
        sqlx::query_as("SELECT octet_length(data), object_key FROM session.files WHERE id = $1::uuid")
            .bind(file["id"].as_str().unwrap())
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        (Some(i32::try_from(bytes.len()).unwrap()), None),
        "kept in PostgreSQL by default"
    );

    let (url, fetched) = sent_and_fetched(&w, &conversation, file["id"].as_str().unwrap(), customer).await;
    assert_eq!(fetched.error, None, "{fetched:?}");
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(fetched.sha256, hex_sha256(&bytes), "Twilio got the very bytes uploaded");
    assert!(
        fetched.content_disposition.as_deref().unwrap().contains("Invoice March.pdf"),
        "{fetched:?}"
    );
    assert!(url.starts_with(&w.stack.urls.ingress), "served by ingress: {url}");
    assert!(url.contains("expires=") && url.contains("signature="), "{url}");
    let path = format!("/conversations/{conversation}/messages");
    switchboard_test_support::wait_until(WAIT, "the file delivered", || async {
        let messages = w.ana.api.get(&path).await.unwrap();
        messages
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["media"][0]["file_id"] == file["id"] && (m["status"] == "delivered" || m["status"] == "read"))
    })
    .await;

    // The desk reads the sent file through the API, under its name.
    let messages = w.ana.api.get(&path).await.unwrap();
    let sent = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["media"][0]["file_id"] == file["id"])
        .unwrap();
    let read = reqwest::Client::new()
        .get(format!("{}{}", w.stack.urls.api, sent["media"][0]["url"].as_str().unwrap()))
        .bearer_auth(&w.ana.key)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["content-disposition"], "attachment; filename=\"Invoice March.pdf\"");
    assert_eq!(read.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // The link works until it expires, and only as signed.
    let http = reqwest::Client::new();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200, "still valid");
    let signature = url.split("signature=").nth(1).unwrap().split('&').next().unwrap();
    let forged = url.replace(signature, &format!("A{}", &signature[1..]));
    let forged = if forged == url {
        url.replace(signature, &format!("B{}", &signature[1..]))
    } else {
        forged
    };
    assert_eq!(http.get(&forged).send().await.unwrap().status(), 403, "a forged signature");
    let expires: i64 = url.split("expires=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
    let later = url.replace(&format!("expires={expires}"), &format!("expires={}", expires + 86_400));
    assert_eq!(http.get(&later).send().await.unwrap().status(), 403, "a stretched expiry");
    let other_file = url.replace(file["id"].as_str().unwrap(), &uuid::Uuid::now_v7().to_string());
    assert_eq!(http.get(&other_file).send().await.unwrap().status(), 403, "another file's id");
    w.clock.advance(time::Duration::hours(1) + time::Duration::seconds(5));
    let expired = http.get(&url).send().await.unwrap();
    assert_eq!(expired.status(), 403, "the link expired after url_ttl_secs");
    assert!(expired.text().await.unwrap().contains("expired"));

    // Another agent may not upload to Ana's conversation.
    let (status, _) = upload(&w.bo, &conversation, "x.pdf", "application/pdf", pdf(1024))
        .await
        .unwrap_err();
    assert_eq!(status, 403);
    ana.close().await;
    w.stop().await;
}

#[tokio::test]
async fn uploads_follow_the_numbers_attachment_settings_and_refusals_keep_nothing() {
    let w = World::start().await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let conversation = w.taken_by(&w.ana, &mut ana, "+5511955551002").await;
    // Settings are replaced as a whole: change the number's own.
    let number = format!("/numbers/{}", w.number_id);
    let mut settings = w.admin.get(&number).await.unwrap()["settings"].clone();
    settings["max_attachment_bytes"] = json!(16 * 1024 * 1024);
    w.admin
        .call(reqwest::Method::PATCH, &number, Some(&json!({ "settings": settings })))
        .await
        .unwrap();

    let refused = |result: Result<Value, (u16, String)>, status: u16, rule: &str| {
        let (got, text) = result.unwrap_err();
        assert_eq!(got, status, "{text}");
        assert!(text.contains(rule), "expected {rule}: {text}");
    };
    let six_mb = 6 * 1024 * 1024;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.resize(six_mb, 7);
    refused(
        upload(&w.ana, &conversation, "big.png", "image/png", png).await,
        422,
        "media_too_large",
    );
    refused(
        upload(
            &w.ana,
            &conversation,
            "page.png",
            "image/png",
            b"<html><script>alert(1)</script>".to_vec(),
        )
        .await,
        422,
        "file_content_mismatch",
    );
    refused(
        upload(&w.ana, &conversation, "page.html", "text/html", b"<html></html>".to_vec()).await,
        422,
        "media_type_not_allowed",
    );
    refused(
        upload(&w.ana, &conversation, "empty.pdf", "application/pdf", Vec::new()).await,
        422,
        "empty_file",
    );
    refused(
        upload(&w.ana, &conversation, "huge.pdf", "application/pdf", pdf(16 * 1024 * 1024 + 1)).await,
        413,
        "payload_too_large",
    );
    assert_eq!(files_stored(&w).await, 0, "nothing refused is kept");

    // A 6 MB PDF is within the number's 16 MB; an image of that size never is (WhatsApp's 5 MB).
    let file = upload(&w.ana, &conversation, "manual.pdf", "application/pdf", pdf(six_mb))
        .await
        .unwrap();
    assert_eq!(file["size_bytes"], six_mb);
    // WhatsApp shows no caption under a document.
    let (status, text) = w
        .ana
        .api
        .post(
            &format!("/conversations/{conversation}/messages"),
            &json!({ "media": { "file_id": file["id"], "caption": "see page 4" } }),
        )
        .await
        .map_err(|e| (status_of(&e).unwrap_or(0), e.to_string()))
        .unwrap_err();
    assert_eq!(status, 422);
    assert!(text.contains("caption_not_supported"), "{text}");

    // A file belongs to its conversation.
    let other = w.taken_by(&w.ana, &mut ana, "+5511955551003").await;
    let (status, _) = w
        .ana
        .api
        .post(
            &format!("/conversations/{other}/messages"),
            &json!({ "media": { "file_id": file["id"] } }),
        )
        .await
        .map_err(|e| (status_of(&e).unwrap_or(0), e.to_string()))
        .unwrap_err();
    assert_eq!(status, 404, "another conversation's file");

    // The CLI uploads and sends in one go, the type told by the extension.
    let dir = std::env::temp_dir().join(format!("sb-upload-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("receipt.pdf");
    std::fs::write(&path, pdf(4096)).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["agent", "--api-url", &w.stack.urls.api, "upload"])
        .arg(&path)
        .args([conversation.as_str(), "--send"])
        .env("SWITCHBOARD_API_KEY", &w.ana.key)
        .output()
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sent: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sent["media"][0]["file_name"], "receipt.pdf", "{sent}");
    assert_eq!(sent["media"][0]["content_type"], "application/pdf", "{sent}");
    assert_eq!(files_stored(&w).await, 2);

    // Turned off for the number: refused before a byte is kept.
    settings["agent_attachments"] = json!(false);
    w.admin
        .call(reqwest::Method::PATCH, &number, Some(&json!({ "settings": settings })))
        .await
        .unwrap();
    refused(
        upload(&w.ana, &conversation, "a.pdf", "application/pdf", pdf(2048)).await,
        422,
        "agent_attachments_disabled",
    );
    assert_eq!(files_stored(&w).await, 2);
    ana.close().await;
    w.stop().await;
}

/// An S3 server (moto's) on a free port, with a bucket; stopped when dropped.
struct S3Server {
    child: tokio::process::Child,
    url: String,
}

impl S3Server {
    async fn start(bucket: &str) -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let moto = root.join("target/twilio-venv/bin/moto_server");
        assert!(moto.exists(), "moto's S3 server is missing: run scripts/ensure-services.sh");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tokio::process::Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        switchboard_test_support::wait_until(WAIT, "moto's S3 server answers", || async {
            http.put(format!("{url}/{bucket}"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        Self { child, url }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn files_kept_in_s3_compatible_storage_reach_twilio_the_same_way() {
    switchboard_cli::install_crypto();
    let s3 = S3Server::start("sb-files").await;
    let w = World::start_with(json!({ "session": { "files": {
        "store": "s3://sb-files/uploads",
        "store_options": {
            "aws_endpoint": s3.url, "aws_region": "us-east-1", "aws_allow_http": "true",
            "aws_access_key_id": "test", "aws_secret_access_key": "secret-key-never-logged",
        },
        "sweep_interval_secs": 1,
    } } }))
    .await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let customer = "+5511955551004";
    let conversation = w.taken_by(&w.ana, &mut ana, customer).await;
    let bytes = pdf(1024 * 1024 + 17);
    let file = upload(&w.ana, &conversation, "contract.pdf", "application/pdf", bytes.clone())
        .await
        .unwrap();
    let file_id = file["id"].as_str().unwrap();
    let stored: (Option<i32>, Option<String>) =
        sqlx::query_as("SELECT octet_length(data), object_key FROM session.files WHERE id = $1::uuid")
            .bind(file_id)
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    let key = format!("uploads/{conversation}/{file_id}");
    assert_eq!(stored, (None, Some(key.clone())), "the bytes are in the object store, not the row");

    let (_, fetched) = sent_and_fetched(&w, &conversation, file_id, customer).await;
    assert_eq!(fetched.error, None, "{fetched:?}");
    assert_eq!(fetched.sha256, hex_sha256(&bytes), "Twilio got the bytes from S3 through ingress");
    assert_eq!(fetched.size_bytes, bytes.len() as u64);

    // Retention deletes the object with its row (older than retention_days: 90).
    let object = || async {
        use object_store::ObjectStoreExt as _;
        let options = [
            ("aws_endpoint", s3.url.as_str()),
            ("aws_region", "us-east-1"),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "secret-key-never-logged"),
        ];
        let (store, _) = object_store::parse_url_opts(&url::Url::parse("s3://sb-files").unwrap(), options).unwrap();
        match store.head(&object_store::path::Path::from(key.as_str())).await {
            Ok(meta) => Some(meta.size),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(other) => panic!("{other}"),
        }
    };
    assert_eq!(object().await, Some(bytes.len() as u64), "the object is there");
    w.clock.advance(time::Duration::days(91));
    switchboard_test_support::wait_until(WAIT, "the expired file deleted", || async { files_stored(&w).await == 0 }).await;
    assert_eq!(object().await, None, "the object went with its row");
    ana.close().await;
    w.stop().await;
}

#[tokio::test]
async fn uploads_in_progress_are_capped_per_replica_and_the_place_comes_back() {
    let w = World::start_with(json!({ "api": { "limits": { "concurrent_uploads": 1 } } })).await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    let conversation = w.taken_by(&w.ana, &mut ana, "+5511955551005").await;

    // An upload whose body is still arriving holds the one place. Whichever upload reaches the
    // handler first takes it: a probe that comes first leaves the held one refused, and then the
    // held one is opened again.
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let body = pdf(64 * 1024);
    let authority = w.stack.urls.api.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST /api/v1/conversations/{conversation}/files?name=slow.pdf HTTP/1.1\r\nHost: {authority}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/pdf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        w.ana.key,
        body.len()
    );
    let hold = || async {
        let mut slow = tokio::net::TcpStream::connect(&authority).await.unwrap();
        slow.write_all(head.as_bytes()).await.unwrap();
        slow.write_all(&body[..1024]).await.unwrap();
        slow
    };
    let mut slow = hold().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let refused = loop {
        match upload(&w.ana, &conversation, "quick.pdf", "application/pdf", pdf(2048)).await {
            Err((429, text)) => break text,
            other => {
                let mut early = [0u8; 512];
                if let Ok(n) = slow.try_read(&mut early) {
                    let answer = String::from_utf8_lossy(&early[..n]).into_owned();
                    assert!(answer.starts_with("HTTP/1.1 429"), "the held upload was answered: {answer}");
                    slow = hold().await;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no 429 while an upload is held; last answer: {other:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    assert!(refused.contains("too many files"), "{refused}");

    // The first completes; its place comes back.
    slow.write_all(&body[1024..]).await.unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    upload(&w.ana, &conversation, "after.pdf", "application/pdf", pdf(2048))
        .await
        .unwrap();
    ana.close().await;
    w.stop().await;
}
