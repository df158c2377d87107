//! Metering off the response path: when a call's response ends, its request and delivered
//! bytes go to a meter thread, which counts tokens (`cl100k_base`), reads the agent's
//! reported usage and failure, decides the bill, gives the call's hold and counters back,
//! and sends the settled call to the writer. Token counting is CPU work; on threads of its
//! own it never holds up the async workers that move bytes.

use crate::body::Observed;
use crate::counters::{Counters, Taken};
use crate::credit::{Credit, Reservation};
use crate::directory::{Caller, Target};
use crate::writer::{Backlog, Writer};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tollgate_domain::Nanos;
use tollgate_domain::money::mul_div_round_half_up;
use tollgate_domain::pricing::{Pricing, Tokens};
use tollgate_metering::{
    Bill, Output, OutputCounter, answers_in_text, batch_requests, bill, call_failure, count_bytes, count_tokens,
    estimate, meter_body,
};
use tollgate_store::calls::{Charge, SettledCall, UsageRecord};

/// How a call is priced, decided before it is forwarded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Price {
    /// Charged on success: the base fee of utility methods, per-request prices.
    pub fixed: Nanos,
    /// Charged on success for the tokens billed.
    pub per_token: Option<Pricing>,
}

impl Price {
    /// Nothing to charge (notifications, responses the client posts, unpriced functions).
    pub fn free() -> Price {
        Price::default()
    }

    /// Whether a successful call at this price costs something.
    pub fn charges(&self) -> bool {
        self.fixed.0 > 0 || self.per_token.is_some()
    }

    /// The tokens a successful call is billed for (the >20% rule between `reported` and
    /// `counted`) and what it costs at this price: the fixed part plus, when priced per
    /// token, the tokens billed.
    fn bill(&self, reported: Option<Tokens>, counted: Tokens) -> (Bill, Nanos) {
        let token_pricing = self.per_token.clone().unwrap_or(Pricing::PerRequest { price: Nanos::ZERO });
        let billed = bill(reported, counted, &token_pricing, Nanos::ZERO, false, false, true);
        let per_token = if self.per_token.is_some() { billed.cost } else { Nanos::ZERO };
        let cost = self.fixed.checked_add(per_token).unwrap_or(self.fixed);
        (billed, cost)
    }
}

/// One request of a 2025-03-26 batch: settled as a call of its own.
#[derive(Debug, Clone)]
pub(crate) struct MemberCall {
    pub method: String,
    pub function: String,
    pub price: Price,
}

/// A call in flight: everything settlement needs besides what the response delivered.
pub(crate) struct Metering {
    pub request_id: String,
    pub created_at: i64,
    pub started: Instant,
    pub caller: Arc<Caller>,
    pub target: Arc<Target>,
    pub platform_account: String,
    pub method: String,
    pub function: String,
    pub request_body: Bytes,
    pub price: Price,
    pub reservation: Reservation,
    pub taken: Taken,
    pub http_status: u16,
    pub sse: bool,
    /// Set when the call failed before any response body (unreachable, timed out).
    pub error_code: Option<&'static str>,
    /// The request expects a JSON-RPC answer (it is not a notification, a response the
    /// client posts, or a health check): without one it did not succeed.
    pub expects_answer: bool,
    /// Which stream the meter knows this call's handed-over frames by.
    pub stream: u64,
    /// A batch's requests, in order (each settled on its own); empty for a single message.
    pub members: Vec<MemberCall>,
}

impl Metering {
    /// The usage record of this call (or of one of its batch's requests, `call` naming its
    /// method and function) under `id`, with what metering found: the tokens counted and
    /// billed and any failure. Its price is the caller's to fill in.
    fn record(
        &self,
        id: String,
        (method, function): (&str, &str),
        latency_ms: i64,
        billed: &Bill,
        counted: Tokens,
        error_code: Option<&'static str>,
    ) -> UsageRecord {
        let key = &self.caller.key.key;
        UsageRecord {
            id,
            created_at: self.created_at,
            org_id: key.org_id.clone(),
            user_id: key.user_id.clone(),
            key_id: key.id.clone(),
            installation_id: key.installation_id.clone(),
            agent_id: self.target.agent.id.clone(),
            version: self.target.version.version.clone(),
            function_name: bounded(function),
            method: bounded(method),
            input_tokens: billed.tokens_billed.input,
            output_tokens: billed.tokens_billed.output,
            cache_tokens: billed.tokens_billed.cache,
            counted_input_tokens: counted.input,
            counted_output_tokens: counted.output,
            latency_ms,
            http_status: i64::from(self.http_status),
            error_code: error_code.map(str::to_string),
            divergent: billed.divergent,
            ..UsageRecord::default()
        }
    }
}

