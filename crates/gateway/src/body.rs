//! The response body as it streams back: passed through frame by frame (never buffered
//! before the client gets it), kept for metering by reference (no copy), cut at the safety
//! caps, and reported once when it ends — normally, by an upstream error or idle timeout,
//! or because the client went away (dropping the body closes the upstream stream).
//!
//! An SSE stream that ends badly (the upstream broke or went silent, or a cap cut it) gets
//! a last event from the gateway: a JSON-RPC error (-32000) saying why, answering the
//! request's id when there is one, so a client never waits for an answer that will not
//! come. With `sync` durability, a call that may be charged has its latest frame held back
//! until the next one arrives or, for the last one, until its charge is committed: the last
//! byte reaches the client only after the commit. On an SSE stream this starts at the frame
//! that carries the answer (`"result"` or `"error"`): the events before it (progress,
//! logs, requests to the client) pass at once, as they would without billing.

use crate::directory::InFlight;
use crate::meter::{Meter, Metering};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A plain (JSON) response is kept for metering up to this size; bytes past it are
/// estimated at four bytes a token.
pub(crate) const KEEP_PLAIN_BYTES: usize = 16 * 1024 * 1024;
/// A stream's delivered frames go to the meter whenever this much has piled up.
pub(crate) const HAND_OVER_BYTES: usize = 1024 * 1024;

/// How a response ended, and the frames delivered (kept for metering only, dropped once
/// counted, never stored).
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Delivered frames not yet handed to the meter.
    pub frames: Vec<Bytes>,
    pub bytes: u64,
    pub events: u64,
    /// Plain-body bytes delivered past [`KEEP_PLAIN_BYTES`].
    pub unkept_bytes: u64,
    /// Cut at a safety cap.
    pub truncated: bool,
    /// The upstream failed or went silent mid-stream.
    pub failed: Option<&'static str>,
    /// The client went away before the end.
    pub disconnected: bool,
}

/// The metered, capped pass-through body.
pub(crate) struct MeteredBody {
    inner: Incoming,
    observed: Observed,
    kept: usize,
    metering: Option<Metering>,
    meter: Meter,
    /// `sync` durability: the end of the body waits until the call's charge is committed.
    committed: Option<oneshot::Receiver<()>>,
    /// The end will wait for a commit, so the length must not be announced up front (the
    /// client would take the response as complete at its last byte).
    sync: bool,
    /// `sync` durability and a call that may be charged: the latest frame is held back
    /// until the next arrives or the charge is committed.
    hold_back: bool,
    /// The frame held back.
    held: Option<Bytes>,
    /// On an SSE stream, a frame that may carry the answer was seen: frames are held back
    /// from it on (before it, they pass at once).
    answering: bool,
    /// The last bytes of the previous frame, for a marker split between two frames.
    carry: Vec<u8>,
    /// What the gateway sends after the upstream's bytes (an SSE error event).
    tail: Option<Bytes>,
    /// The JSON-RPC id the request asked with (for the error event).
    rpc_id: Option<Value>,
    /// The call's place among its version's calls in flight, given back when it ends.
    slot: Option<InFlight>,
    /// The gateway's shutdown signal, and its wait (made the first time the body waits).
    closing: CancellationToken,
    closed: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    ended: bool,
    idle: Duration,
    /// The idle timer, made the first time the upstream keeps the body waiting (a body that
    /// is already there never needs one) and moved forward only when it fires.
    deadline: Option<Pin<Box<Sleep>>>,
    /// When the upstream last sent something.
    last_frame: Instant,
    max_events: u64,
    max_bytes: u64,
    /// Bytes in the current SSE line (to find the blank lines that end events).
    line_len: usize,
    /// Whether the current event has any content yet.
    in_event: bool,
    sse: bool,
    /// The body's length, when the upstream announced it.
    length: Option<u64>,
}

/// How a metered body behaves besides its caps.
pub(crate) struct Shape {
    pub sse: bool,
    pub idle: Duration,
    pub max_events: u64,
    pub max_bytes: u64,
    /// The call may be charged (sync durability then holds its last frame back).
    pub chargeable: bool,
    pub rpc_id: Option<Value>,
    pub slot: Option<InFlight>,
    /// Cancelled when the gateway shuts down and cuts what still streams.
    pub closing: CancellationToken,
}

/// The gateway's last event on an SSE stream that ended badly: a JSON-RPC error answering
/// `id`, preceded by what ends an event left open (a partial event is then dispatched as
/// it came, and the error follows it).
pub(crate) fn error_event(id: Option<&Value>, message: &str, line_open: bool, event_open: bool) -> Bytes {
    let error = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": {"code": -32000, "message": message},
    });
    let close = if line_open {
        "\n\n"
    } else if event_open {
        "\n"
    } else {
        ""
    };
    Bytes::from(format!("{close}event: message\ndata: {error}\n\n"))
}

