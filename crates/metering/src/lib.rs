//! Tollgate's metering: which function a call used, how many tokens it took, whether it
//! failed, and what it is billed. Pure functions over request and response bytes — no HTTP,
//! no database — for the gateway's hot path to call.
//!
//! - [`parse_request`]: the request body as JSON-RPC — a [`Message`] whose [`Call`] names
//!   the method, the function billed, and whether it is a utility method; or the
//!   [`RpcError`] (-32700 / -32600) to answer with.
//! - [`SseParser`]: an incremental `text/event-stream` parser.
//! - [`count_tokens`]: the platform's own `cl100k_base` count; [`OutputCounter`] counts a
//!   stream event by event as it is delivered, [`meter_body`] a whole body.
//! - [`usage_in`] / [`failure_in`]: the agent's reported usage and failure in a message.
//! - [`bill`]: the billing decision.
//!
//! A call end to end: `parse_request(request)` → forward → feed the delivered bytes to an
//! [`OutputCounter`] (or [`meter_body`] the whole body) → [`meter_response`] gives both
//! sides' counts → [`call_failure`] with the HTTP status → [`bill`] with
//! `reported.map(|r| r.resolve(counted))`.

mod batch;
mod bill;
mod cl100k;
mod report;
mod rpc;
mod sse;
mod tokens;

pub use batch::{Answer, answers_in_text, batch_requests};
pub use bill::{Bill, bill, diverges};
pub use report::{Failure, ReportedUsage, answers_in, call_failure, failure_in, usage_in};
pub use rpc::{Call, INVALID_REQUEST, Message, PARSE_ERROR, RpcError, function_of, is_utility, parse_request};
pub use sse::{SseEvent, SseParser};
pub use tokens::{Output, OutputCounter, count_bytes, count_tokens, estimate, meter_body, warm_up};

use tollgate_domain::pricing::Tokens;

/// Both sides' view of a finished call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metered {
    /// The platform's counts: input = the request body, output = the response body (or
    /// the sum over delivered SSE events of their data). Cache is always 0.
    pub counted: Tokens,
    /// What the agent reported, if anything.
    pub reported: Option<ReportedUsage>,
    /// What the response body said about failure (the HTTP status is not known here; see
    /// [`call_failure`]).
    pub failure: Option<Failure>,
    /// SSE events delivered (0 for a plain body).
    pub events: u64,
}

/// Meters a call from its request body and the response bytes delivered to the client,
/// an SSE stream when `sse`. CPU work: run it off the async workers.
pub fn meter_response(request_body: &[u8], delivered: &[u8], sse: bool) -> Metered {
    let output = if sse {
        let mut counter = OutputCounter::new();
        counter.feed(delivered);
        counter.finish()
    } else {
        meter_body(delivered)
    };
    Metered {
        counted: Tokens { input: count_bytes(request_body), output: output.tokens, cache: 0 },
        reported: output.reported,
        failure: output.failure,
        events: output.events,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    /// A small xorshift generator: reproducible random inputs without a dependency.
    pub struct Rng(pub u64);

    impl Rng {
        /// A number in `0..n` (0 when `n` is 0).
        pub fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tollgate_domain::Nanos;
    use tollgate_domain::pricing::Pricing;

    const REQUEST: &str =
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"summarize","arguments":{"text":"a b c"}}}"#;

    #[test]
    fn meters_a_json_call_end_to_end() {
        let call = parse_request(REQUEST.as_bytes()).unwrap();
        let call = call.call().unwrap();
        assert_eq!((call.function.as_str(), call.utility), ("summarize", false));
        let response = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"a b"}],"_meta":{"usage":{"input_tokens":3,"output_tokens":2,"cache_tokens":0}}}}"#;
        let metered = meter_response(REQUEST.as_bytes(), response, false);
        assert_eq!(
            metered.counted,
            Tokens { input: count_bytes(REQUEST.as_bytes()), output: count_bytes(response), cache: 0 }
        );
        assert_eq!(metered.failure, None);
        assert_eq!(metered.events, 0);
        let reported = metered.reported.map(|r| r.resolve(metered.counted));
        assert_eq!(reported, Some(Tokens { input: 3, output: 2, cache: 0 }));
        let pricing = Pricing::PerToken {
            input_per_million: Nanos(1_000_000_000),
            output_per_million: Nanos(2_000_000_000),
            cache_per_million: Nanos::ZERO,
        };
        let success = call_failure(200, metered.failure).is_none();
        let billed = bill(reported, metered.counted, &pricing, Nanos(1), false, false, success);
        // The words-not-tokens report diverges from the real count: the lower counts are billed.
        assert!(billed.divergent);
        assert_eq!(billed.tokens_billed, Tokens { input: 3, output: 2, cache: 0 });
        assert_eq!(billed.cost, Nanos(3 * 1000 + 2 * 2000));
    }

    #[test]
    fn meters_a_stream_end_to_end() {
        let stream = concat!(
            "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"isError\":true}}\r\n\r\n",
            "data: {\"streaming\":true,\"delta\":null,\"input_tokens\":12,\"output_tokens\":40}\r\n\r\n",
        );
        let metered = meter_response(REQUEST.as_bytes(), stream.as_bytes(), true);
        assert_eq!(metered.events, 2);
        assert_eq!(metered.failure, Some(Failure::ToolError));
        assert_eq!(metered.reported, Some(ReportedUsage { input: Some(12), output: Some(40), cache: None }));
        let expected = count_tokens(r#"{"jsonrpc":"2.0","id":1,"result":{"isError":true}}"#)
            + count_tokens(r#"{"streaming":true,"delta":null,"input_tokens":12,"output_tokens":40}"#);
        assert_eq!(metered.counted.output, expected);
        let price = Pricing::PerRequest { price: Nanos(5_000_000) };
        let success = call_failure(200, metered.failure).is_none();
        let billed = bill(None, metered.counted, &price, Nanos(1), false, true, success);
        assert_eq!((billed.cost, billed.free_tier_used), (Nanos::ZERO, false));
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = testing::Rng(0xdead_beef);
        let alphabet = b"{}[]\":,data: \r\n\xff\xc3input_tokens0123456789-.result_meta";
        for len in [0, 1, 2, 7, 64, 1000, 20_000] {
            let bytes: Vec<u8> = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            let _ = parse_request(&bytes);
            for sse in [false, true] {
                let metered = meter_response(&bytes, &bytes, sse);
                assert!(metered.counted.input >= 0 && metered.counted.output >= 0);
            }
        }
    }
}
