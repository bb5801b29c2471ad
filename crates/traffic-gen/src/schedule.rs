//! When to send what: turns a [`Plan`] and a seed into an endless, reproducible sequence of
//! [`Ticket`]s, each with its intended send time as an offset from the start of the run.
//!
//! Times are absolute (request `k` of a constant phase is due at `phase_start + k / rate`), so a
//! late tick never shifts the ones after it. In a ramp from `a` to `b` over `T` seconds the
//! number of requests due by `t` is `N(t) = a t + (b - a) t^2 / (2T)`; request `k` is due when
//! `N(t) = k`.

use crate::plan::{Plan, RequestKind, Weights};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// One request to send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ticket {
    /// 0, 1, 2, ... in schedule order.
    pub seq: u64,
    /// Intended send time, from the start of the run.
    pub offset: Duration,
    /// Index of the plan phase it belongs to.
    pub phase: usize,
    pub kind: RequestKind,
    /// Random bits that choose the payload (rows, variants), so payloads are reproducible too.
    pub choice: u64,
}

/// Picks kinds by weight with one uniform draw.
#[derive(Clone, Debug)]
struct KindPicker {
    cumulative: Vec<(f64, RequestKind)>,
    total: f64,
}

impl KindPicker {
    fn new(weights: &Weights) -> Self {
        let mut acc = 0.0;
        let cumulative = weights
            .0
            .iter()
            .filter(|(_, w)| **w > 0.0)
            .map(|(k, w)| {
                acc += w;
                (acc, *k)
            })
            .collect();
        Self {
            cumulative,
            total: acc,
        }
    }

    fn pick(&self, rng: &mut ChaCha8Rng) -> RequestKind {
        let x = rng.random::<f64>() * self.total;
        let i = self.cumulative.partition_point(|(c, _)| *c <= x);
        self.cumulative[i.min(self.cumulative.len() - 1)].1
    }
}

/// The ticket sequence of a plan. An iterator that never ends; the executor stops it.
pub struct Schedule {
    plan: Plan,
    pickers: Vec<KindPicker>,
    rng: ChaCha8Rng,
    seq: u64,
    phase: usize,
    /// Start of the current phase, in seconds since the start of the run.
    phase_start: f64,
    /// Requests already scheduled in the current phase.
    k: u64,
    /// Past the last phase of a non-repeating plan: hold the final rate forever.
    holding: bool,
}

