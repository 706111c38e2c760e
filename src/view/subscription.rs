//! Subscriptions: push queries (`SUBSCRIBE v`, ksqlDB `SELECT * FROM v EMIT CHANGES`). Each
//! committed epoch's delta of a relation is offered to its subscribers' bounded channels.
//!
//! Policy for slow subscribers: a subscriber whose buffer (1024 epochs) is full is
//! disconnected with an error rather than slowing the dataflow or other clients.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::dataflow::ChangeBatch;

pub const BUFFER_EPOCHS: usize = 1024;

#[derive(Debug)]
pub enum Event {
    /// A committed delta, at this wall-clock time (µs since the epoch).
    Changes(i64, ChangeBatch),
    /// The subscription ends with this error (e.g. the relation was dropped).
    Closed(String),
}

pub struct Subscriber {
    tx: mpsc::Sender<Event>,
    lagged: Arc<AtomicBool>,
}

/// The receiving end, held by the connection.
#[derive(Debug)]
pub struct Subscription {
    pub rx: mpsc::Receiver<Event>,
    lagged: Arc<AtomicBool>,
}

impl Subscription {
    /// True when the subscription was cut off for falling behind.
    pub fn lagged(&self) -> bool {
        self.lagged.load(Ordering::SeqCst)
    }
}

pub fn channel() -> (Subscriber, Subscription) {
    let (tx, rx) = mpsc::channel(BUFFER_EPOCHS);
    let lagged = Arc::new(AtomicBool::new(false));
    (
        Subscriber {
            tx,
            lagged: lagged.clone(),
        },
        Subscription { rx, lagged },
    )
}

/// Offer a delta to subscribers, dropping those that are gone or too far behind.
pub fn publish(subscribers: &mut Vec<Subscriber>, now: i64, delta: &ChangeBatch) {
    subscribers.retain(
        |s| match s.tx.try_send(Event::Changes(now, delta.clone())) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                s.lagged.store(true, Ordering::SeqCst);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        },
    );
}

/// End every subscription with a reason.
pub fn close(subscribers: Vec<Subscriber>, reason: &str) {
    for s in subscribers {
        let _ = s.tx.try_send(Event::Closed(reason.to_string()));
    }
}
