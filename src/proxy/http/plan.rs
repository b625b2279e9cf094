//! Deciding what the HTTP faults do to one request: a pure function from the
//! fault list, the request line and headers, and the seeded RNG to a [`Plan`].
//!
//! Rules: faults are evaluated in insertion order; a fault whose `match`
//! fails is skipped without touching the RNG; a matching fault draws exactly
//! one number for its `probability`, then what its action needs (jitter, a
//! flip seed). The first `http_error`, `abort` or limited `rate_limit` that
//! fires ends the evaluation; delays before it add up; corruptions apply to
//! the response. `rate_limit` is the one fault with state (its token
//! buckets, passed in with the request's arrival time); a request within
//! its limit is not affected by it.

use std::time::{Duration, Instant};

use rand::Rng;

use super::corrupt::Corruption;
use super::rate_limit::{self, RateLimits};
use crate::proxy::spec::{AbortPoint, HttpAction, HttpFaultSpec};

/// What the proxy does with one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Plan {
    /// Total injected delay, waited before anything else happens.
    pub delay: Duration,
    pub end: End,
    /// Applied in order to the buffered response body (only with
    /// [`End::Forward`] and [`End::AbortMidBody`]).
    pub corruptions: Vec<Corruption>,
    /// Names of the faults that fired and have an effect, in order: a
    /// corruption that fired before an `http_error` is not listed.
    pub fired: Vec<String>,
}

/// How the request ends.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) enum End {
    /// Forward upstream and relay the (possibly corrupted) response.
    #[default]
    Forward,
    /// Answer with an injected error; the upstream is not called.
    Error(InjectedError),
    /// Close the client connection without a response; the upstream is not called.
    AbortBeforeResponse,
    /// Forward, then send the head and about half the body, and close.
    AbortMidBody,
}

/// An `http_error` fault's answer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct InjectedError {
    pub status: u16,
    pub body: Option<String>,
    pub retry_after: Option<u64>,
}

impl Plan {
    /// Whether the response body has to be buffered (to damage it).
    pub(super) fn touches_body(&self) -> bool {
        !self.corruptions.is_empty() || self.end == End::AbortMidBody
    }
}

/// [`plan_at`] without rate limits (tests of the other faults).
#[cfg(test)]
pub(super) fn plan(
    faults: &[HttpFaultSpec],
    method: &str,
    path: &str,
    header: impl Fn(&str) -> Option<String>,
    rng: &mut impl Rng,
) -> Plan {
    plan_at(
        faults,
        &RateLimits::default(),
        Instant::now(),
        method,
        path,
        header,
        rng,
    )
}

/// The plan for a request `method path` whose header values `header` returns,
/// arriving at `now`; `limits` holds the hop's `rate_limit` buckets.
pub(super) fn plan_at(
    faults: &[HttpFaultSpec],
    limits: &RateLimits,
    now: Instant,
    method: &str,
    path: &str,
    header: impl Fn(&str) -> Option<String>,
    rng: &mut impl Rng,
) -> Plan {
    let mut plan = Plan::default();
    for fault in faults {
        if !fault.matcher.matches(method, path, &header) {
            continue;
        }
        // `gen` is in [0, 1): probability 1 always fires, 0 never does.
        if rng.gen::<f64>() >= fault.probability {
            continue;
        }
        if let HttpAction::RateLimit {
            rate,
            burst,
            status,
            key_header,
        } = &fault.action
        {
            let key = key_header.as_deref().and_then(&header);
            let burst = rate_limit::effective_burst(*rate, *burst);
            let Err(wait) = limits.take(&fault.name, key, *rate, burst, now) else {
                continue;
            };
            plan.fired.push(fault.name.clone());
            plan.end = End::Error(InjectedError {
                status: *status,
                body: Some(format!("rate limit exceeded: {rate} requests per second\n")),
                retry_after: Some(rate_limit::retry_after(wait)),
            });
            plan.drop_corruptions(faults);
            break;
        }
        plan.fired.push(fault.name.clone());
        match &fault.action {
            HttpAction::HttpDelay {
                delay,
                jitter,
                distribution,
            } => {
                plan.delay = plan.delay.saturating_add(crate::proxy::jitter::draw(
                    *delay,
                    *jitter,
                    *distribution,
                    rng,
                ));
            }
            HttpAction::Corrupt { mode, fields } => {
                plan.corruptions.push(Corruption::new(*mode, fields, rng));
            }
            HttpAction::HttpError {
                status,
                body,
                retry_after,
            } => {
                plan.end = End::Error(InjectedError {
                    status: *status,
                    body: body.clone(),
                    retry_after: *retry_after,
                });
                plan.drop_corruptions(faults);
                break;
            }
            HttpAction::Abort {
                when: AbortPoint::BeforeResponse,
            } => {
                plan.end = End::AbortBeforeResponse;
                plan.drop_corruptions(faults);
                break;
            }
            HttpAction::Abort {
                when: AbortPoint::MidBody,
            } => {
                plan.end = End::AbortMidBody;
                break;
            }
            // Handled above: it fires only when the bucket is empty.
            HttpAction::RateLimit { .. } => {}
        }
    }
    plan
}

