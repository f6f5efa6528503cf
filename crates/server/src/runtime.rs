//! The async runtime `settle` runs on, built here rather than by
//! `#[tokio::main]` so its threads' stack size is chosen, not inherited.

/// A multi-threaded runtime whose threads (workers and the blocking pool)
/// have [`EVAL_STACK`](settle_core::policy::limits::EVAL_STACK) of stack.
/// Attribute policies are evaluated inline on the request's worker thread
/// (the hot path, so no hand-off), and Cedar's evaluator recurses once per
/// level of a policy's expression. The structural limits bound that depth,
/// and this size gives the deepest policy they allow several times the
/// stack it needs; the memory is only reserved, and touched as used.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    builder().build()
}

/// The builder behind [`build`], for tests that serve the app in-process
/// and must give its requests the same stacks as `settle serve`.
pub fn builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .enable_all()
        .thread_stack_size(settle_core::policy::limits::EVAL_STACK);
    builder
}