impl MeteredBody {
    pub fn new(inner: Incoming, metering: Metering, meter: Meter, shape: Shape) -> Self {
        let Shape { sse, idle, max_events, max_bytes, chargeable, rpc_id, slot, closing } = shape;
        let sync = meter.is_sync();
        MeteredBody {
            sync,
            hold_back: sync && chargeable,
            held: None,
            answering: false,
            carry: Vec::new(),
            tail: None,
            rpc_id,
            slot,
            closing,
            closed: None,
            observed: Observed::default(),
            kept: 0,
            metering: Some(metering),
            meter,
            committed: None,
            ended: false,
            idle,
            deadline: None,
            last_frame: Instant::now(),
            max_events,
            max_bytes,
            line_len: 0,
            in_event: false,
            length: inner.size_hint().exact(),
            inner,
            sse,
        }
    }

    /// Hands the call to the meter (once), and gives its place in flight back.
    fn finish(&mut self) {
        if let Some(metering) = self.metering.take() {
            self.committed = self.meter.finish(metering, std::mem::take(&mut self.observed));
        }
        self.slot = None;
    }

    /// On an SSE stream, queues the gateway's error event saying why the stream ended.
    fn fail_stream(&mut self, message: &str) {
        if self.sse && self.tail.is_none() {
            let event_open = self.in_event;
            self.tail = Some(error_event(self.rpc_id.as_ref(), message, self.line_len > 0, event_open));
        }
    }

    /// Counts SSE events ending in `chunk`; returns the offset just past the event that
    /// reaches the event cap, if one does.
    fn scan_events(&mut self, chunk: &[u8]) -> Option<usize> {
        for (i, b) in chunk.iter().enumerate() {
            match b {
                b'\n' => {
                    if self.line_len == 0 && self.in_event {
                        self.observed.events += 1;
                        self.in_event = false;
                        if self.observed.events >= self.max_events {
                            return Some(i + 1);
                        }
                    }
                    self.line_len = 0;
                }
                b'\r' => {}
                _ => {
                    self.line_len += 1;
                    self.in_event = true;
                }
            }
        }
        None
    }

    fn deliver(&mut self, data: &Bytes) {
        self.observed.bytes += data.len() as u64;
        if self.sse {
            self.kept += data.len();
            self.observed.frames.push(data.clone());
            if self.kept >= HAND_OVER_BYTES {
                if let Some(metering) = &self.metering {
                    self.meter.hand_over(metering, std::mem::take(&mut self.observed.frames));
                }
                self.kept = 0;
            }
            return;
        }
        let room = KEEP_PLAIN_BYTES.saturating_sub(self.kept);
        if room >= data.len() {
            self.kept += data.len();
            self.observed.frames.push(data.clone());
        } else {
            self.kept += room;
            self.observed.frames.push(data.slice(..room));
            self.observed.unkept_bytes += (data.len() - room) as u64;
        }
    }

    /// Whether the gateway is cutting open streams; otherwise this body is woken when it does.
    fn shutting_down(&mut self, cx: &mut Context<'_>) -> bool {
        let closing = &self.closing;
        let wait = self.closed.get_or_insert_with(|| Box::pin(closing.clone().cancelled_owned()));
        wait.as_mut().poll(cx).is_ready()
    }

    /// Whether the upstream has been silent for the idle timeout; otherwise the timer is
    /// armed to wake this body when it could be.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let due = self.last_frame + self.idle;
        let deadline = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        while deadline.as_mut().poll(cx).is_ready() {
            if Instant::now() >= self.last_frame + self.idle {
                return true;
            }
            deadline.as_mut().reset(self.last_frame + self.idle);
        }
        false
    }

    /// The end of the body: the call is handed to the meter; then (sync durability) the
    /// charge's commit is awaited; then the frame held back and the gateway's error event
    /// go out; then the body ends.
    fn end(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.finish();
        if let Some(committed) = self.committed.as_mut() {
            if Pin::new(committed).poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.committed = None;
        }
        if let Some(held) = self.held.take() {
            return Poll::Ready(Some(Ok(Frame::data(held))));
        }
        if let Some(tail) = self.tail.take() {
            return Poll::Ready(Some(Ok(Frame::data(tail))));
        }
        self.ended = true;
        Poll::Ready(None)
    }
}