enum Job {
    /// Frames of a long stream, delivered so far (`batch`: its responses are collected).
    Frames { stream: u64, frames: Vec<Bytes>, batch: bool },
    /// A finished call.
    Done { metering: Box<Metering>, observed: Observed, committed: Option<oneshot::Sender<()>> },
    /// Answer once every job sent before is settled and written.
    Flush(oneshot::Sender<()>),
}

/// Shared by the meter threads.
struct Settler {
    credit: Arc<Credit>,
    counters: Arc<Counters>,
    writer: Writer,
    platform_fee_bps: i64,
}

/// A meter thread's queue. Under load the thread takes whatever has queued every `nap`
/// (about a millisecond), so a call's end costs its sender a lock and a push — no thread is
/// woken per call; the thread parks only when it found nothing twice, and is woken once
/// when work comes back. With no nap (sync durability: a response waits for its charge) it
/// is woken for each job.
struct Mailbox {
    state: Mutex<Queue>,
    ready: Condvar,
    nap: Duration,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    parked: bool,
}

impl Mailbox {
    fn push(&self, job: Job) {
        let mut queue = self.state.lock().unwrap_or_else(|p| p.into_inner());
        queue.jobs.push(job);
        if queue.parked {
            queue.parked = false;
            self.ready.notify_one();
        }
    }

    /// The next jobs, waiting for some.
    fn take(&self, batch: &mut Vec<Job>) {
        let mut empty_naps = 0;
        let mut queue = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while queue.jobs.is_empty() {
            if self.nap.is_zero() || empty_naps >= 2 {
                queue.parked = true;
                queue = self.ready.wait(queue).unwrap_or_else(|p| p.into_inner());
            } else {
                drop(queue);
                std::thread::sleep(self.nap);
                empty_naps += 1;
                queue = self.state.lock().unwrap_or_else(|p| p.into_inner());
            }
        }
        std::mem::swap(&mut queue.jobs, batch);
    }
}

/// A handle to the meter threads.
#[derive(Clone)]
pub(crate) struct Meter {
    threads: Arc<Vec<Arc<Mailbox>>>,
    streams: Arc<AtomicU64>,
    sync: bool,
    /// Calls finished and not yet committed (the writer gives them back).
    backlog: Arc<Backlog>,
    /// Once the oldest of those is older than this, a finishing call waits for its commit
    /// even with async durability, so a crash loses only calls answered about this recently.
    max_commit_lag: Duration,
}

/// The longest function name or method stored on a usage record.
const MAX_NAME: usize = 200;

