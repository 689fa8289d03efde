//! The webapp driven by a real headless browser (Debian's chromium through
//! chromedriver, spoken to with fantoccini) against `cargo xtask dev`: fill
//! the form, submit, read the result, open the audit page.

use crate::browser_support;
use crate::e2e_support;

use browser_support::Driver;
use e2e_support::DevSystem;
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread")]
async fn browser_fills_the_form_and_sees_the_audit() {
    let system = tokio::task::spawn_blocking(DevSystem::start).await.unwrap();
    let driver = tokio::task::spawn_blocking(Driver::start).await.unwrap();
    let browser = driver.session().await;

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
