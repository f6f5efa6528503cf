//! After the surge, the books: every payment create the harness attempted
//! is sent again with its idempotency key (a replay of the payment it made,
//! or the payment made now if the surge refused it), then every payment and
//! account is read back. Shedding must lose nothing and make nothing twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::traffic::{AccountSeen, CreateAttempt, Harness, PaymentSeen, lock};

/// Creates sent again at once: a closed loop this small stays well under
/// the saturating rate.
const REPLAY_WORKERS: usize = 16;

/// How long one request of the check may keep being refused. Longer than
/// the idempotency lock timeout (60 s by default), after which a claim
/// left by a request the surge cut short may be taken over.
const PATIENCE: Duration = Duration::from_secs(90);

#[derive(Deserialize)]
struct Page<T> {
    data: Vec<T>,
    has_more: bool,
}

/// What a replay of create attempt `index` answered: its payment, or why not.
type Replayed = (usize, Result<PaymentSeen, String>);

/// Replays every create, reads the ledger whole, and prints the verdict.
pub async fn check(harness: &Arc<Harness>) -> anyhow::Result<()> {
    let attempts = Arc::new(std::mem::take(&mut *lock(&harness.creates)));
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..REPLAY_WORKERS)
        .map(|_| {
            let (harness, attempts, next) = (Arc::clone(harness), Arc::clone(&attempts), Arc::clone(&next));
            tokio::spawn(async move {
                let mut replayed: Vec<Replayed> = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(attempt) = attempts.get(index) else {
                        return replayed;
                    };
                    replayed.push((index, replay(&harness, index, attempt).await));
                }
            })
        })
        .collect();
    let mut replies = Vec::with_capacity(attempts.len());
    for worker in workers {
        replies.extend(worker.await?);
    }
    let replay_time = started.elapsed();

    // Each payment id and the attempt that named it.
    let mut owner: HashMap<String, usize> = HashMap::with_capacity(replies.len());
    let (mut unanswered, mut first_refusal) = (0usize, None);
    let (mut answered_in_run, mut changed, mut shared) = (0usize, 0usize, 0usize);
    for (index, reply) in replies {
        match reply {
            Err(e) => {
                unanswered += 1;
                first_refusal.get_or_insert(e);
            }
            Ok(payment) => {
                if let Some(first) = &attempts[index].answered {
                    answered_in_run += 1;
                    if *first != payment.id {
                        changed += 1;
                    }
                }
                if owner.insert(payment.id, index).is_some() {
                    shared += 1;
                }
            }
        }
    }
    println!(
        "  ledger check: {} creates sent again with their idempotency keys in {:.1} s \
         ({answered_in_run} had answered 2xx during the run and must replay it; the others may create now)",
        attempts.len(),
        replay_time.as_secs_f64()
    );

    let payments: Vec<PaymentSeen> = read_all(harness, "/v1/payments").await?;
    let listed: HashSet<&str> = payments.iter().map(|p| p.id.as_str()).collect();
    let unknown = listed.iter().filter(|id| !owner.contains_key(**id)).count();
    let missing = owner.keys().filter(|id| !listed.contains(id.as_str())).count();
    let accounts: Vec<AccountSeen> = read_all(harness, "/v1/accounts").await?;
    let balances: i128 = accounts.iter().map(|a| i128::from(a.balance)).sum();
    let pending: i128 = accounts.iter().map(|a| i128::from(a.pending_out)).sum();
    let held: i128 = payments
        .iter()
        .filter(|p| p.status == "requires_capture")
        .map(|p| i128::from(p.amount))
        .sum();

    let (lost, duplicated) = (unanswered + missing, changed + shared + unknown);
    println!(
        "  ledger: {} payments, {lost} lost, {duplicated} duplicated, balances sum to {balances} \
         (target: 0, 0, 0); held amounts {held} vs pending_out {pending} ({})",
        payments.len(),
        if held == pending { "equal" } else { "MISMATCH" }
    );
    if lost > 0 {
        println!(
            "    lost: {unanswered} creates never answered 2xx when sent again{}; \
             {missing} payments answered but not listed",
            first_refusal.map(|e| format!(" (first: {e})")).unwrap_or_default()
        );
    }
    if duplicated > 0 {
        println!(
            "    duplicated: {changed} keys replayed another payment than the one they made during the run, \
             {shared} payments named by two keys, {unknown} listed payments no key made"
        );
    }
    Ok(())
}

/// Sends create attempt `index` again, as it was first sent.
async fn replay(harness: &Harness, index: usize, attempt: &CreateAttempt) -> Result<PaymentSeen, String> {
    let url = harness.url("/v1/payments");
    let key = harness.idempotency_key(index);
    harness
        .retrying(attempt.key, PATIENCE, || {
            harness
                .http
                .post(&url)
                .header(CONTENT_TYPE, "application/json")
                .header("idempotency-key", &key)
                .body(attempt.body.clone())
        })
        .await
        .map_err(|e| format!("{e:#}"))
}

/// Every object of a list route, newest first, page by page.
async fn read_all<T: DeserializeOwned + HasId>(harness: &Harness, route: &str) -> anyhow::Result<Vec<T>> {
    let mut all: Vec<T> = Vec::new();
    loop {
        let url = match all.last() {
            Some(last) => harness.url(&format!("{route}?limit=100&starting_after={}", last.id())),
            None => harness.url(&format!("{route}?limit=100")),
        };
        let page: Page<T> = harness.retrying(0, PATIENCE, || harness.http.get(&url)).await?;
        all.extend(page.data);
        if !page.has_more {
            return Ok(all);
        }
    }
}

trait HasId {
    fn id(&self) -> &str;
}

impl HasId for PaymentSeen {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for AccountSeen {
    fn id(&self) -> &str {
        &self.id
    }
}
