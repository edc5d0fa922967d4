//! What operators can follow of each request: an id, and a W3C trace context.
//!
//! - `x-request-id`: the caller's when it sent a sane one (what a load balancer
//!   or an SDK set), a new one otherwise; returned with the answer, and carried
//!   by every log line written while answering (the `request` span).
//! - `traceparent`: the gateway's call to the upstream continues the caller's
//!   trace (same trace id, a span id of its own), or starts one, so a provider's
//!   logs can be joined with ours.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use http::{HeaderName, HeaderValue};
use tracing::Instrument as _;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Gives each request its id and trace context, and answers with the id.
pub async fn request_context(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| sane_request_id(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let trace = TraceContext::child_of(request.headers().get(&TRACEPARENT).and_then(|v| v.to_str().ok()));
    let route = request.extensions().get::<MatchedPath>().map_or("-", MatchedPath::as_str).to_owned();
    // The id is sane (visible ASCII) and the route is one of ours: neither can forge a log line.
    let span = tracing::info_span!("request", id = %id, method = %request.method(), route = %route);
    request.extensions_mut().insert(trace);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

/// Up to 128 visible ASCII characters, no spaces: enough for any id scheme,
/// nothing that could forge a log line.
fn sane_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A W3C trace context (`traceparent`): the trace a request belongs to, and
/// the span that calls onwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// Bit 0: sampled.
    pub flags: u8,
}

impl TraceContext {
    /// A span of our own in the caller's trace, or in a new (sampled) trace when
    /// the caller sent none, or one that does not parse.
    pub fn child_of(traceparent: Option<&str>) -> Self {
        let span_id = random_nonzero();
        match traceparent.and_then(Self::parse) {
            Some(parent) => Self { span_id, ..parent },
            None => Self { trace_id: random_nonzero(), span_id, flags: 1 },
        }
    }

    /// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; all-zero ids
    /// are invalid. A later version's header is read by its first four fields.
    pub fn parse(text: &str) -> Option<Self> {
        let mut fields = text.trim().split('-');
        let version = u8::from_str_radix(fields.next().filter(|v| v.len() == 2)?, 16).ok()?;
        let trace_id: [u8; 16] = hex_bytes(fields.next()?)?;
        let span_id: [u8; 8] = hex_bytes(fields.next()?)?;
        let flags = hex_bytes::<1>(fields.next()?)?[0];
        let well_formed = version != 0xff
            && (version > 0 || fields.next().is_none())
            && trace_id != [0; 16]
            && span_id != [0; 8];
        well_formed.then_some(Self { trace_id, span_id, flags })
    }

    pub fn header_value(&self) -> String {
        format!("00-{}-{}-{:02x}", hex(&self.trace_id), hex(&self.span_id), self.flags)
    }
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    loop {
        let mut bytes = [0_u8; N];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
        if bytes != [0; N] {
            return bytes;
        }
    }
}

/// Lower-case hex of exactly `N` bytes.
fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut bytes = [0_u8; N];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_callers_trace_is_continued_with_a_span_of_our_own() {
        let child = TraceContext::child_of(Some(PARENT));
        let header = child.header_value();
        assert!(header.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{header}");
        assert!(header.ends_with("-01"), "{header}");
        assert_ne!(&header[36..52], "00f067aa0ba902b7", "a new span id");
        assert_eq!(TraceContext::parse(&header), Some(child));
    }

    #[test]
    fn malformed_parents_start_a_new_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
            let fresh = TraceContext::child_of(Some(bad));
            assert_eq!(fresh.flags, 1);
            assert_ne!(fresh.trace_id, [0; 16]);
        }
        // A later version may add fields.
        assert!(TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more").is_some());
    }

    #[test]
    fn request_ids_are_taken_only_when_sane() {
        assert!(sane_request_id("req_01HZX-42.a"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("two words"));
        assert!(!sane_request_id(&"x".repeat(129)));
        assert!(!sane_request_id("é"));
    }
}