pub(crate) fn bounded(text: &str) -> String {
    let mut end = text.len().min(MAX_NAME);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The platform's share of `cost`, rounded half-up once.
pub(crate) fn platform_fee(cost: Nanos, bps: i64) -> Nanos {
    Nanos(mul_div_round_half_up(cost.0, bps.clamp(0, 10_000), 10_000).unwrap_or(0))
}

impl Meter {
    /// Starts `threads` meter threads feeding `writer`. `sync`: each call's end waits for
    /// its charge to be committed.
    pub fn start(
        threads: usize,
        credit: Arc<Credit>,
        counters: Arc<Counters>,
        writer: Writer,
        platform_fee_bps: i64,
        sync: bool,
        max_commit_lag: Duration,
    ) -> std::io::Result<Meter> {
        let backlog = writer.backlog();
        let settler = Arc::new(Settler { credit, counters, writer, platform_fee_bps });
        let nap = if sync { Duration::ZERO } else { Duration::from_millis(1) };
        let mut mailboxes = Vec::new();
        for i in 0..threads.max(1) {
            let mailbox = Arc::new(Mailbox { state: Mutex::new(Queue::default()), ready: Condvar::new(), nap });
            let (settler, inbox) = (settler.clone(), mailbox.clone());
            std::thread::Builder::new().name(format!("tollgate-meter-{i}")).spawn(move || settler.run(&inbox))?;
            mailboxes.push(mailbox);
        }
        Ok(Meter { threads: Arc::new(mailboxes), streams: Arc::new(AtomicU64::new(0)), sync, backlog, max_commit_lag })
    }

    /// Whether each call's end waits for its charge to be committed.
    pub fn is_sync(&self) -> bool {
        self.sync
    }

    /// A number naming a new call's stream (and choosing its thread).
    pub fn next_stream(&self) -> u64 {
        self.streams.fetch_add(1, Ordering::Relaxed)
    }

    fn send(&self, stream: u64, job: Job) {
        self.threads[(stream % self.threads.len() as u64) as usize].push(job);
    }

    /// Hands a long stream's delivered frames over before its end.
    pub fn hand_over(&self, metering: &Metering, frames: Vec<Bytes>) {
        let batch = !metering.members.is_empty();
        self.send(metering.stream, Job::Frames { stream: metering.stream, frames, batch });
    }

    /// A call is over: settle it. With sync durability — or when the writer is further
    /// behind than allowed — the returned receiver answers once its charge is committed
    /// (and the response's end waits for it).
    pub fn finish(&self, metering: Metering, observed: Observed) -> Option<oneshot::Receiver<()>> {
        let behind = self.backlog.finished(self.max_commit_lag);
        let (committed, wait) = if self.sync || behind {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let stream = metering.stream;
        self.send(stream, Job::Done { metering: Box::new(metering), observed, committed });
        wait
    }

    /// Waits until every call finished so far is settled and written.
    pub async fn flush(&self) {
        let mut waits = Vec::new();
        for thread in self.threads.iter() {
            let (tx, rx) = oneshot::channel();
            thread.push(Job::Flush(tx));
            waits.push(rx);
        }
        for wait in waits {
            let _ = wait.await;
        }
    }
}

impl Settler {
    fn run(&self, inbox: &Mailbox) {
        let mut streams: HashMap<u64, OutputCounter> = HashMap::new();
        let mut batch = Vec::new();
        loop {
            inbox.take(&mut batch);
            for job in batch.drain(..) {
                self.handle(job, &mut streams);
            }
        }
    }

    fn handle(&self, job: Job, streams: &mut HashMap<u64, OutputCounter>) {
        match job {
            Job::Frames { stream, frames, batch } => {
                let counter = streams
                    .entry(stream)
                    .or_insert_with(|| if batch { OutputCounter::with_answers() } else { OutputCounter::default() });
                for frame in &frames {
                    counter.feed(frame);
                }
            }
            Job::Done { metering, observed, mut committed } => {
                let counter = streams.remove(&metering.stream);
                let settled = if metering.members.is_empty() {
                    vec![self.settle(*metering, observed, counter)]
                } else {
                    self.settle_batch(*metering, observed, counter)
                };
                let count = settled.len();
                // The writer commits in order: the last call's commit covers the others.
                for (i, call) in settled.into_iter().enumerate() {
                    let last = i + 1 == count;
                    self.writer.send_call(call, if last { committed.take() } else { None }, last);
                }
            }
            Job::Flush(done) => self.writer.flush_then(done),
        }
    }

    /// Meters and bills a batch member by member: each request is priced by its own
    /// function, billed for its own text and its own answer (matched by id), and fails on
    /// its own — unless the whole response failed (unreachable, HTTP status ≥ 400, broken
    /// stream…), which fails every member. One usage record per request, ids
    /// `{request id}.{n}`. Free calls are not used in batches.
    fn settle_batch(&self, m: Metering, observed: Observed, counter: Option<OutputCounter>) -> Vec<SettledCall> {
        let answers = if m.sse {
            let mut counter = counter.unwrap_or_else(OutputCounter::with_answers);
            for frame in &observed.frames {
                counter.feed(frame);
            }
            counter.finish_with_answers().1
        } else {
            answers_in_text(&String::from_utf8_lossy(&observed.frames.concat()))
        };
        let whole = m
            .error_code
            .or(observed.failed)
            .or(if m.http_status >= 400 { Some(tollgate_metering::Failure::HttpStatus.code()) } else { None })
            .or(if observed.disconnected && observed.bytes == 0 { Some("client_disconnected") } else { None });
        let requests = batch_requests(&m.request_body);
        let mut used = vec![false; answers.len()];
        let mut settled: Vec<(UsageRecord, bool)> = Vec::with_capacity(m.members.len());
        let mut total = Nanos::ZERO;
        let mut tokens_billed = Tokens::default();
        let latency_ms = i64::try_from(m.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        for (i, member) in m.members.iter().enumerate() {
            let request = requests.get(i);
            let answer = request.and_then(|(id, _)| {
                let found = answers.iter().enumerate().position(|(j, a)| !used[j] && &a.id == id)?;
                used[found] = true;
                Some(&answers[found])
            });
            let counted = Tokens {
                input: request.map_or(0, |(_, text)| count_tokens(text)),
                output: answer.map_or(0, |a| a.tokens),
                cache: 0,
            };
            let error_code = whole.or(answer.and_then(|a| a.failure).map(|f| f.code())).or(if answer.is_none() {
                Some("agent_no_answer")
            } else {
                None
            });
            let reported = answer.and_then(|a| a.reported).map(|r| r.resolve(counted));
            let (billed, price) = member.price.bill(reported, counted);
            let cost = if error_code.is_some() { Nanos::ZERO } else { price };
            total = total.checked_add(cost).unwrap_or(total);
            tokens_billed = Tokens {
                input: tokens_billed.input.saturating_add(billed.tokens_billed.input),
                output: tokens_billed.output.saturating_add(billed.tokens_billed.output),
                cache: tokens_billed.cache.saturating_add(billed.tokens_billed.cache),
            };
            let id = format!("{}.{}", m.request_id, i + 1);
            let record = UsageRecord {
                cost,
                fee: platform_fee(cost, self.platform_fee_bps),
                ..m.record(id, (&member.method, &member.function), latency_ms, &billed, counted, error_code)
            };
            settled.push((record, error_code.is_none()));
        }
        // The batch's draw on the lease is shared out over its charged members in order.
        let draw = self.credit.settle(m.reservation, total);
        self.counters.settle(m.taken, tokens_billed, false);
        let (lease_id, mut drawable) = match draw {
            Some(d) => (Some(d.lease_id), d.amount.0),
            None => (None, 0),
        };
        settled
            .into_iter()
            .map(|(record, _)| {
                let charge = (record.cost.0 > 0).then(|| {
                    let share = record.cost.0.min(drawable);
                    drawable -= share;
                    Charge {
                        org_account: m.caller.org_account.clone(),
                        lease: lease_id.clone().filter(|_| share > 0).map(|id| (id, Nanos(share))),
                        publisher_account: m.target.publisher_account.clone(),
                        platform_account: m.platform_account.clone(),
                    }
                });
                SettledCall { record, charge }
            })
            .collect()
    }

    /// Meters and bills one finished call, and gives back its hold and counters.
    fn settle(&self, mut m: Metering, observed: Observed, counter: Option<OutputCounter>) -> SettledCall {
        let output: Output = if m.sse {
            let mut counter = counter.unwrap_or_default();
            for frame in &observed.frames {
                counter.feed(frame);
            }
            counter.finish()
        } else if observed.frames.len() == 1 {
            meter_body(&observed.frames[0])
        } else {
            meter_body(&observed.frames.concat())
        };
        let counted = Tokens {
            input: count_bytes(&m.request_body),
            output: output
                .tokens
                .saturating_add(estimate(usize::try_from(observed.unkept_bytes).unwrap_or(usize::MAX))),
            cache: 0,
        };
        let failure = call_failure(m.http_status, output.failure);
        // A stream cut short — by the caps, or by a client that hung up after receiving
        // something — is charged for what was delivered; otherwise a request needs its
        // answer to count as a success.
        let cut_short = observed.truncated || (observed.disconnected && observed.bytes > 0);
        let error_code = m
            .error_code
            .or(observed.failed)
            .or(failure.map(|f| f.code()))
            .or(if observed.disconnected && observed.bytes == 0 { Some("client_disconnected") } else { None })
            .or(if m.expects_answer && !output.answered && !cut_short { Some("agent_no_answer") } else { None });
        let success = error_code.is_none();
        let reported = output.reported.map(|r| r.resolve(counted));
        let (billed, price) = m.price.bill(reported, counted);
        let free_tier = success && m.taken.free_call();
        let cost = if !success || free_tier { Nanos::ZERO } else { price };
        let latency_ms = i64::try_from(m.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let id = std::mem::take(&mut m.request_id);
        let record = UsageRecord {
            cost,
            fee: platform_fee(cost, self.platform_fee_bps),
            free_tier,
            ..m.record(id, (&m.method, &m.function), latency_ms, &billed, counted, error_code)
        };
        let draw = self.credit.settle(m.reservation, cost);
        self.counters.settle(m.taken, billed.tokens_billed, free_tier);
        tracing::debug!(
            request.id = %record.id, agent.slug = %m.target.agent.slug, key.id = %record.key_id, function = %record.function_name,
            status = m.http_status, cost = %cost, duration_ms = record.latency_ms, error = error_code.unwrap_or(""),
            "call"
        );
        let charge = (cost.0 > 0).then(|| Charge {
            org_account: m.caller.org_account.clone(),
            lease: draw.map(|d| (d.lease_id, d.amount)),
            publisher_account: m.target.publisher_account.clone(),
            platform_account: m.platform_account,
        });
        SettledCall { record, charge }
    }
}
