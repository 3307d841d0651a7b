//! Helpers shared by the data plane's unit tests.

/// Run `f` to completion on a fresh single-thread runtime (epoll driver, timers on): for unit
/// tests of code that awaits, apart from any worker.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("a test runtime builds")
        .block_on(f)
}
