//! Mutation fuzzing of the parsers that read untrusted input, on stable Rust.
//!
//!   cargo run --release -p fuzz                            # what CI runs: seed 1, 200,000 inputs per target
//!   cargo run --release -p fuzz -- --seconds 300 --seed 7  # a longer hunt
//!
//! Targets, each with the invariant it checks on every input:
//! - `predict_body`: a `/predict` body never panics the parser, and whenever the fast path
//!   accepts a body, serde_json and validation accept it too with the same matrix, bit for bit
//!   (`inference_api::fast_path_agrees`);
//! - `v2_infer`: an Open Inference Protocol inference request (JSON, or a JSON header and binary
//!   tensors) never panics the parser, and every request it accepts gives `rows × 30` finite
//!   values and only outputs the model has (`inference_api::v2_infer_accepts`);
//! - `manifest`: a `model.json` never panics either manifest parser, and every manifest the API
//!   accepts (`model_bundle::Manifest`) the exporter accepts too (`model_bundle::Identity`);
//! - `scenario`: a traffic scenario file never panics the plan parser or its validation.
//!
//! Inputs start from the committed corpus (`crates/fuzz/corpus/<target>/`, plus the bundled
//! model's manifest and the example scenario) and are mutated at random (byte flips, inserts of
//! JSON/YAML tokens, deletions, duplications, splices with other seeds). There is no coverage
//! feedback: it is a random search, deterministic for a seed and a run count. Failing inputs
//! are written to `target/fuzz/findings/`; the exit code is 1 when there is any.

use clap::Parser;
use inference_api::model::features::{FeatureSchema, MissingPolicy, Preprocessing};
use inference_api::{fast_path_agrees, v2_infer_accepts};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Mutation fuzzing of modelwatch's parsers")]
struct Args {
    /// Inputs per target (the default when neither this nor --seconds is given: 200000).
    #[arg(long)]
    runs: Option<u64>,
    /// Seconds per target instead of a count.
    #[arg(long)]
    seconds: Option<u64>,
    /// Seed of the mutations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Targets to run (default: all).
    targets: Vec<String>,
}

type Check = Box<dyn Fn(&[u8]) -> Result<(), String>>;

struct Target {
    name: &'static str,
    /// Extra seeds outside the corpus folder: files the repository already has.
    extra_seeds: &'static [&'static str],
    check: Check,
}

const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"-",
    b".",
    b"e",
    b"E",
    b"+",
    b"0",
    b"1",
    b"9",
    b"1e38",
    b"3.5e38",
    b"1e309",
    b"-0",
    b"0.000001",
    b"null",
    b"true",
    b"NaN",
    b"Infinity",
    b"\"features\"",
    b"\"instances\"",
    b"\"name\"",
    b"\"trained_at\"",
    b"\\u0000",
    b"\\",
    b" ",
    b"\n",
    b"\t",
    b"\xff",
    b"- ",
    b"phases:",
    b"rate:",
    b"duration:",
    b"kind:",
    b"~",
    b"&a",
    b"*a",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn targets() -> Vec<Target> {
    let manifest_text = std::fs::read_to_string(root().join("models/breast-cancer/model.json"))
        .expect("models/breast-cancer/model.json");
    let manifest =
        model_bundle::Manifest::parse(&manifest_text).expect("the bundled manifest parses");
    let means = manifest
        .training
        .feature_stats
        .iter()
        .map(|s| s.mean as f32)
        .collect();
    let schema = FeatureSchema::new(manifest.features.clone(), means);
    vec![
        Target {
            name: "predict_body",
            extra_seeds: &[],
            check: Box::new(move |data: &[u8]| {
                let how = Preprocessing {
                    schema: &schema,
                    max_rows: 1000,
                    missing: MissingPolicy::Reject,
                };
                fast_path_agrees(data, how).map(|_| ())
            }),
        },
        Target {
            name: "v2_infer",
            extra_seeds: &[],
            check: Box::new(|data: &[u8]| v2_infer_accepts(data, 30, 1000).map(|_| ())),
        },
        Target {
            name: "manifest",
            extra_seeds: &["models/breast-cancer/model.json"],
            check: Box::new(|data: &[u8]| {
                let Ok(text) = std::str::from_utf8(data) else {
                    return Ok(());
                };
                let api = model_bundle::Manifest::parse(text);
                let exporter = model_bundle::Identity::parse(text);
                match (api, exporter) {
                    (Ok(_), Err(e)) => {
                        Err(format!("the API accepts it, the exporter refuses: {e}"))
                    }
                    _ => Ok(()),
                }
            }),
        },
        Target {
            name: "scenario",
            extra_seeds: &["crates/traffic-gen/scenarios/lunch-rush.yaml"],
            check: Box::new(|data: &[u8]| {
                if let Ok(text) = std::str::from_utf8(data)
                    && let Ok(plan) = traffic_gen::plan::Plan::from_yaml(text)
                {
                    let _ = plan.validate();
                }
                Ok(())
            }),
        },
    ]
}

