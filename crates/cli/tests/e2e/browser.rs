//! A small W3C WebDriver client over `chromedriver` and Debian's headless Chromium, enough to
//! drive the desk as a person would: open a page, find, click, type, read, screenshot.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use switchboard_test_support::{poll_for, wait_until};

use crate::harness::WAIT;

/// Chromium under chromedriver, one session.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    profile: PathBuf,
}

/// An element of the page.
#[derive(Clone)]
pub struct Element(Value);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver; .ci/run installs them)");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        wait_until(WAIT, "chromedriver ready", || async {
            match http.get(format!("{base}/status")).send().await {
                Ok(r) => r.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            }
        })
        .await;
        let profile = std::env::temp_dir().join(format!("sb-chromium-{}", uuid::Uuid::new_v4().simple()));
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    format!("--window-size={width},{height}"), format!("--user-data-dir={}", profile.display()),
                ],
            },
        } } });
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Self {
            http,
            session: format!("{base}/session/{session}"),
            driver,
            profile,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["value"].clone()
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    /// The elements matching `css` now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found.as_array().cloned().unwrap_or_default().into_iter().map(Element).collect()
    }

    /// Waits for an element matching `css`.
    pub async fn find(&self, css: &str) -> Element {
        match poll_for(WAIT, || async { self.find_all(css).await.into_iter().next() }).await {
            Some(e) => e,
            None => panic!("no element {css} appeared; the page shows: {}", self.page_text().await),
        }
    }

    /// Waits until the text of the first element matching `css` satisfies `pred`; returns it.
    pub async fn wait_text(&self, css: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let matched = poll_for(WAIT, || async {
            for e in self.find_all(css).await {
                let text = self.text(&e).await;
                if pred(&text) {
                    return Some(text);
                }
            }
            None
        })
        .await;
        match matched {
            Some(text) => text,
            None => panic!("{what}: no {css} matched; the page shows: {}", self.page_text().await),
        }
    }

    /// The page's URL and visible text (for failure messages).
    pub async fn page_text(&self) -> String {
        let url = self.command(reqwest::Method::GET, "/url", None).await;
        let text = self
            .run("const done = arguments[arguments.length - 1]; done(document.body ? document.body.innerText : '');")
            .await;
        format!("{url} {text}")
    }

    fn id(e: &Element) -> String {
        e.0.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    /// Clicks the element matching `css`, finding it again if the page replaced it meanwhile
    /// (a live view re-renders as events arrive, as it would under a person's pointer).
    pub async fn click_css(&self, css: &str) {
        let last = std::cell::RefCell::new(Value::Null);
        let clicked = poll_for(WAIT, || async {
            let e = self.find(css).await;
            let v = self
                .command(reqwest::Method::POST, &format!("/element/{}/click", Self::id(&e)), Some(json!({})))
                .await;
            let replaced = v["error"] == "stale element reference" || v["error"] == "element click intercepted";
            assert!(v.is_null() || replaced, "click on {css} failed: {v}");
            let done = v.is_null().then_some(());
            last.replace(v);
            done
        })
        .await;
        assert!(
            clicked.is_some(),
            "click on {css} kept missing a replaced element: {}",
            last.borrow()
        );
    }

    pub async fn type_into(&self, e: &Element, text: &str) {
        let v = self
            .command(
                reqwest::Method::POST,
                &format!("/element/{}/value", Self::id(e)),
                Some(json!({ "text": text })),
            )
            .await;
        assert!(v.is_null(), "typing failed: {v}");
    }

    /// Empties an input.
    pub async fn clear(&self, e: &Element) {
        let v = self
            .command(reqwest::Method::POST, &format!("/element/{}/clear", Self::id(e)), Some(json!({})))
            .await;
        assert!(v.is_null(), "clearing failed: {v}");
    }

    pub async fn text(&self, e: &Element) -> String {
        let v = self
            .command(reqwest::Method::GET, &format!("/element/{}/text", Self::id(e)), None)
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The attribute `name` of the element matching `css`, found again if the page replaced it
    /// before it could be read.
    pub async fn attribute_css(&self, css: &str, name: &str) -> String {
        match poll_for(WAIT, || async { self.attribute(&self.find(css).await, name).await }).await {
            Some(value) => value,
            None => panic!("no {name} on {css}; the page shows: {}", self.page_text().await),
        }
    }

    pub async fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        let v = self
            .command(reqwest::Method::GET, &format!("/element/{}/attribute/{name}", Self::id(e)), None)
            .await;
        v.as_str().map(str::to_owned)
    }

    /// Picks the option of the `<select>` matching `css` whose value is `value`.
    pub async fn select(&self, css: &str, value: &str) {
        self.click_css(&format!("{css} option[value=\"{value}\"]")).await;
    }

    /// Runs `script` (an async function body receiving `done`) in the page; returns its result.
    pub async fn run(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Saves a PNG of the viewport to `target/screenshots/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.command(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