/// Whether an SSE frame may carry a JSON-RPC answer (a `"result"` or `"error"` member,
/// also when split between `carry`, the end of the frame before, and this one): from such
/// a frame on, `sync` durability holds frames back. A notification that merely mentions
/// the word only starts the holding early.
fn may_answer(carry: &mut Vec<u8>, frame: &[u8]) -> bool {
    const MARKERS: [&[u8]; 2] = [b"\"result\"", b"\"error\""];
    let found = |text: &[u8]| MARKERS.iter().any(|m| text.windows(m.len()).any(|w| w == *m));
    // The bytes before this frame and its first ones hold any marker split between them.
    let mut joint = std::mem::take(carry);
    joint.extend_from_slice(&frame[..frame.len().min(7)]);
    let answer = found(&joint) || found(frame);
    let seen: &[u8] = if frame.len() >= 7 { frame } else { &joint };
    *carry = seen[seen.len().saturating_sub(7)..].to_vec();
    answer
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            if this.metering.is_none() {
                // Finished (cut, failed or ended): the commit, the held frame and the tail.
                return this.end(cx);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => {
                    if this.shutting_down(cx) {
                        this.observed.failed = Some("gateway_shutdown");
                        this.fail_stream("the gateway is shutting down; send the request again");
                        return this.end(cx);
                    }
                    if this.idle_expired(cx) {
                        this.observed.failed = Some("upstream_idle_timeout");
                        this.fail_stream("the agent went silent and the stream was closed by the gateway");
                        return this.end(cx);
                    }
                    return Poll::Pending;
                }
                Poll::Ready(None) => return this.end(cx),
                Poll::Ready(Some(Err(e))) => {
                    tracing::warn!(error = %e, "upstream stream failed");
                    this.observed.failed = Some("upstream_stream_error");
                    this.fail_stream("the agent's stream broke off before it ended");
                    return this.end(cx);
                }
                Poll::Ready(Some(Ok(frame))) => {
                    this.last_frame = Instant::now();
                    let Ok(mut data) = frame.into_data() else {
                        // Trailers: nothing to meter, nothing to pass on.
                        continue;
                    };
                    let mut cut = false;
                    let room = this.max_bytes.saturating_sub(this.observed.bytes);
                    if (data.len() as u64) > room {
                        data.truncate(usize::try_from(room).unwrap_or(usize::MAX));
                        cut = true;
                    }
                    // Events are counted (and the event cap applied) on what is delivered.
                    if let Some(end) = this.sse.then(|| this.scan_events(&data)).flatten() {
                        data.truncate(end);
                        cut = true;
                    }
                    this.deliver(&data);
                    let last = if cut {
                        tracing::warn!(
                            bytes = this.observed.bytes,
                            events = this.observed.events,
                            "response stream cut at a safety cap"
                        );
                        this.observed.truncated = true;
                        this.fail_stream(
                            "the response stream reached the gateway's limit (events or bytes) and was cut",
                        );
                        true
                    } else {
                        // The last frame of a body of known length: the server may not poll
                        // again once it is written, so the call ends here, not at a drop.
                        this.inner.is_end_stream() || this.length == Some(this.observed.bytes)
                    };
                    if last {
                        this.finish();
                    }
                    // A last frame whose commit is awaited (sync durability, or a database
                    // that fell behind) goes out after the commit.
                    let wait_for_commit = last && this.committed.is_some();
                    if this.hold_back && this.sse && !this.answering {
                        this.answering = may_answer(&mut this.carry, &data);
                    }
                    let hold = this.hold_back && (!this.sse || this.answering);
                    if !(hold || wait_for_commit) {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    // Hold this frame back; let the one held before it go.
                    match this.held.replace(data) {
                        Some(previous) => return Poll::Ready(Some(Ok(Frame::data(previous)))),
                        None if last => return this.end(cx),
                        None => continue,
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        if self.sync || self.sse || self.metering.is_none() { SizeHint::default() } else { self.inner.size_hint() }
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        if self.metering.is_some() {
            // A frame held back never reached the client: it is not metered either (unless
            // it was already handed to the meter with a long stream's frames).
            if let Some(held) = self.held.take()
                && self.observed.frames.last().is_some_and(|f| f.len() == held.len() && f.as_ptr() == held.as_ptr())
            {
                self.observed.frames.pop();
                self.observed.bytes = self.observed.bytes.saturating_sub(held.len() as u64);
                self.kept = self.kept.saturating_sub(held.len());
            }
            self.observed.disconnected = true;
            self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::may_answer;

    #[test]
    fn an_answer_is_found_in_a_frame_and_across_frames() {
        let frames = |parts: &[&str]| {
            let mut carry = Vec::new();
            parts.iter().map(|p| may_answer(&mut carry, p.as_bytes())).collect::<Vec<_>>()
        };
        assert_eq!(frames(&["data: {\"method\":\"notifications/progress\"}\n\n"]), [false]);
        assert_eq!(frames(&["data: {\"id\":1,\"result\":{}}\n\n"]), [true]);
        assert_eq!(frames(&["data: {\"id\":1,\"error\":{}}"]), [true]);
        assert_eq!(frames(&["data: {\"id\":1,\"res", "ult\":{}}\n\n"]), [false, true]);
        assert_eq!(frames(&["data: {\"id\":1,\"", "e", "rr", "or\":1}"]), [false, false, false, true]);
        assert_eq!(frames(&["\"error"]), [false]);
        assert_eq!(frames(&["\"err", "or\""]), [false, true]);
    }
}
