//! A one-slot channel for "the newest value wins": a send replaces a value not yet taken, and
//! the receiver takes it out, so nothing is kept once it is consumed. (A `watch` channel keeps
//! its last value for late readers and carries notifiers for many of them: with 10,000 scalers,
//! a kept directory snapshot and a watch per scaler loop each cost megabytes.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

struct Slot<T> {
    value: Mutex<Option<T>>,
    notify: Notify,
    closed: AtomicBool,
}

pub struct Sender<T>(Arc<Slot<T>>);

pub struct Receiver<T>(Arc<Slot<T>>);

pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Slot {
        value: Mutex::new(None),
        notify: Notify::new(),
        closed: AtomicBool::new(false),
    });
    (Sender(slot.clone()), Receiver(slot))
}

impl<T> Sender<T> {
    /// Replace the value not yet taken, if any, and wake the receiver.
    pub fn send(&self, value: T) {
        *self.0.value.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
        // Stores a permit when the receiver is not waiting, so the value is never missed.
        self.0.notify.notify_one();
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.notify.notify_one();
    }
}

impl<T> Receiver<T> {
    /// The value sent since the last take, without waiting.
    pub fn try_take(&mut self) -> Option<T> {
        self.0
            .value
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The next value; `None` once the sender is gone and nothing is left. Cancel-safe: a
    /// value stays in the slot until a call returns it.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            if let Some(v) = self.try_take() {
                return Some(v);
            }
            if self.0.closed.load(Ordering::Acquire) {
                return None;
            }
            self.0.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_newest_value_wins_and_is_taken_once() {
        let (tx, mut rx) = channel();
        tx.send(1);
        tx.send(2);
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.try_take(), None);
        let waiting = tokio::spawn(async move {
            let v = rx.recv().await;
            (v, rx)
        });
        tx.send(3);
        let (v, mut rx) = waiting.await.unwrap();
        assert_eq!(v, Some(3));
        // The value is gone from the slot once taken.
        assert_eq!(Arc::strong_count(&rx.0), 2);
        assert!(rx.0.value.lock().unwrap().is_none());
        tx.send(4);
        drop(tx);
        // What was sent before the sender went is still delivered, then the end.
        assert_eq!(rx.recv().await, Some(4));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_cancelled_receive_loses_nothing() {
        let (tx, mut rx) = channel();
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(10), rx.recv()).await;
        assert!(timed_out.is_err());
        tx.send("spec");
        assert_eq!(rx.recv().await, Some("spec"));
    }
}
