//! `settle seed`: realistic data in bulk. Customers and accounts first, then
//! payments spread over the past year (so ids and `created` advance
//! together), with holds, cancels, failures and refunds on a fraction.
//! Balances are tracked in memory and written in the same transaction as
//! each batch's entries, so every commit (and so an interrupted seed) leaves
//! the ledger consistent; `--verify` checks every invariant afterwards.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settle_domain::account::Account;
use settle_domain::customer::Customer;
use settle_domain::ids::{AccountId, CustomerId, LedgerEntryId, PaymentId, RefundId};
use settle_domain::ledger::LedgerEntry;
use settle_domain::metadata::Metadata;
use settle_domain::money::Currency;
use settle_domain::payment::{Payment, PaymentStatus};
use settle_domain::refund::{Refund, RefundReason, RefundStatus};
use settle_store::ids::IdGenerator;
use settle_store::sql::SqlStore;
use settle_store::sql::bulk::SeedBatch;

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    #[arg(long, default_value_t = 500)]
    pub customers: usize,
    #[arg(long, default_value_t = 10_000)]
    pub payments: usize,
    /// Fraction of succeeded payments that get a refund (partial or full).
    #[arg(long, default_value_t = 0.05)]
    pub refund_fraction: f64,
    /// Payments per transaction.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Random seed, for reproducible data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Days of history the payments are spread over, ending now.
    #[arg(long, default_value_t = 365)]
    pub days: u64,
    /// Check every ledger invariant afterwards.
    #[arg(long)]
    pub verify: bool,
}

struct State {
    id: AccountId,
    balance: i64,
    pending: i64,
    allow_negative: bool,
    customer: Option<CustomerId>,
}

impl State {
    fn available(&self) -> i64 {
        self.balance - self.pending
    }
}

/// What a seed run wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seeded {
    pub payments: usize,
    pub refunds: usize,
    pub entries: usize,
    pub elapsed: Duration,
}

struct Generator {
    rng: StdRng,
    ids: IdGenerator,
    usd: Currency,
    accounts: Vec<State>,
    funding: usize,
    batch: SeedBatch,
    touched: BTreeSet<usize>,
}

impl Generator {
    fn entry(&mut self, account: usize, amount: i64, payment: PaymentId, refund: Option<RefundId>, ms: u64) {
        self.accounts[account].balance += amount;
        self.touched.insert(account);
        self.batch.entries.push(LedgerEntry {
            id: LedgerEntryId::from_uuid(self.ids.next(ms)),
            account: self.accounts[account].id,
            amount,
            payment: Some(payment),
            refund,
            created: (ms / 1000) as i64,
        });
    }

    fn payment(&mut self, ms: u64, refund_fraction: f64) {
        let n = self.accounts.len();
        let destination = self.rng.random_range(self.funding..n);
        let amount = self.rng.random_range(100..50_000);
        let from_user = self.rng.random_bool(0.3);
        let mut source = if from_user {
            self.rng.random_range(self.funding..n)
        } else {
            self.rng.random_range(0..self.funding)
        };
        if source == destination
            || (!self.accounts[source].allow_negative && self.accounts[source].available() < amount)
        {
            source = self.rng.random_range(0..self.funding);
        }
        let roll = self.rng.random_range(0..100);
        let status = match roll {
            0..90 => PaymentStatus::Succeeded,
            90..94 => PaymentStatus::RequiresCapture,
            94..97 => PaymentStatus::Canceled,
            _ => PaymentStatus::Failed,
        };
        let id = PaymentId::from_uuid(self.ids.next(ms));
        let mut p = Payment {
            id,
            amount,
            currency: self.usd,
            source: self.accounts[source].id,
            destination: self.accounts[destination].id,
            customer: self.accounts[destination].customer,
            status,
            amount_captured: 0,
            amount_refunded: 0,
            description: None,
            metadata: Metadata::default(),
            version: 1,
            created: (ms / 1000) as i64,
        };
        match status {
            PaymentStatus::Succeeded => {
                p.amount_captured = amount;
                self.entry(source, -amount, id, None, ms);
                self.entry(destination, amount, id, None, ms);
                if self.rng.random_bool(refund_fraction) {
                    let refund = if self.rng.random_bool(0.5) {
                        amount
                    } else {
                        self.rng.random_range(1..=amount)
                    };
                    if self.accounts[destination].available() >= refund {
                        let rid = RefundId::from_uuid(self.ids.next(ms));
                        p.amount_refunded = refund;
                        p.version += 1;
                        self.entry(destination, -refund, id, Some(rid), ms);
                        self.entry(source, refund, id, Some(rid), ms);
                        self.batch.refunds.push(Refund {
                            id: rid,
                            payment: id,
                            amount: refund,
                            currency: self.usd,
                            reason: Some(RefundReason::RequestedByCustomer),
                            status: RefundStatus::Succeeded,
                            created: (ms / 1000) as i64,
                        });
                    }
                }
            }
            PaymentStatus::RequiresCapture => {
                if self.accounts[source].allow_negative || self.accounts[source].available() >= amount {
                    self.accounts[source].pending += amount;
                    self.touched.insert(source);
                } else {
                    p.status = PaymentStatus::Canceled;
                }
            }
            _ => {}
        }
        self.batch.payments.push(p);
    }

