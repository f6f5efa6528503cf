//! Just enough of the W3C WebDriver protocol to drive Debian's headless
//! Chromium through `chromedriver`: open a page, find elements by CSS,
//! click, type, read text, run a line of script. Without `chromedriver` the
//! browser tests are skipped with a notice, except under `CI=true`, where
//! that is a failure.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{eventually, free_port, http_client, temp_dir};

/// The key W3C WebDriver gives element references under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// A headless Chromium session, ended (and its driver killed) on `quit` or drop.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// `None` (with a notice) when Chromium or its driver is not installed.
    pub async fn start() -> Option<Browser> {
        let driver = find_program(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
        let chromium = find_program(&["/usr/bin/chromium", "/usr/lib/chromium/chromium"]);
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but chromium/chromedriver are missing: apt-get install chromium chromium-driver"
            );
            eprintln!("NOTICE: chromium or chromedriver not installed; browser tests skipped");
            return None;
        };
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = http_client();
        let base = format!("http://127.0.0.1:{port}");
        eventually(Duration::from_secs(20), "chromedriver to listen", || {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let r = http.get(format!("{base}/status")).send().await.ok()?;
                let body: Value = r.json().await.ok()?;
                (body["value"]["ready"] == true).then_some(())
            }
        })
        .await;
        let profile = temp_dir("settle-chromium");
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--no-first-run", "--disable-extensions", "--window-size=1280,900",
                        format!("--user-data-dir={}", profile.display()),
                    ],
                },
            }}}))
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session body");
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"));
        Some(Browser {
            http,
            session: format!("{base}/session/{id}"),
            driver: child,
            profile,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.expect("webdriver call");
        let ok = r.status().is_success();
        let body: Value = r.json().await.expect("webdriver body");
        if ok {
            Ok(body["value"].clone())
        } else {
            Err(body["value"].clone())
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// Element references matching `css` now (possibly none).
    pub async fn all(&self, css: &str) -> Vec<String> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits for the first element matching `css`.
    pub async fn find(&self, css: &str) -> String {
        eventually(Duration::from_secs(20), css, || async {
            self.all(css).await.into_iter().next()
        })
        .await
    }

    /// The visible text of `css`'s first match, once it exists; `None` when
    /// the element went away between finding and reading (a re-render).
    pub async fn text_of(&self, css: &str) -> Option<String> {
        let el = self.all(css).await.into_iter().next()?;
        let value = self
            .call(reqwest::Method::GET, &format!("/element/{el}/text"), None)
            .await
            .ok()?;
        value.as_str().map(str::to_owned)
    }

    /// Waits until `css`'s text satisfies `check`, and returns it.
    pub async fn wait_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        eventually(Duration::from_secs(30), what, || async {
            self.text_of(css).await.filter(|t| check(t))
        })
        .await
    }

    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.post(&format!("/element/{el}/click"), json!({})).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.post(&format!("/element/{el}/value"), json!({ "text": text }))
            .await;
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []})).await
    }

    /// Whether `css`'s first match is rendered (not hidden by attribute or style).
    pub async fn displayed(&self, css: &str) -> bool {
        let el = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{el}/displayed"), None)
            .await
            .map(|v| v == true)
            .unwrap_or(false)
    }

    /// The page as a PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let value = self
            .call(reqwest::Method::GET, "/screenshot", None)
            .await
            .unwrap_or_else(|e| panic!("webdriver screenshot: {e}"));
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .expect("a base64 PNG")
    }

    /// Serious and critical accessibility violations axe-core finds on the
    /// page now (`axe` is axe-core's source, run in the page by the test
    /// only: the product never ships it).
    pub async fn accessibility_violations(&self, axe: &str) -> Vec<String> {
        let run = format!(
            "{axe}\nreturn axe.run(document).then((r) => r.violations\
             .filter((v) => v.impact === 'serious' || v.impact === 'critical')\
             .map((v) => `${{v.id}} (${{v.impact}}): ${{v.nodes.map((n) => n.target.join(' ')).join(', ')}}`));"
        );
        let found = self.script(&run).await;
        let found = found
            .as_array()
            .unwrap_or_else(|| panic!("axe-core did not run: {found}"));
        found.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
    }

    pub async fn quit(mut self) {
        let _ = self.call(reqwest::Method::DELETE, "", None).await;
        self.stop_driver();
    }

    fn stop_driver(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.stop_driver();
    }
}
