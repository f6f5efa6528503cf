//! The pages a person opens, in headless Chromium with no network but the
//! server: the API reference at `/docs` (Swagger UI from the binary) shows
//! every operation, and GraphiQL at `/graphql`, with the key the dashboard
//! signed in with in this tab, runs a query and shows the answer.

use std::time::Duration;

use crate::browser::Browser;
use crate::support::{Backend, TestApp, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_docs_and_graphiql_work_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn(Backend::Sqlite).await;
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    let payment = app.pay(&bank, &shop, 4242).await;

    browser.goto(&app.url("/docs/")).await;
    let operations = settle_core::pipeline::registry::ALL.len();
    eventually(
        Duration::from_secs(30),
        "Swagger UI listing every operation",
        || async { (browser.all(".opblock").await.len() >= operations).then_some(()) },
    )
    .await;

    // Signed in as the dashboard signs in (this tab's sessionStorage).
    browser.goto(&app.url("/graphql")).await;
    browser
        .script(&format!(
            "sessionStorage.setItem('settle.apiKey', '{}'); return true",
            app.admin_key
        ))
        .await;
    browser.goto(&app.url("/graphql")).await;
    eventually(Duration::from_secs(30), "GraphiQL's run button", || async {
        (!browser.all(".graphiql-execute-button").await.is_empty()).then_some(())
    })
    .await;
    browser.click(".graphiql-execute-button").await;
    let answer = browser
        .wait_text(".graphiql-response", "the payment in the answer", |t| {
            t.contains(&payment)
        })
        .await;
    assert!(answer.contains("4242"), "{answer}");
    browser.quit().await;
    app.finish().await;
}
