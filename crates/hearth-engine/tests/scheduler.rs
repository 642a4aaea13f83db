//! The real engine (LlmEngine + scheduler) over the deterministic byte runner.
#![cfg(feature = "testing")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hearth_engine::llm::{LlmEngine, LlmEngineConfig, PromptFormat, RenderOptions};
use hearth_engine::test_runner::{ByteRunner, ByteTokenizer};
use hearth_engine::*;

struct Plain;

impl PromptFormat for Plain {
    fn render(&self, prompt: &Prompt, _: &RenderOptions) -> Result<String, EngineError> {
        let mut out = String::new();
        for t in &prompt.turns {
            for s in &t.segments {
                if let Segment::Text(x) = s {
                    out.push_str(x);
                }
            }
        }
        Ok(out)
    }
    fn supports_thinking(&self) -> bool {
        false
    }
}

fn engine(sequences: u32, queue: usize) -> LlmEngine {
    engine_with(sequences, queue, true, Arc::default())
}

/// `sharing`: whether the runner shares prefixes between sequences; every
/// token it shares is counted in `shared`.
fn engine_with(sequences: u32, queue: usize, sharing: bool, shared: Arc<AtomicUsize>) -> LlmEngine {
    engine_from(queue, move || {
        let mut r = ByteRunner::new(256 * sequences, sequences);
        r.sharing = sharing;
        r.shared_tokens = shared.clone();
        r
    })
}

/// An engine whose runner (and every runner after a restart) `make` builds.
fn engine_from(queue: usize, make: impl Fn() -> ByteRunner + Send + 'static) -> LlmEngine {
    let cfg = LlmEngineConfig {
        id: "bytes".into(),
        display_name: "bytes".into(),
        description: String::new(),
        max_output_tokens: 64,
        prefill_chunk: 16,
        queue_limit: queue,
        max_thinking_tokens: None,
        sampling: Default::default(),
        jump_forward: true,
        speculate: true,
    };
    LlmEngine::start(
        cfg,
        Arc::new(ByteTokenizer::default()),
        Arc::new(Plain),
        Box::new(move || Ok(Box::new(make()) as Box<dyn hearth_engine::runner::Runner>)),
    )
    .expect("engine")
}

