//! Settle's integration suite, one binary. Every case runs on SQLite and on
//! PostgreSQL (see `support::both!`); without a reachable PostgreSQL the
//! PostgreSQL variants are skipped with a notice, unless `CI=true`, where
//! that is a failure.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test here

mod support;

mod admission;
mod browser;
mod browser_pages;
mod cache;
mod cache_redis;
mod cli;
mod commits;
mod concurrency;
mod contract;
mod crash;
mod dashboard;
mod dashboard_operator;
mod events;
mod expand;
mod graphql;
mod graphql_admin;
mod grpc;
mod hardening;
mod http_accounts;
mod http_customers;
mod http_errors;
mod http_payments;
mod idempotency;
mod metrics_families;
mod migrations;
mod nats;
mod openapi;
mod operation_metrics;
mod optimistic;
mod pagination;
mod pipeline;
mod plans;
mod policies;
mod pool;
mod processor;
mod queue;
mod rbac;
mod registry;
mod replay_compat;
mod secrets;
mod seed;
mod sqlite_faults;
mod statements;
mod tls;
mod traces;
mod webhook_operations;
mod webhooks;
mod webhooks_fast;
mod webhooks_flaky;
