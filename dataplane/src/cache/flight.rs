//! A one-shot result that many tasks, on any worker, can wait for.

use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard};
use std::task::{Poll, Waker};

/// A value published once by a leader and cloned to every waiter.
pub struct Flight<T> {
    state: Mutex<(Option<T>, Vec<Waker>)>,
}

impl<T: Clone> Default for Flight<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone> Flight<T> {
    /// Nothing published yet.
    pub fn new() -> Self {
        Self {
            state: Mutex::new((None, Vec::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (Option<T>, Vec<Waker>)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publish `value` (the first publication wins) and wake every waiter.
    pub fn publish(&self, value: T) {
        let wakers = {
            let mut st = self.lock();
            if st.0.is_some() {
                return;
            }
            st.0 = Some(value);
            std::mem::take(&mut st.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// True once published.
    pub fn is_published(&self) -> bool {
        self.lock().0.is_some()
    }

    /// Wait for the published value.
    pub async fn wait(&self) -> T {
        poll_fn(|cx| {
            let mut st = self.lock();
            match &st.0 {
                Some(v) => Poll::Ready(v.clone()),
                None => {
                    if !st.1.iter().any(|w| w.will_wake(cx.waker())) {
                        st.1.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }
}