impl Plan {
    /// Forgets corruptions (and their names) once no response will be relayed.
    fn drop_corruptions(&mut self, faults: &[HttpFaultSpec]) {
        self.corruptions.clear();
        let is_corruption = |name: &String| {
            faults
                .iter()
                .any(|f| &f.name == name && matches!(f.action, HttpAction::Corrupt { .. }))
        };
        self.fired.retain(|name| !is_corruption(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::spec::RequestMatch;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    fn fault(value: serde_json::Value) -> HttpFaultSpec {
        let spec: HttpFaultSpec = serde_json::from_value(value).expect("valid fault");
        spec.validate().expect("valid values");
        spec
    }

    fn plan_for(faults: &[HttpFaultSpec], path: &str) -> Plan {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        plan(faults, "GET", path, |_| None, &mut rng)
    }

    fn delay(name: &str, ms: u64) -> HttpFaultSpec {
        fault(json!({"name": name, "type": "http_delay", "delay": ms}))
    }

    #[test]
    fn no_fault_means_forward_untouched() {
        assert_eq!(plan_for(&[], "/"), Plan::default());
    }

    #[test]
    fn delays_add_up_and_still_forward() {
        let p = plan_for(&[delay("a", 100), delay("b", 50)], "/");
        assert_eq!(p.delay, Duration::from_millis(150));
        assert_eq!(p.end, End::Forward);
        assert_eq!(p.fired, ["a", "b"]);
    }

    #[test]
    fn the_first_error_ends_evaluation_but_earlier_delays_still_count() {
        let faults = [
            delay("slow", 100),
            fault(json!({"name": "e503", "type": "http_error", "status": 503, "retry_after": 2})),
            fault(json!({"name": "e500", "type": "http_error", "status": 500})),
            delay("late", 1000),
        ];
        let p = plan_for(&faults, "/");
        assert_eq!(p.delay, Duration::from_millis(100));
        assert_eq!(
            p.end,
            End::Error(InjectedError {
                status: 503,
                body: None,
                retry_after: Some(2)
            })
        );
        assert_eq!(p.fired, ["slow", "e503"]);
    }

    #[test]
    fn an_abort_before_the_response_drops_earlier_corruptions() {
        let faults = [
            fault(json!({"name": "cut", "type": "corrupt", "mode": "truncate"})),
            fault(json!({"name": "gone", "type": "abort", "when": "before_response"})),
        ];
        let p = plan_for(&faults, "/");
        assert_eq!(p.end, End::AbortBeforeResponse);
        assert!(p.corruptions.is_empty());
        assert_eq!(p.fired, ["gone"]);
        assert!(!p.touches_body());
    }

    #[test]
    fn a_mid_body_abort_keeps_earlier_corruptions() {
        let faults = [
            fault(
                json!({"name": "nul", "type": "corrupt", "mode": "null_fields", "fields": ["email"]}),
            ),
            fault(json!({"name": "half", "type": "abort", "when": "mid_body"})),
            fault(json!({"name": "e500", "type": "http_error", "status": 500})),
        ];
        let p = plan_for(&faults, "/");
        assert_eq!(p.end, End::AbortMidBody);
        assert_eq!(
            p.corruptions,
            [Corruption::NullFields(vec!["email".into()])]
        );
        assert_eq!(p.fired, ["nul", "half"]);
        assert!(p.touches_body());
    }

    #[test]
    fn a_fault_that_does_not_match_is_skipped_without_drawing() {
        let only_pay = HttpFaultSpec {
            matcher: RequestMatch {
                path: Some("/pay*".into()),
                ..RequestMatch::default()
            },
            probability: 0.5,
            ..fault(json!({"name": "e", "type": "http_error", "status": 503}))
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let before = rng.clone();
        let p = plan(
            std::slice::from_ref(&only_pay),
            "GET",
            "/health",
            |_| None,
            &mut rng,
        );
        assert_eq!(p, Plan::default());
        assert_eq!(rng, before);
    }

    #[test]
    fn a_header_match_targets_one_user() {
        let faults = [fault(
            json!({"name": "alice", "type": "http_error", "status": 500,
                                   "match": {"headers": {"x-user": "alice"}}}),
        )];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let as_user = |user: &'static str| move |h: &str| (h == "x-user").then(|| user.to_string());
        let alice = plan(&faults, "GET", "/", as_user("alice"), &mut rng);
        let bob = plan(&faults, "GET", "/", as_user("bob"), &mut rng);
        assert!(matches!(alice.end, End::Error(_)));
        assert_eq!(bob.end, End::Forward);
    }

    #[test]
    fn probability_is_drawn_per_request_and_the_seed_fixes_the_sequence() {
        let faults = [HttpFaultSpec {
            probability: 0.3,
            ..fault(json!({"name": "e", "type": "http_error", "status": 503}))
        }];
        let sequence = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..2000)
                .map(|_| plan(&faults, "GET", "/", |_| None, &mut rng).end != End::Forward)
                .collect::<Vec<bool>>()
        };
        let a = sequence(42);
        let hits = a.iter().filter(|hit| **hit).count();
        assert!((540..=660).contains(&hits), "30% of 2000 ± 3%: {hits}");
        assert_eq!(a, sequence(42), "same seed, same sequence");
        assert_ne!(a, sequence(43), "another seed, another sequence");
    }

    #[test]
    fn corruptions_are_kept_in_order_with_their_drawn_seeds() {
        let faults = [
            fault(json!({"name": "flip", "type": "corrupt", "mode": "flip_bytes"})),
            fault(json!({"name": "cut", "type": "corrupt"})),
        ];
        let p = plan_for(&faults, "/");
        assert!(matches!(p.corruptions[0], Corruption::FlipBytes { .. }));
        assert_eq!(p.corruptions[1], Corruption::Truncate);
        assert_eq!(p.corruptions, plan_for(&faults, "/").corruptions, "seeded");
    }
}
