//! Sampling over raw logits: a pipeline of logits processors, then
//! temperature, top-k, top-p and a seeded draw.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::contract::SamplingParams;

/// A step of the logits pipeline (penalties now; JSON-schema masks, thinking
/// budgets and forced tool calls later). `generated` holds the tokens this
/// candidate produced so far.
pub trait LogitsProcessor: Send {
    fn process(&mut self, generated: &[i32], logits: &mut [f32]);
}

/// OpenAI-style presence and frequency penalties over generated tokens:
/// `logit -= presence * [count > 0] + frequency * count`.
pub struct Penalties {
    pub presence: f32,
    pub frequency: f32,
    counts: std::collections::HashMap<i32, u32>,
    seen: usize,
}

impl Penalties {
    pub fn new(presence: f32, frequency: f32) -> Self {
        Penalties {
            presence,
            frequency,
            counts: Default::default(),
            seen: 0,
        }
    }
}

impl LogitsProcessor for Penalties {
    fn process(&mut self, generated: &[i32], logits: &mut [f32]) {
        for &t in &generated[self.seen.min(generated.len())..] {
            *self.counts.entry(t).or_default() += 1;
        }
        self.seen = generated.len();
        for (&t, &n) in &self.counts {
            if let Some(l) = usize::try_from(t).ok().and_then(|i| logits.get_mut(i)) {
                *l -= self.presence + self.frequency * n as f32;
            }
        }
    }
}

/// A sampled token with its log probability under the processed
/// distribution (before temperature), and the top alternatives when asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    pub token: i32,
    pub logprob: f32,
    /// (token, logprob), best first; empty unless `top_logprobs > 0`.
    pub top: Vec<(i32, f32)>,
}

/// One candidate's sampler: processors, then the draw.
pub struct Sampler {
    params: SamplingParams,
    processors: Vec<Box<dyn LogitsProcessor>>,
    rng: ChaCha8Rng,
    top_logprobs: usize,
    /// Compute the chosen token's log probability (a pass of exp() over the
    /// whole vocabulary: skipped unless logprobs are asked for).
    want_logprob: bool,
    scratch: Vec<(i32, f32)>,
}

impl Sampler {
    /// `stream` separates candidates of one request: each gets its own
    /// random stream derived from the seed.
    pub fn new(params: SamplingParams, stream: u64, top_logprobs: usize) -> Self {
        let seed = params.seed.unwrap_or_else(entropy_seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        let mut processors: Vec<Box<dyn LogitsProcessor>> = Vec::new();
        if params.presence_penalty != 0.0 || params.frequency_penalty != 0.0 {
            processors.push(Box::new(Penalties::new(
                params.presence_penalty,
                params.frequency_penalty,
            )));
        }
        Sampler {
            params,
            processors,
            rng,
            top_logprobs,
            want_logprob: true,
            scratch: Vec::new(),
        }
    }

    /// Whether `Sampled::logprob` is needed (default true); without it the
    /// log-normaliser is not computed and `logprob` is NaN.
    pub fn with_logprob(mut self, want: bool) -> Self {
        self.want_logprob = want || self.top_logprobs > 0;
        self
    }

    pub fn push_processor(&mut self, p: Box<dyn LogitsProcessor>) {
        self.processors.push(p);
    }

    /// Picks the next token. `logits` is modified in place.
    pub fn sample(&mut self, generated: &[i32], logits: &mut [f32]) -> Sampled {
        for p in &mut self.processors {
            p.process(generated, logits);
        }
        let log_z = if self.want_logprob {
            log_sum_exp(logits)
        } else {
            f32::NAN
        };
        let token = if self.params.temperature <= 0.0 {
            argmax(logits)
        } else {
            self.draw(logits)
        };
        let logprob = logits
            .get(token as usize)
            .map_or(f32::NEG_INFINITY, |l| l - log_z);
        let top = if self.top_logprobs > 0 {
            top_n(logits, self.top_logprobs)
                .into_iter()
                .map(|(t, l)| (t, l - log_z))
                .collect()
        } else {
            Vec::new()
        };
        Sampled {
            token,
            logprob,
            top,
        }
    }

    fn draw(&mut self, logits: &[f32]) -> i32 {
        let inv_t = 1.0 / self.params.temperature;
        let c = &mut self.scratch;
        c.clear();
        c.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| l.is_finite())
                .map(|(i, &l)| (i as i32, l * inv_t)),
        );
        if c.is_empty() {
            return argmax(logits);
        }
        let by_logit_desc = |a: &(i32, f32), b: &(i32, f32)| b.1.total_cmp(&a.1);
        if let Some(k) = self.params.top_k.map(|k| k.max(1) as usize) {
            if k < c.len() {
                c.select_nth_unstable_by(k - 1, by_logit_desc);
                c.truncate(k);
            }
        }
        let max = c.iter().map(|e| e.1).fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0f64;
        for e in c.iter_mut() {
            e.1 = (e.1 - max).exp();
            total += e.1 as f64;
        }
        if let Some(p) = self.params.top_p.filter(|&p| p < 1.0) {
            c.sort_unstable_by(by_logit_desc);
            let mut cum = 0.0f64;
            let mut keep = c.len();
            for (i, e) in c.iter().enumerate() {
                cum += e.1 as f64 / total;
                if cum >= p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep);
            total = c.iter().map(|e| e.1 as f64).sum();
        }
        // Draw in token order, not probability order: two near-equal logits
        // that swap places under a last-digit difference (another batch
        // shape, a reused KV prefix) then move the draw's boundaries by that
        // difference only, instead of swapping which token a draw lands on.
        c.sort_unstable_by_key(|e| e.0);
        let mut r = self.rng.random::<f64>() * total;
        for e in c.iter() {
            r -= e.1 as f64;
            if r <= 0.0 {
                return e.0;
            }
        }
        c[c.len() - 1].0
    }
}

