//! Master-key rotation on both databases: re-sealing keeps each signing
//! secret (current and rotated-out) while moving it to the new key, leaves
//! fresh values alone, and the old key alone can no longer open them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use settle_core::Settle;
use settle_core::clock::SystemClock;
use settle_core::secrets::{MasterKeys, SecretError};
use settle_core::webhook::{ResealReport, WebhookSetup};
use settle_domain::ids::WebhookEndpointId;

use crate::support::{TestApp, both};
use crate::webhooks::{endpoint, webhook_app_with};

both!(resealing_moves_secrets_to_the_new_key, resealing_case);
async fn resealing_case(app: &TestApp) {
    let (old_text, new_text) = (MasterKeys::generate_text(), MasterKeys::generate_text());
    let old_for_app = old_text.clone();
    let w = webhook_app_with(app, "10ms", true, move |c| c.webhooks.master_key = Some(old_for_app)).await;
    let (first, _) = endpoint(&w, "http://127.0.0.1:9/a", json!(["*"])).await;
    let r = w
        .post(&format!("/v1/webhook_endpoints/{first}/rotate_secret"), json!({}))
        .await;
    assert_eq!(r.status, 200);
    let (second, _) = endpoint(&w, "http://127.0.0.1:9/b", json!(["*"])).await;
    let ids: Vec<WebhookEndpointId> = [&first, &second]
        .iter()
        .map(|id| WebhookEndpointId::parse(id).unwrap())
        .collect();
    let before: Vec<_> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(w.store().webhook_secrets(*id).await.unwrap().unwrap());
        }
        v
    };
    assert!(
        before[0].previous.is_some(),
        "the rotated endpoint keeps its old secret a while"
    );

    let old = MasterKeys::parse(&old_text).unwrap();
    let new = MasterKeys::parse(&new_text).unwrap();
    let rotated = Settle::new(Arc::clone(w.store()), Arc::new(SystemClock));
    rotated.attach_webhooks(WebhookSetup {
        keys: MasterKeys::parse(&format!("{new_text},{old_text}")).unwrap(),
        allow_private_targets: true,
        rotation_grace: Duration::from_secs(3600),
    });
    let report = rotated.reseal_webhook_secrets().await.unwrap();
    assert_eq!(
        report,
        ResealReport {
            endpoints: 2,
            resealed: 2
        }
    );
    assert_eq!(
        rotated.reseal_webhook_secrets().await.unwrap(),
        ResealReport {
            endpoints: 2,
            resealed: 0
        },
        "nothing left to do"
    );

    for (id, was) in ids.iter().zip(&before) {
        let now = w.store().webhook_secrets(*id).await.unwrap().unwrap();
        assert_ne!(now.current, was.current);
        assert_eq!(
            new.open(&now.current).unwrap(),
            old.open(&was.current).unwrap(),
            "same secret"
        );
        assert!(matches!(old.open(&now.current), Err(SecretError::UnknownKey)));
        match (&now.previous, &was.previous) {
            (Some((p, expires)), Some((q, was_expires))) => {
                assert_eq!(new.open(p).unwrap(), old.open(q).unwrap());
                assert_eq!(expires, was_expires, "the grace period is unchanged");
            }
            (None, None) => {}
            other => panic!("previous secret changed shape: {other:?}"),
        }
    }
    w.finish().await;
}