    fn take_batch(&mut self) -> SeedBatch {
        let mut batch = std::mem::take(&mut self.batch);
        batch.balances = self
            .touched
            .iter()
            .map(|&i| (self.accounts[i].id, self.accounts[i].balance, self.accounts[i].pending))
            .collect();
        self.touched.clear();
        batch
    }
}

fn eta(done: usize, total: usize, elapsed: Duration) -> String {
    if done == 0 {
        return "?".into();
    }
    let left = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
    format!("{}m{:02}s", (left as u64) / 60, (left as u64) % 60)
}

/// Generates and writes the data; prints progress on stderr.
pub async fn seed(store: &SqlStore, args: &SeedArgs, now_ms: u64) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let usd = Currency::parse("usd")?;
    let span_ms = args.days.max(1) * 24 * 3600 * 1000;
    let t0 = now_ms.saturating_sub(span_ms);
    let mut g = Generator {
        rng: StdRng::seed_from_u64(args.seed),
        ids: IdGenerator::new(),
        usd,
        accounts: Vec::new(),
        funding: (args.accounts / 100).max(1),
        batch: SeedBatch::default(),
        touched: BTreeSet::new(),
    };
    let customers: Vec<CustomerId> = (0..args.customers)
        .map(|i| {
            let id = CustomerId::from_uuid(g.ids.next(t0));
            g.batch.customers.push(Customer {
                id,
                name: Some(format!("Customer {i}")),
                email: Some(format!("customer{i}@example.com")),
                metadata: Metadata::default(),
                version: 1,
                created: (t0 / 1000) as i64,
            });
            id
        })
        .collect();
    let accounts = args.accounts.max(2).max(g.funding + 1);
    for i in 0..accounts {
        let allow_negative = i < g.funding;
        let customer = (!allow_negative && !customers.is_empty() && g.rng.random_bool(0.8))
            .then(|| customers[g.rng.random_range(0..customers.len())]);
        let id = AccountId::from_uuid(g.ids.next(t0));
        g.batch.accounts.push(Account {
            id,
            name: if allow_negative {
                format!("funding {i}")
            } else {
                format!("account {i}")
            },
            currency: usd,
            balance: 0,
            pending_out: 0,
            allow_negative,
            processor: false,
            customer,
            metadata: Metadata::default(),
            version: 1,
            created: (t0 / 1000) as i64,
        });
        g.accounts.push(State {
            id,
            balance: 0,
            pending: 0,
            allow_negative,
            customer,
        });
    }
    store.write_seed_batch(Arc::new(g.take_batch())).await?;

    let mut seeded = Seeded::default();
    let mut last_report = Instant::now();
    let batch = args.batch.max(1);
    let total = args.payments;
    let mut done = 0;
    while done < total {
        let n = batch.min(total - done);
        for i in done..done + n {
            let ms = t0 + (span_ms as u128 * i as u128 / total.max(1) as u128) as u64;
            g.payment(ms, args.refund_fraction.clamp(0.0, 1.0));
        }
        let b = g.take_batch();
        seeded.refunds += b.refunds.len();
        seeded.entries += b.entries.len();
        store.write_seed_batch(Arc::new(b)).await?;
        done += n;
        seeded.payments = done;
        if last_report.elapsed() >= Duration::from_secs(1) || done == total {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            let rows = done + seeded.refunds + seeded.entries;
            let _ = write!(
                std::io::stderr(),
                "\rseed: {done}/{total} payments ({:.1}%), {:.0} payments/s, {:.0} rows/s, ETA {}   ",
                100.0 * done as f64 / total.max(1) as f64,
                done as f64 / secs,
                rows as f64 / secs,
                eta(done, total, started.elapsed())
            );
        }
    }
    let _ = writeln!(std::io::stderr());
    seeded.elapsed = started.elapsed();
    Ok(seeded)
}
