//! A streamed answer that bills what it carried: the provider's final usage
//! chunk when it comes, otherwise (the caller hung up, or the provider sent no
//! usage) an estimate from the input and the content chunks passed on.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use app::server::gateway::{Reservation, Usage};
use axum::body::Bytes;
use futures_util::{stream::BoxStream, Stream};
use serde_json::Value;

pub struct MeteredStream {
    inner: BoxStream<'static, Result<Bytes, std::io::Error>>,
    reservation: Option<Reservation>,
    /// Bytes of an event not yet ended by a blank line.
    pending: String,
    reported: Option<Usage>,
    content_chunks: i64,
    worst_input: i64,
}

impl MeteredStream {
    pub fn new(
        inner: BoxStream<'static, Result<Bytes, std::io::Error>>,
        reservation: Reservation,
        worst_input: i64,
    ) -> Self {
        Self {
            inner,
            reservation: Some(reservation),
            pending: String::new(),
            reported: None,
            content_chunks: 0,
            worst_input,
        }
    }

    /// Reads the `data:` lines of whole events: content deltas and usage.
    fn observe(&mut self, chunk: &[u8]) {
        self.pending.push_str(&String::from_utf8_lossy(chunk));
        while let Some(end) = self.pending.find("\n\n") {
            let event: String = self.pending.drain(..end + 2).collect();
            for line in event.lines() {
                let Some(data) = line.strip_prefix("data:").map(str::trim) else { continue };
                let Ok(value) = serde_json::from_str::<Value>(data) else { continue };
                if value["choices"][0]["delta"]["content"].as_str().is_some_and(|c| !c.is_empty()) {
                    self.content_chunks += 1;
                }
                if value["usage"].is_object() {
                    self.reported = Some(super::usage_of(&value));
                }
            }
        }
    }

    fn settle(&mut self, status: u16) {
        if let Some(reservation) = self.reservation.take() {
            // Without the provider's count: a token per 4 input bytes, a token per content chunk.
            let usage = self.reported.unwrap_or(Usage {
                input_tokens: (self.worst_input + 3) / 4,
                output_tokens: self.content_chunks,
            });
            reservation.settle(usage, status);
        }
    }
}

impl Stream for MeteredStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.observe(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                self.settle(502);
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                self.settle(200);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for MeteredStream {
    /// The caller went away before the end: bill what was used (499, as nginx logs it).
    fn drop(&mut self) {
        self.settle(499);
    }
}
