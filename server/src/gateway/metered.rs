//! A streamed answer that bills what it carried: the provider's final usage
//! chunk, or Chancery's estimate when the provider sent none. The stream ends
//! at the upstream deadline. When the caller hangs up, the rest of the answer
//! is still read (off the request, until the deadline) so the provider's own
//! count is what gets billed: the provider goes on writing either way.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use app::server::gateway::{Ending, Metered, Outcome, Reservation, Usage};
use axum::body::Bytes;
use futures_util::{stream::BoxStream, Stream, StreamExt};
use serde_json::{json, Value};
use tokio::time::{Instant, Sleep};

type Chunks = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// What the events passed on so far said.
#[derive(Default)]
struct Tally {
    /// Bytes of an event not yet ended by a blank line.
    pending: String,
    reported: Option<Usage>,
    content_bytes: usize,
}

impl Tally {
    /// Reads the `data:` lines of whole events: content deltas and usage.
    fn observe(&mut self, chunk: &[u8]) {
        self.pending.push_str(&String::from_utf8_lossy(chunk));
        while let Some(end) = self.pending.find("\n\n") {
            let event: String = self.pending.drain(..end + 2).collect();
            for line in event.lines() {
                let Some(data) = line.strip_prefix("data:").map(str::trim) else { continue };
                let Ok(value) = serde_json::from_str::<Value>(data) else { continue };
                if let Some(choices) = value["choices"].as_array() {
                    self.content_bytes +=
                        choices.iter().map(|c| super::output_bytes(&c["delta"])).sum::<usize>();
                }
                if value["usage"].is_object() {
                    self.reported = super::usage_of(&value);
                }
            }
        }
    }

    /// What a whole stream used: as reported, else estimated.
    fn metered(&self, reservation: &Reservation) -> Metered {
        match self.reported {
            Some(usage) => Metered::Reported(usage),
            None => Metered::Estimated(reservation.estimate(self.content_bytes)),
        }
    }
}

pub struct MeteredStream {
    inner: Option<Chunks>,
    reservation: Option<Reservation>,
    tally: Tally,
    deadline: Pin<Box<Sleep>>,
}

/// The event that tells a streaming caller why their stream stops early.
fn error_event(code: &str, message: &str) -> Bytes {
    let event = json!({ "error": { "message": message, "type": "api_error", "param": null, "code": code } });
    Bytes::from(format!("data: {event}\n\n"))
}

impl MeteredStream {
    pub fn new(inner: Chunks, reservation: Reservation, deadline: Instant) -> Self {
        Self {
            inner: Some(inner),
            reservation: Some(reservation),
            tally: Tally::default(),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    fn settle(
        &mut self,
        metered: impl FnOnce(&Tally, &Reservation) -> Metered,
        outcome: Outcome,
        status: u16,
    ) {
        if let Some(reservation) = self.reservation.take() {
            let metered = metered(&self.tally, &reservation);
            let upstream_status = (outcome != Outcome::UpstreamTimeout).then_some(200);
            reservation.settle(Ending { metered, outcome, status, upstream_status });
        }
        self.inner = None;
    }
}

impl Stream for MeteredStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        match inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.tally.observe(&chunk);
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(Some(Err(error))) => {
                tracing::warn!(%error, "upstream stream broke off");
                self.settle(|_, _| Metered::Unknown, Outcome::UpstreamError, 502);
                let event = error_event("upstream_error", "The model provider broke off this answer.");
                return Poll::Ready(Some(Ok(event)));
            }
            Poll::Ready(None) => {
                self.settle(Tally::metered, Outcome::Ok, 200);
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.settle(|_, _| Metered::Unknown, Outcome::UpstreamTimeout, 504);
            let event = error_event("upstream_timeout", "The model provider took too long to answer.");
            return Poll::Ready(Some(Ok(event)));
        }
        Poll::Pending
    }
}

impl Drop for MeteredStream {
    /// The caller went away before the end: read the rest of the answer off
    /// the request and bill what the provider reports (499, as nginx logs it).
    fn drop(&mut self) {
        let (Some(mut inner), Some(reservation)) = (self.inner.take(), self.reservation.take()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let ending = Ending {
                metered: Metered::Unknown,
                outcome: Outcome::ClientClosed,
                status: 499,
                upstream_status: None,
            };
            reservation.settle(ending);
            return;
        };
        let mut tally = std::mem::take(&mut self.tally);
        let deadline = self.deadline.deadline();
        runtime.spawn(async move {
            let ended = loop {
                match tokio::time::timeout_at(deadline, inner.next()).await {
                    Ok(Some(Ok(chunk))) => tally.observe(&chunk),
                    Ok(Some(Err(_))) => break Err(Outcome::UpstreamError),
                    Ok(None) => break Ok(()),
                    Err(_) => break Err(Outcome::UpstreamTimeout),
                }
            };
            let (metered, outcome) = match ended {
                Ok(()) => (tally.metered(&reservation), Outcome::ClientClosed),
                Err(outcome) => (Metered::Unknown, outcome),
            };
            reservation.settle(Ending { metered, outcome, status: 499, upstream_status: Some(200) });
        });
    }
}
