//! Helpers for synchronous code that may run on a tokio worker thread.

/// Runs a blocking call from code that may be on a tokio worker thread: on a multi-thread
/// runtime the worker's other tasks move to another thread first (`block_in_place`).
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let on_multi_thread_runtime = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if on_multi_thread_runtime {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}