fn entropy_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
}

/// Index of the largest logit (the lowest index wins ties).
pub fn argmax(logits: &[f32]) -> i32 {
    let mut best = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as i32
}

pub fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    max + sum.ln() as f32
}

/// The n largest logits, best first (ties: lower token id first).
pub fn top_n(logits: &[f32], n: usize) -> Vec<(i32, f32)> {
    let mut v: Vec<(i32, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as i32, l))
        .collect();
    let n = n.min(v.len());
    if n == 0 {
        return Vec::new();
    }
    let cmp = |a: &(i32, f32), b: &(i32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if n < v.len() {
        v.select_nth_unstable_by(n - 1, cmp);
        v.truncate(n);
    }
    v.sort_unstable_by(cmp);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32) -> SamplingParams {
        SamplingParams {
            temperature,
            seed: Some(7),
            ..SamplingParams::default()
        }
    }

    #[test]
    fn temperature_zero_is_greedy() {
        let mut s = Sampler::new(params(0.0), 0, 2);
        let mut logits = vec![0.1, 3.0, 2.0, -1.0];
        let out = s.sample(&[], &mut logits);
        assert_eq!(out.token, 1);
        assert_eq!(out.top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 2]);
        let p: f32 = [0.1f32, 3.0, 2.0, -1.0].iter().map(|l| l.exp()).sum();
        assert!((out.logprob - (3.0f32.exp() / p).ln()).abs() < 1e-5);
    }

    #[test]
    fn same_seed_same_draws_and_streams_differ() {
        let draw = |stream| {
            let mut s = Sampler::new(params(1.0), stream, 0);
            (0..64)
                .map(|_| s.sample(&[], &mut [0.0; 50]).token)
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(0), draw(0));
        assert_ne!(draw(0), draw(1));
    }

    #[test]
    fn top_k_one_is_greedy_and_top_p_keeps_the_nucleus() {
        let mut p = params(1.5);
        p.top_k = Some(1);
        let mut s = Sampler::new(p, 0, 0);
        for _ in 0..20 {
            assert_eq!(s.sample(&[], &mut [1.0, 1.2, 0.3]).token, 1);
        }
        let mut p = params(1.0);
        p.top_p = Some(0.5);
        let mut s = Sampler::new(p, 0, 0);
        // token 0 holds ~0.84 of the mass: the nucleus at 0.5 is {0}.
        for _ in 0..20 {
            assert_eq!(s.sample(&[], &mut [3.0, 1.0, 0.5, 0.0]).token, 0);
        }
    }

    #[test]
    fn penalties_lower_repeated_tokens() {
        let mut p = params(0.0);
        p.presence_penalty = 1.0;
        p.frequency_penalty = 0.5;
        let mut s = Sampler::new(p, 0, 0);
        let mut logits = vec![2.0, 1.0];
        // token 0 generated twice: 2.0 - 1.0 - 0.5*2 = 0.0 < 1.0
        assert_eq!(s.sample(&[0, 0], &mut logits).token, 1);
        assert_eq!(logits[0], 0.0);
    }

    #[test]
    fn draws_follow_the_distribution() {
        let mut s = Sampler::new(params(1.0), 0, 0);
        let mut hits = 0;
        for _ in 0..4000 {
            if s.sample(&[], &mut [(3.0f32).ln(), 0.0]).token == 0 {
                hits += 1;
            }
        }
        // p(token 0) = 0.75
        assert!((2800..3200).contains(&hits), "{hits}");
    }
}
