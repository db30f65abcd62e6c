//! A connection's outbound queue: bounded and single-consumer like tokio's `mpsc::channel`,
//! but it costs one small allocation (about 100 bytes) until something is queued.
//!
//! Owns the queue's storage, its bound and the wake-up of its one receiver (the session
//! task); it does not decide what a full queue means (the hub and `watch` close that
//! connection as a slow consumer) and never blocks a sender: `try_send` only.
//!
//! Why not tokio's channel: its state is cache-padded and its first block of 32 slots is
//! allocated with it, about 1.7 KiB per connection in a release build, held for the
//! connection's whole life while the connection is idle (most are). Here the slots live in a
//! `VecDeque` that allocates on the first push and is freed again once drained after a burst;
//! a plain mutex guards it (held for a push or a pop, never across an `.await`; fan-out pushes
//! to many queues, each nearly always uncontended). The receive side takes part in tokio's
//! cooperative budget as the tokio channel does, so a busy queue cannot starve other tasks.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker, ready};

/// A drained queue keeps its slots up to this many bytes (32 `Arc`s); more (after a burst, or
/// slots of big items) are freed.
const KEEP_BYTES: usize = 256;

/// Why `try_send` refused an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds its bound: the reader fell behind.
    Full,
    /// The receiver is gone (the connection ended).
    Closed,
}

/// A bounded queue; `cap` items at most.
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let state = State { items: VecDeque::new(), waker: None, senders: 1, receiver_gone: false };
    let shared = Arc::new(Shared { cap, state: Mutex::new(state) });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

#[derive(Debug)]
struct Shared<T> {
    cap: usize,
    state: Mutex<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// The receiver waiting for an item (or for the last sender to go).
    waker: Option<Waker>,
    senders: usize,
    receiver_gone: bool,
}

impl<T> Shared<T> {
    /// A panic while holding the lock leaves the queue consistent (every step is one push,
    /// pop or flag), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending side; cheap to clone.
#[derive(Debug)]
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `item` unless the queue is full or its receiver is gone; never waits.
    pub fn try_send(&self, item: T) -> Result<(), Refused> {
        let waker = {
            let mut s = self.shared.lock();
            if s.receiver_gone {
                return Err(Refused::Closed);
            }
            if s.items.len() >= self.shared.cap {
                return Err(Refused::Full);
            }
            s.items.push_back(item);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = self.shared.lock();
            s.senders -= 1;
            if s.senders == 0 { s.waker.take() } else { None }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The receiving side (the session task's).
#[derive(Debug)]
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone and the queue is empty. Cancel-safe:
    /// an item is taken only when this resolves.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            let coop = ready!(tokio::task::coop::poll_proceed(cx));
            let mut s = self.shared.lock();
            if let Some(item) = pop(&mut s) {
                coop.made_progress();
                return Poll::Ready(Some(item));
            }
            if s.senders == 0 {
                return Poll::Ready(None);
            }
            match &mut s.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                w => *w = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// The next item if one is queued now.
    pub fn try_recv(&mut self) -> Option<T> {
        pop(&mut self.shared.lock())
    }

    pub fn is_empty(&self) -> bool {
        self.shared.lock().items.is_empty()
    }
}

/// Takes the oldest item; a queue drained after a burst gives its slots back.
fn pop<T>(s: &mut State<T>) -> Option<T> {
    let item = s.items.pop_front()?;
    if s.items.is_empty() && s.items.capacity() * size_of::<T>() > KEEP_BYTES {
        s.items = VecDeque::new();
    }
    Some(item)
}

impl<T> Drop for Receiver<T> {
    /// Senders see `Closed` from now on; what was queued is dropped (outside the lock).
    fn drop(&mut self) {
        let items = {
            let mut s = self.shared.lock();
            s.receiver_gone = true;
            s.waker = None;
            std::mem::take(&mut s.items)
        };
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_its_bound_in_order_and_reports_full() {
        let (tx, mut rx) = bounded(2);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.clone().try_send(2), Ok(()));
        assert_eq!(tx.try_send(3), Err(Refused::Full));
        assert!(!rx.is_empty());
        assert_eq!((rx.try_recv(), rx.try_recv(), rx.try_recv()), (Some(1), Some(2), None));
        assert!(rx.is_empty());
        assert_eq!(tx.try_send(4), Ok(()), "room again once read");
    }

    #[test]
    fn a_gone_receiver_refuses_as_closed() {
        let (tx, rx) = bounded(2);
        tx.try_send(Arc::new(1)).unwrap();
        let kept = Arc::new(2);
        tx.try_send(kept.clone()).unwrap();
        drop(rx);
        assert_eq!(tx.try_send(kept.clone()), Err(Refused::Closed));
        assert_eq!(Arc::strong_count(&kept), 1, "queued items are dropped with the receiver");
    }

    #[tokio::test]
    async fn recv_wakes_on_a_send_and_ends_with_the_last_sender() {
        let (tx, mut rx) = bounded(4);
        let tx2 = tx.clone();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        tokio::task::yield_now().await;
        tx.try_send("a").unwrap();
        drop(tx);
        tokio::task::yield_now().await;
        tx2.try_send("b").unwrap();
        drop(tx2);
        assert_eq!(reader.await.unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn a_drained_burst_gives_its_slots_back() {
        let (tx, mut rx) = bounded(1024);
        for i in 0..500 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert_eq!(rx.shared.lock().items.capacity(), 0);
    }
}
