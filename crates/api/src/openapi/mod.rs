//! The OpenAPI 3.1 description of the REST API, so that clients can be
//! generated and live responses can be checked against what is published.

pub mod schemas;
