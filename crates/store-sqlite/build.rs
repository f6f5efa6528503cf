//! `sqlx::migrate!` embeds the migrations at compile time but cannot ask
//! cargo to watch the folder on stable Rust: without this, a new migration
//! file is silently left out of an incremental build.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
