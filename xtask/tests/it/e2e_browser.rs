//! The webapp driven by a real headless browser (Debian's chromium through
//! chromedriver, spoken to with fantoccini) against `cargo xtask dev`: fill
//! the form, submit, read the result, open the audit page.

use crate::e2e_support;

use e2e_support::{DevSystem, free_port};
use fantoccini::{ClientBuilder, Locator};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// chromedriver on a free port; killed when dropped.
struct Driver(Child, u16);

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed (Debian: apt-get install -y chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while e2e_support::http_status(port, "/status") != Some(200) {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver(child, port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn capabilities() -> serde_json::Map<String, serde_json::Value> {
    let options = serde_json::json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    });
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    caps
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_fills_the_form_and_sees_the_audit() {
    let system = tokio::task::spawn_blocking(DevSystem::start).await.unwrap();
    let driver = tokio::task::spawn_blocking(Driver::start).await.unwrap();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let browser = ClientBuilder::new(connector)
        .capabilities(capabilities())
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a chromium session through chromedriver");

    let outcome = async {
        browser.goto(&system.url("webapp", "/add")).await?;
        browser
            .find(Locator::Id("first"))
            .await?
            .send_keys("20")
            .await?;
        browser
            .find(Locator::Id("second"))
            .await?
            .send_keys("22")
            .await?;
        browser
            .find(Locator::Id("calculate"))
            .await?
            .click()
            .await?;
        let result = browser
            .wait()
            .for_element(Locator::Id("result"))
            .await?
            .text()
            .await?;
        assert_eq!(result, "20 + 22 = 42");

        // Markup typed into the form is shown as text, never interpreted.
        browser.goto(&system.url("webapp", "/add")).await?;
        browser
            .find(Locator::Id("first"))
            .await?
            .send_keys("<b>1</b>")
            .await?;
        browser
            .find(Locator::Id("second"))
            .await?
            .send_keys("1")
            .await?;
        browser
            .find(Locator::Id("calculate"))
            .await?
            .click()
            .await?;
        // "<b>1</b>" is not an integer: the answer is the form with an error.
        browser.wait().for_element(Locator::Id("error")).await?;
        let page = browser.source().await?;
        assert!(
            !page.contains("<b>1</b>"),
            "markup from the form reached the page: {page}"
        );

        browser
            .find(Locator::LinkText("Audit"))
            .await?
            .click()
            .await?;
        // Wait for the audit page itself: elements found before it loads go stale.
        browser.wait().for_element(Locator::Id("audit")).await?;
        let calcs = browser.find_all(Locator::Css("td.calc")).await?;
        let mut texts = Vec::new();
        for calc in calcs {
            texts.push(calc.text().await?);
        }
        assert!(texts.iter().any(|t| t == "20+22"), "audit rows: {texts:?}");
        assert_eq!(browser.current_url().await?.path(), "/audit");
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    outcome.expect("browser session");
    drop(driver);
    let status = tokio::task::spawn_blocking(move || system.stop())
        .await
        .unwrap();
    assert!(status.success());
}
