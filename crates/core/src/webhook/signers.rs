//! Endpoints ready to sign for: each endpoint with its signing secrets
//! already opened, kept in memory so that a delivery costs neither a read
//! nor a decryption. Every change to an endpoint that matters here (an
//! edit, a disable, a rotation, a deletion), made in this process or in any
//! other, rings [`Topic::Endpoints`] on the commit stream, and the cache is
//! emptied on every wake of that topic: the change itself, a listener's
//! resync after it may have missed one, or the safety-net poll. So an
//! entry is never older than one poll interval even if a notification was
//! lost, and a rotated-out or deleted secret is dropped at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use settle_domain::ids::WebhookEndpointId;
use settle_domain::webhook::WebhookEndpoint;
use settle_store::StoreError;

use super::signing::SigningSecret;
use crate::Settle;
use crate::commits::{CommitStream, Topic};

/// An endpoint as it was read, with its secrets opened.
pub struct Signer {
    pub endpoint: WebhookEndpoint,
    current: SigningSecret,
    /// The rotated-out secret and when its grace ends (Unix ms).
    previous: Option<(SigningSecret, i64)>,
}

impl Signer {
    /// The secrets that sign at `now_ms`: the current one, and the previous
    /// one while its grace lasts.
    pub fn keys(&self, now_ms: u64) -> Vec<&SigningSecret> {
        let mut keys = vec![&self.current];
        if let Some((previous, until)) = &self.previous
            && *until > now_ms as i64
        {
            keys.push(previous);
        }
        keys
    }
}

#[derive(Default)]
struct Entries {
    /// Bumped by every flush: a fill that started before a flush is
    /// dropped, so a slow read never puts back what a change removed.
    generation: u64,
    map: HashMap<WebhookEndpointId, Arc<Signer>>,
}

/// The cache, shared by a delivery worker's tasks.
#[derive(Default)]
pub struct Signers {
    entries: Mutex<Entries>,
}

impl Signers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets every endpoint.
    pub fn flush(&self) {
        let mut entries = self.lock();
        entries.generation += 1;
        entries.map.clear();
    }

    /// How many endpoints are held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The signers of `ids`, reading the missing ones in one statement.
    /// Endpoints that are gone, or whose secret cannot be opened (a master
    /// key rotated out), are left out.
    pub async fn get(
        &self,
        settle: &Settle,
        ids: &[WebhookEndpointId],
    ) -> Result<HashMap<WebhookEndpointId, Arc<Signer>>, StoreError> {
        let (mut found, generation) = {
            let entries = self.lock();
            let found: HashMap<_, _> = ids
                .iter()
                .filter_map(|id| entries.map.get(id).map(|s| (*id, Arc::clone(s))))
                .collect();
            (found, entries.generation)
        };
        let missing: Vec<WebhookEndpointId> = ids.iter().filter(|id| !found.contains_key(id)).copied().collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let rows = settle.store.webhook_signing_endpoints(&missing).await?;
        let Ok(setup) = settle.webhook_setup() else {
            return Ok(found);
        };
        let open = |sealed: &[u8]| setup.keys.open(sealed).ok().and_then(SigningSecret::from_bytes);
        let mut opened = Vec::with_capacity(rows.len());
        for (endpoint, sealed) in rows {
            let Some(current) = open(&sealed.current) else {
                tracing::warn!(endpoint = %endpoint.id, "cannot open the endpoint's secret (master key rotated out?)");
                continue;
            };
            let previous = sealed
                .previous
                .and_then(|(secret, until)| open(&secret).map(|s| (s, until)));
            opened.push(Arc::new(Signer {
                endpoint,
                current,
                previous,
            }));
        }
        let mut entries = self.lock();
        let keep = entries.generation == generation;
        for signer in opened {
            if keep {
                entries.map.insert(signer.endpoint.id, Arc::clone(&signer));
            }
            found.insert(signer.endpoint.id, signer);
        }
        Ok(found)
    }

    /// Empties the cache on every wake of the endpoints topic, for as long
    /// as the task runs.
    pub async fn follow(self: Arc<Self>, commits: CommitStream) {
        let mut changes = commits.subscribe(Topic::Endpoints);
        loop {
            changes.wait().await;
            self.flush();
        }
    }
}