fn request(text: &str) -> GenerateRequest {
    GenerateRequest {
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        max_output_tokens: Some(40),
        ..GenerateRequest::new(Prompt::user(text))
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Outcome {
    texts: Vec<String>,
    reasons: Vec<Option<FinishReason>>,
    tokens: Vec<u32>,
    prompt: u32,
    cached: u32,
}

async fn collect(rx: EventStream, n: usize) -> Outcome {
    match outcome(rx, n).await {
        Ok(o) => o,
        Err(e) => panic!("failed: {e}"),
    }
}

/// The request's outcome, or the error it failed with.
async fn outcome(mut rx: EventStream, n: usize) -> Result<Outcome, EngineError> {
    let mut o = Outcome {
        texts: vec![String::new(); n],
        reasons: vec![None; n],
        tokens: vec![0; n],
        prompt: 0,
        cached: 0,
    };
    while let Some(ev) = rx.recv().await {
        match ev {
            EngineEvent::Started {
                prompt_tokens,
                cached_tokens,
                ..
            } => {
                o.prompt = prompt_tokens;
                o.cached = cached_tokens;
            }
            EngineEvent::Delta {
                candidate, text, ..
            } => o.texts[candidate as usize].push_str(&text),
            EngineEvent::Finished {
                candidate,
                reason,
                usage,
            } => {
                o.reasons[candidate as usize] = Some(reason);
                o.tokens[candidate as usize] = usage.output_tokens;
            }
            EngineEvent::Failed(e) => return Err(e),
            EngineEvent::ToolCall { .. } => panic!("no tools here"),
        }
    }
    Ok(o)
}

/// Starts every prompt on `engine` at once, then collects each answer.
async fn run_together<S: AsRef<str>>(engine: &LlmEngine, prompts: &[S]) -> Vec<Outcome> {
    let streams: Vec<_> = prompts
        .iter()
        .map(|p| engine.generate(request(p.as_ref())).expect("gen"))
        .collect();
    let mut out = Vec::new();
    for s in streams {
        out.push(collect(s, 1).await);
    }
    out
}

const PROMPTS: [&str; 8] = [
    "alpha",
    "bravo charlie",
    "delta",
    "echo foxtrot golf",
    "hotel",
    "india juliet",
    "kilo",
    "lima mike november",
];

#[tokio::test]
async fn batching_does_not_change_greedy_results() {
    let alone = engine(8, 16);
    let mut solo = Vec::new();
    for p in PROMPTS {
        solo.push(collect(alone.generate(request(p)).expect("gen"), 1).await);
    }
    let together = run_together(&engine(8, 16), &PROMPTS).await;
    assert_eq!(solo, together);
    assert!(solo.iter().all(|o| o.reasons[0].is_some() && o.prompt > 0));
    assert!(solo.iter().any(|o| !o.texts[0].is_empty()));
}

#[tokio::test]
async fn concurrent_prompts_prefill_their_common_prefix_once() {
    // The shared part is longer than a step's prefill budget (16): it is
    // shared over several steps, tagged onto the first prompt's tokens.
    let prefix = "You are a terse assistant. Answer: ";
    let prompts: Vec<String> = PROMPTS.iter().map(|p| format!("{prefix}{p}")).collect();
    let mut alone = Vec::new();
    for p in &prompts {
        let e = engine_with(8, 16, false, Arc::default());
        alone.push(collect(e.generate(request(p)).expect("gen"), 1).await);
    }
    let shared = Arc::new(AtomicUsize::new(0));
    let e = engine_with(8, 16, true, shared.clone());
    let together = run_together(&e, &prompts).await;
    let texts = |v: &[Outcome]| v.iter().map(|o| o.texts.clone()).collect::<Vec<_>>();
    assert_eq!(
        texts(&alone),
        texts(&together),
        "sharing does not change answers"
    );
    // Every prompt after the first gets the prefix from another sequence:
    // shared in a batch as it is computed, or copied (reported as cached),
    // depending on when it reached the engine thread.
    let tagged = shared.load(Ordering::Relaxed);
    let cached: usize = together.iter().map(|o| o.cached as usize).sum();
    assert!(
        tagged + cached >= prefix.len() * (prompts.len() - 1),
        "the common prefix was computed once: {tagged} tokens shared in batches, {cached} copied"
    );
    // A later prompt with the same prefix takes it from the cache.
    let later = collect(
        e.generate(request(&format!("{prefix}oscar"))).expect("gen"),
        1,
    )
    .await;
    assert!(later.cached as usize >= prefix.len(), "{}", later.cached);
    let fresh = engine_with(8, 16, false, Arc::default());
    let expected = collect(
        fresh
            .generate(request(&format!("{prefix}oscar")))
            .expect("gen"),
        1,
    )
    .await;
    assert_eq!(later.texts, expected.texts);
}

#[tokio::test]
async fn candidates_fork_from_one_prefill() {
    let e = engine(4, 4);
    let single = collect(e.generate(request("fork me")).expect("gen"), 1).await;
    let mut r = request("fork me");
    r.candidate_count = 3;
    let three = collect(e.generate(r).expect("gen"), 3).await;
    for c in 0..3 {
        assert_eq!(
            three.texts[c], single.texts[0],
            "greedy candidate {c} equals the single greedy answer"
        );
    }
    let mut r = request("fork me");
    r.candidate_count = 3;
    r.sampling = SamplingParams {
        temperature: 1.0,
        seed: Some(11),
        ..SamplingParams::default()
    };
    let a = collect(e.generate(r.clone()).expect("gen"), 3).await;
    let b = collect(e.generate(r).expect("gen"), 3).await;
    assert_eq!(a, b, "seeded sampling is reproducible");
    assert!(
        a.texts[0] != a.texts[1] || a.texts[1] != a.texts[2],
        "candidates are independent samples"
    );
}

#[tokio::test]
async fn limits_and_stop_sequences() {
    let e = engine(2, 4);
    let mut r = request("limit");
    r.max_output_tokens = Some(3);
    let o = collect(e.generate(r).expect("gen"), 1).await;
    assert_eq!(o.tokens[0], 3);
    assert_eq!(o.reasons[0], Some(FinishReason::MaxTokens));
    let full = collect(e.generate(request("stop here")).expect("gen"), 1).await;
    let text = &full.texts[0];
    assert!(text.len() >= 4, "{text:?}");
    let stop = text[2..4].to_string();
    let mut r = request("stop here");
    r.stop_sequences = vec![stop.clone()];
    let cut = collect(e.generate(r).expect("gen"), 1).await;
    assert_eq!(cut.texts[0], text[..text.find(&stop).expect("found")]);
    assert_eq!(cut.reasons[0], Some(FinishReason::Stop));
}

#[tokio::test]
async fn cancelled_requests_free_their_sequences() {
    let e = engine(2, 8);
    let mut long = request("forever");
    long.max_output_tokens = Some(60);
    for _ in 0..5 {
        let rx = e.generate(long.clone()).expect("gen");
        drop(rx);
    }
    // Were the sequences leaked, these would never be admitted.
    let a = e.generate(request("after one")).expect("gen");
    let b = e.generate(request("after two")).expect("gen");
    let (a, b) = (collect(a, 1).await, collect(b, 1).await);
    assert!(a.reasons[0].is_some() && b.reasons[0].is_some());
}

#[tokio::test]
async fn a_full_queue_is_overloaded_and_the_context_is_enforced() {
    let e = engine(1, 1);
    let mut held = Vec::new();
    let mut overloaded = false;
    for _ in 0..6 {
        match e.generate(request("busy")) {
            Ok(rx) => held.push(rx),
            Err(EngineError::Overloaded(_)) => overloaded = true,
            Err(other) => panic!("{other}"),
        }
    }
    assert!(overloaded, "a bounded queue answers Overloaded");
    let long = "x".repeat(300);
    match e.generate(request(&long)) {
        Err(EngineError::PromptTooLong { tokens, limit }) => {
            assert!(tokens >= limit, "{tokens} tokens, {limit} allowed")
        }
        other => panic!("expected a context error, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_follow_up_turn_reuses_the_shared_prefix_and_answers_the_same() {
    let e = engine(2, 4);
    let first = collect(e.generate(request("hello there")).expect("gen"), 1).await;
    assert_eq!(first.cached, 0);
    assert!(!first.texts[0].is_empty());
    // The next turn resends the history: prompt + reply + the new message.
    let follow = format!("hello there{}and then", first.texts[0]);
    let reused = collect(e.generate(request(&follow)).expect("gen"), 1).await;
    let history = "hello there".len() + first.texts[0].len();
    assert_eq!(
        reused.cached as usize, history,
        "the whole history is reused"
    );
    let fresh = collect(engine(2, 4).generate(request(&follow)).expect("gen"), 1).await;
    assert_eq!(fresh.cached, 0);
    assert_eq!(
        reused.texts, fresh.texts,
        "reuse does not change the answer"
    );
    // A prompt that is a strict prefix of the cache reuses all but its last token.
    let again = collect(e.generate(request("hello there")).expect("gen"), 1).await;
    assert_eq!(again.cached as usize, "hello there".len() - 1);
    assert_eq!(again.texts, first.texts);
    // Unrelated prompts share nothing.
    let other = collect(e.generate(request("zzz")).expect("gen"), 1).await;
    assert_eq!(other.cached, 0);
}

#[tokio::test]
async fn an_empty_prompt_is_refused_not_hung() {
    match engine(1, 1).generate(request("")) {
        Err(EngineError::InvalidRequest { message, .. }) => {
            assert!(message.contains("empty prompt"))
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

/// A chat resends the reply as text; the byte tokenizer re-tokenizes "ab" as
/// one token the model never generates, so only splicing the generated ids
/// back keeps the reply reusable.
#[tokio::test]
async fn a_resent_reply_is_reused_through_its_generated_ids() {
    let e = engine(2, 4);
    let mut found = None;
    for n in 0..300 {
        let p = format!("q{n} ");
        let o = collect(e.generate(request(&p)).expect("gen"), 1).await;
        if let Some(at) = o.texts[0].find("ab") {
            found = Some((p, o, at));
            break;
        }
    }
    let (p, first, _) = found.expect("some reply contains \"ab\"");
    let reply = &first.texts[0];
    let mut follow = request(&p);
    follow.prompt.turns.push(Turn {
        role: Role::Model,
        segments: vec![Segment::Text(reply.clone())],
    });
    follow.prompt.turns.push(Turn {
        role: Role::User,
        segments: vec![Segment::Text("more".into())],
    });
    let second = collect(e.generate(follow).expect("gen"), 1).await;
    // The KV holds the prompt and every generated token that was decoded.
    let decoded = p.len() + first.tokens[0] as usize
        - usize::from(first.reasons[0] == Some(FinishReason::MaxTokens));
    assert_eq!(
        second.cached as usize, decoded,
        "reused through the reply ({reply:?})"
    );
}

/// A panic on the engine thread (llama-cpp-2 panics on some invalid rows)
/// fails the requests it was running with an error; the thread starts over
/// with a new runner, and the next requests are served as by a fresh engine.
#[tokio::test]
async fn a_panicking_engine_fails_its_requests_and_restarts() {
    let builds = Arc::new(AtomicUsize::new(0));
    let counted = builds.clone();
    let e = engine_from(16, move || {
        counted.fetch_add(1, Ordering::Relaxed);
        let mut r = ByteRunner::new(256 * 4, 4);
        r.panic_on = Some(7);
        r
    });
    let before = collect(e.generate(request("alpha")).expect("gen"), 1).await;
    let poisoned = outcome(e.generate(request("bravo \u{7}")).expect("gen"), 1).await;
    match poisoned {
        Err(EngineError::Internal(m)) => assert!(m.contains("restarted"), "{m}"),
        other => panic!("the poisoned request fails with an internal error: {other:?}"),
    }
    // Served after the restart, by a new runner, as before it.
    let after = collect(e.generate(request("alpha")).expect("gen"), 1).await;
    assert_eq!(after.texts, before.texts);
    assert_eq!(after.cached, 0, "the new runner holds no prefix");
    let texts = |v: &[Outcome]| v.iter().map(|o| o.texts.clone()).collect::<Vec<_>>();
    let together = run_together(&e, &PROMPTS).await;
    assert_eq!(
        texts(&together),
        texts(&run_together(&engine(8, 16), &PROMPTS).await)
    );
    assert_eq!(builds.load(Ordering::Relaxed), 2, "one restart");
}

/// A KV copy that fails (half done) is no longer taken for done: the
/// sequence computes those positions itself, and the answers are those of
/// an engine whose copies work.
#[tokio::test]
async fn failed_kv_copies_are_computed_instead() {
    let failing = || {
        engine_from(16, || {
            let mut r = ByteRunner::new(256 * 8, 8);
            r.fail_copies = true;
            r
        })
    };
    let prefix = "You are a terse assistant. Answer: ";
    let prompts: Vec<String> = PROMPTS.iter().map(|p| format!("{prefix}{p}")).collect();
    let texts = |v: &[Outcome]| v.iter().map(|o| o.texts.clone()).collect::<Vec<_>>();
    let good = engine(8, 16);
    let bad = failing();
    assert_eq!(
        texts(&run_together(&bad, &prompts).await),
        texts(&run_together(&good, &prompts).await)
    );
    let mut r = request("fork me");
    r.candidate_count = 3;
    let forks = collect(bad.generate(r.clone()).expect("gen"), 3).await;
    assert_eq!(
        forks.texts,
        collect(good.generate(r).expect("gen"), 3).await.texts
    );
}

/// `Engine::stats` (for `/metrics`): a request counts as running while it
/// runs, the waiting count returns to 0, and what it leaves in the cache
/// for reuse counts as used.
#[tokio::test]
async fn stats_follow_the_requests() {
    let e = engine(4, 16);
    assert_eq!(e.stats(), EngineStats::default());
    let mut r = request("a long answer please");
    r.max_output_tokens = Some(40);
    let mut rx = e.generate(r).expect("gen");
    // After its first token, it is running.
    loop {
        match rx.recv().await.expect("event") {
            EngineEvent::Delta { .. } => break,
            EngineEvent::Finished { .. } => panic!("finished before a second look"),
            _ => {}
        }
    }
    let during = e.stats();
    let rest = outcome(rx, 1).await.expect("answer");
    assert!(rest.reasons[0].is_some());
    assert!(during.running <= 1 && during.waiting == 0, "{during:?}");
    // The engine thread publishes after each step; give it that step.
    let mut after = e.stats();
    for _ in 0..100 {
        if after.running == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        after = e.stats();
    }
    assert_eq!(after.running, 0, "{after:?}");
    assert_eq!(after.waiting, 0);
    assert!(
        after.kv_usage > 0.0 && after.kv_usage <= 1.0,
        "the kept prefix: {after:?}"
    );
}