fn seeds(target: &Target) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(root().join("crates/fuzz/corpus").join(target.name))
            .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
    paths.sort();
    paths.extend(target.extra_seeds.iter().map(|p| root().join(p)));
    paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("seed {}: {e}", p.display())))
        .collect()
}

/// One random change to `data` (several in a row now and then).
fn mutate(data: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut ChaCha8Rng) {
    for _ in 0..rng.random_range(1..=4) {
        let len = data.len();
        match rng.random_range(0..9) {
            // Numbers are where the parsers are most likely to disagree: rewrite one.
            7 | 8 if len > 0 => replace_number(data, rng),
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] = rng.random();
            }
            2 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                let at = rng.random_range(0..=len);
                data.splice(at..at, token.iter().copied());
            }
            3 if len > 0 => {
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..=16)).min(len);
                data.drain(start..end);
            }
            4 if len > 0 => {
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..=64)).min(len);
                let copy = data[start..end].to_vec();
                let at = rng.random_range(0..=data.len());
                data.splice(at..at, copy);
            }
            5 => {
                let other = &seeds[rng.random_range(0..seeds.len())];
                if !other.is_empty() {
                    let start = rng.random_range(0..other.len());
                    let end = (start + rng.random_range(1..=64)).min(other.len());
                    let at = rng.random_range(0..=len);
                    data.splice(at..at, other[start..end].iter().copied());
                }
            }
            _ if len > 0 => data.truncate(rng.random_range(0..len)),
            _ => {}
        }
    }
    // Keep inputs small enough to stay fast: a few times the largest seed.
    data.truncate(256 * 1024);
}

/// Replaces the number around a random position (if there is one) with a random one: up to 25
/// digits, a fraction, an exponent, a sign, in any combination.
fn replace_number(data: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    let is_num = |b: u8| b.is_ascii_digit() || b".eE+-".contains(&b);
    let at = rng.random_range(0..data.len());
    let Some(i) = (at..data.len()).find(|&i| data[i].is_ascii_digit()) else {
        return;
    };
    let start = (0..i)
        .rev()
        .take_while(|&j| is_num(data[j]))
        .last()
        .unwrap_or(i);
    let end = (i..data.len())
        .find(|&j| !is_num(data[j]))
        .unwrap_or(data.len());
    let mut n = String::new();
    if rng.random_bool(0.3) {
        n.push('-');
    }
    let digits = |rng: &mut ChaCha8Rng, n: &mut String, count: usize| {
        for _ in 0..count {
            n.push(char::from(b'0' + rng.random_range(0..10u8)));
        }
    };
    let count = rng.random_range(1..=25);
    digits(rng, &mut n, count);
    if rng.random_bool(0.6) {
        n.push('.');
        let count = rng.random_range(1..=25);
        digits(rng, &mut n, count);
    }
    if rng.random_bool(0.4) {
        n.push(if rng.random_bool(0.5) { 'e' } else { 'E' });
        if rng.random_bool(0.5) {
            n.push(if rng.random_bool(0.5) { '-' } else { '+' });
        }
        n.push_str(&rng.random_range(0..=50u32).to_string());
    }
    data.splice(start..end, n.bytes());
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

fn main() {
    let args = Args::parse();
    let findings_dir = root().join("target/fuzz/findings");
    // Panics are findings, reported below: keep the default hook's output out of the way.
    std::panic::set_hook(Box::new(|_| {}));
    let mut total_findings = 0;
    for target in targets() {
        if !args.targets.is_empty() && !args.targets.iter().any(|t| t == target.name) {
            continue;
        }
        let seeds = seeds(&target);
        let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
        let deadline = args
            .seconds
            .map(|s| Instant::now() + Duration::from_secs(s));
        let runs = args.runs.unwrap_or(if deadline.is_some() {
            u64::MAX
        } else {
            200_000
        });
        let started = Instant::now();
        let (mut executed, mut findings) = (0u64, 0u64);
        // The seeds themselves first, then mutations of them.
        let mut inputs = seeds.clone().into_iter();
        while executed < runs && deadline.is_none_or(|d| Instant::now() < d) {
            let input = inputs.next().unwrap_or_else(|| {
                let mut data = seeds[rng.random_range(0..seeds.len())].clone();
                mutate(&mut data, &seeds, &mut rng);
                data
            });
            executed += 1;
            let outcome = match catch_unwind(AssertUnwindSafe(|| (target.check)(&input))) {
                Ok(Ok(())) => continue,
                Ok(Err(broken)) => broken,
                Err(payload) => format!("panic: {}", panic_text(payload.as_ref())),
            };
            findings += 1;
            std::fs::create_dir_all(&findings_dir).expect("findings folder");
            let path = findings_dir.join(format!("{}-{findings}.bin", target.name));
            std::fs::write(&path, &input).expect("write finding");
            println!("FINDING {}: {outcome} ({})", target.name, path.display());
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{}: {executed} executions in {seconds:.1} s ({:.0}/s), {} seeds, {findings} findings",
            target.name,
            executed as f64 / seconds.max(1e-9),
            seeds.len()
        );
        total_findings += findings;
    }
    if total_findings > 0 {
        std::process::exit(1);
    }
}
