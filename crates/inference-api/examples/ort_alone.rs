//! ONNX Runtime alone: the baseline scripts/bench.sh holds the API's 100-row throughput against.
//!
//! `cargo run --release -p inference-api --example ort_alone -- [--threads N] [--rows R[,R...]] [--seconds S]`
//!
//! Loads the bundle the way the API does (`load_bundle` with the API's configuration, `APP_`
//! overrides included: the same library, session options and `model.intra_threads`), one session
//! per runner thread, then each of N runner threads (default: one per core) predicts batches of
//! R rows in a loop on its own session for S seconds (default 5) and the example prints the rows
//! per second of all of them together. The batches are the bundle's held-out rows (`samples.csv`)
//! from the first, repeated past the end: R = 100 is the body scripts/bench.sh sends in its
//! 100-row requests. Every batch goes through the same call and output check as a request's, so
//! the difference to the API is HTTP, JSON, bookkeeping and scheduling, not the model call.
//! One line per batch size, e.g.
//!
//! `ort-alone rows=100 threads=2 seconds=5.00 batches=36512 rows_per_second=730240 us_per_row=2.739`
//!
//! where `us_per_row` is one runner's time per row (threads / rows_per_second).

use anyhow::{Context, bail};
use inference_api::model::load_bundle;
use std::path::Path;
use std::time::{Duration, Instant};

struct Args {
    threads: usize,
    rows: Vec<usize>,
    seconds: f64,
    /// Each batch the next rows of the held-out set instead of the same rows every time.
    vary: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        rows: vec![100],
        seconds: 5.0,
        vary: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--vary" {
            args.vary = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--threads" => args.threads = value.parse().context("--threads")?,
            "--rows" => {
                args.rows = value
                    .split(',')
                    .map(|r| r.parse().context("--rows"))
                    .collect::<anyhow::Result<_>>()?
            }
            "--seconds" => args.seconds = value.parse().context("--seconds")?,
            _ => bail!("unknown argument {flag}"),
        }
    }
    if args.threads == 0
        || args.rows.contains(&0)
        || !args.seconds.is_finite()
        || args.seconds <= 0.0
    {
        bail!("--threads, --rows and --seconds must be positive");
    }
    Ok(args)
}

/// The held-out rows of the bundle, in the manifest's feature order, without their labels.
fn held_out_rows(bundle: &Path, features: usize) -> anyhow::Result<Vec<Vec<f32>>> {
    let bundle = model_bundle::Bundle::load(bundle)?;
    if bundle.features.len() != features {
        bail!(
            "the samples have {} features, the model takes {features}",
            bundle.features.len()
        );
    }
    Ok(bundle
        .samples
        .into_iter()
        .map(|s| s.features.into_iter().map(|x| x as f32).collect())
        .collect())
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let settings = inference_api::configuration::get_configuration()?;
    let dir = settings.model.default_model_dir();
    let model = load_bundle(&settings.model, &dir, args.threads)?;
    let rows = held_out_rows(&dir, model.features())?;
    if rows.is_empty() {
        bail!("no held-out rows in the bundle");
    }
    for &batch in &args.rows {
        // The held-out rows from the first, repeated: batch k starts at row k * batch (mod the
        // row count) with --vary, else at row 0.
        let input: Vec<f32> = rows
            .iter()
            .cycle()
            .take(rows.len() + batch)
            .flatten()
            .copied()
            .collect();
        let width = model.features();
        let starts = if args.vary { rows.len() } else { 1 };
        let batch_at = |k: u64| {
            let start = (k as usize * batch) % starts * width;
            &input[start..start + batch * width]
        };
        let run_for = Duration::from_secs_f64(args.seconds);
        // Warm-up: each session runs this batch size a few times before the clock starts.
        for session in 0..args.threads {
            for _ in 0..10 {
                model.run_rows(session, batch_at(0), batch)?;
            }
        }
        let started = Instant::now();
        let batches: Vec<u64> = std::thread::scope(|s| {
            let runners: Vec<_> = (0..args.threads)
                .map(|session| {
                    let (model, batch_at) = (&model, &batch_at);
                    s.spawn(move || -> anyhow::Result<u64> {
                        let mut n = 0;
                        while started.elapsed() < run_for {
                            model.run_rows(session, batch_at(n), batch)?;
                            n += 1;
                        }
                        Ok(n)
                    })
                })
                .collect();
            runners
                .into_iter()
                .map(|r| r.join().map_err(|_| anyhow::anyhow!("a runner panicked"))?)
                .collect::<anyhow::Result<_>>()
        })?;
        let elapsed = started.elapsed().as_secs_f64();
        let total: u64 = batches.iter().sum();
        let rate = (total as f64 * batch as f64) / elapsed;
        println!(
            "ort-alone rows={batch}{} threads={} seconds={elapsed:.2} batches={total} \
             rows_per_second={rate:.0} us_per_row={:.3}",
            if args.vary { " vary" } else { "" },
            args.threads,
            1e6 * args.threads as f64 / rate
        );
    }
    Ok(())
}