impl Schedule {
    /// `plan` must be valid ([`Plan::validate`]).
    pub fn new(plan: Plan, seed: u64) -> Self {
        let pickers = plan
            .phases
            .iter()
            .map(|p| KindPicker::new(&p.weights))
            .collect();
        Self {
            plan,
            pickers,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seq: 0,
            phase: 0,
            phase_start: 0.0,
            k: 0,
            holding: false,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Seconds into the current phase at which its request `k` is due, or `None` when the phase
    /// ends first.
    fn due_in_phase(&self, k: u64) -> Option<f64> {
        let phase = &self.plan.phases[self.phase];
        let len = phase.duration.as_secs_f64();
        let (a, b) = phase.rate.endpoints();
        if self.holding {
            return (b > 0.0).then(|| k as f64 / b);
        }
        if k == 0 {
            return (a > 0.0 || b > 0.0).then_some(0.0);
        }
        let k = k as f64;
        let t = if a == b {
            if a <= 0.0 {
                return None;
            }
            k / a
        } else {
            // Solves a t + c t^2 = k for the smallest t >= 0, in a form that stays exact when
            // a = 0 and does not cancel when c < 0.
            let c = (b - a) / (2.0 * len);
            let disc = a * a + 4.0 * c * k;
            if disc < 0.0 {
                return None;
            }
            let denom = a + disc.sqrt();
            if denom <= 0.0 {
                return None;
            }
            2.0 * k / denom
        };
        (t < len).then_some(t)
    }

    fn next_phase(&mut self) {
        self.phase_start += self.plan.phases[self.phase].duration.as_secs_f64();
        self.k = 0;
        if self.phase + 1 < self.plan.phases.len() {
            self.phase += 1;
        } else if self.plan.repeat {
            self.phase = 0;
        } else {
            self.holding = true;
        }
    }
}

impl Iterator for Schedule {
    type Item = Ticket;

    fn next(&mut self) -> Option<Ticket> {
        // A valid plan sends in some phase of every cycle, so this loop ends.
        let t = loop {
            if let Some(t) = self.due_in_phase(self.k) {
                break t;
            }
            self.next_phase();
        };
        let phase = self.phase;
        let kind = self.pickers[phase].pick(&mut self.rng);
        let choice = self.rng.random::<u64>();
        let ticket = Ticket {
            seq: self.seq,
            offset: Duration::from_secs_f64(self.phase_start + t),
            phase,
            kind,
            choice,
        };
        self.seq += 1;
        self.k += 1;
        Some(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Phase, Rate};
    use crate::scenario::{Builtin, Params, builtin};
    use std::collections::BTreeMap;

    fn plan(phases: Vec<(f64, Rate)>, repeat: bool) -> Plan {
        Plan {
            name: "t".into(),
            description: String::new(),
            repeat,
            drift: Default::default(),
            phases: phases
                .into_iter()
                .map(|(secs, rate)| Phase {
                    name: "p".into(),
                    duration: Duration::from_secs_f64(secs),
                    rate,
                    weights: Weights::only(RequestKind::Single),
                    batch_size: 1,
                })
                .collect(),
        }
    }

    fn offsets_until(plan: Plan, secs: f64) -> Vec<f64> {
        Schedule::new(plan, 1)
            .map(|t| t.offset.as_secs_f64())
            .take_while(|t| *t < secs)
            .collect()
    }

    #[test]
    fn a_constant_phase_is_evenly_spaced_on_absolute_times() {
        let offsets = offsets_until(plan(vec![(1.0, Rate::Constant(10.0))], true), 2.0);
        assert_eq!(offsets.len(), 20);
        for (i, t) in offsets.iter().enumerate() {
            assert!((t - i as f64 * 0.1).abs() < 1e-9, "{i}: {t}");
        }
    }

    #[test]
    fn a_ramp_sends_its_integral_and_speeds_up() {
        let ramp = Rate::Ramp {
            from: 0.0,
            to: 200.0,
        };
        let offsets = offsets_until(plan(vec![(10.0, ramp)], true), 10.0);
        // (0 + 200) / 2 * 10 = 1000 requests.
        assert_eq!(offsets.len(), 1000);
        let first_half = offsets.iter().filter(|t| **t < 5.0).count() as i64;
        assert!((first_half - 250).abs() <= 1, "{first_half}");
        let down = Rate::Ramp {
            from: 200.0,
            to: 0.0,
        };
        let offsets = offsets_until(plan(vec![(10.0, down)], true), 10.0);
        assert!(
            (offsets.len() as i64 - 1000).abs() <= 1,
            "{}",
            offsets.len()
        );
        let first_half = offsets.iter().filter(|t| **t < 5.0).count() as i64;
        assert!((first_half - 750).abs() <= 1, "{first_half}");
    }

    #[test]
    fn phases_follow_each_other_repeat_or_hold_and_silent_phases_are_skipped() {
        let phases = vec![(1.0, Rate::Constant(10.0)), (1.0, Rate::Constant(0.0))];
        let offsets = offsets_until(plan(phases.clone(), true), 4.0);
        assert_eq!(offsets.len(), 20);
        assert!(offsets.iter().all(|t| (*t % 2.0) < 1.0));
        let held = offsets_until(
            plan(
                vec![(
                    1.0,
                    Rate::Ramp {
                        from: 0.0,
                        to: 20.0,
                    },
                )],
                false,
            ),
            3.0,
        );
        // 10 in the ramp (N(1) = 10), then 20/s for 2 s.
        assert!((held.len() as i64 - 50).abs() <= 1, "{}", held.len());
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence_and_another_seed_does_not() {
        let p = builtin(Builtin::Errors, &Params::default());
        let a: Vec<_> = Schedule::new(p.clone(), 7).take(500).collect();
        let b: Vec<_> = Schedule::new(p.clone(), 7).take(500).collect();
        let c: Vec<_> = Schedule::new(p, 8).take(500).collect();
        assert_eq!(a, b);
        assert_ne!(
            a.iter().map(|t| t.kind).collect::<Vec<_>>(),
            c.iter().map(|t| t.kind).collect::<Vec<_>>()
        );
    }

    #[test]
    fn kind_proportions_follow_the_weights() {
        let p = builtin(Builtin::Errors, &Params::default());
        let weights = p.phases[0].weights.clone();
        let n = 100_000;
        let mut counts = BTreeMap::new();
        for t in Schedule::new(p, 42).take(n) {
            *counts.entry(t.kind).or_insert(0usize) += 1;
        }
        for kind in RequestKind::ALL {
            let share = counts.get(&kind).copied().unwrap_or(0) as f64 / n as f64;
            let want = weights.share(kind);
            // Binomial standard deviation at n = 100k is below 0.0015 for every share here.
            assert!((share - want).abs() < 0.006, "{kind}: {share} vs {want}");
        }
    }
}
