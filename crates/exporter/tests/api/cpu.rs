use crate::helpers::{scrape_until, spawn_app_with};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const INTERVAL_SECONDS: f64 = 0.2;

fn online_cpus() -> usize {
    std::fs::read_to_string("/proc/stat")
        .expect("/proc/stat")
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count()
}

/// Keeps every CPU busy until dropped (and for 5 s at most).
struct Spinners {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Spinners {
    fn start(n: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(5);
                    let mut x: u64 = 1;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_usage_is_a_ratio_that_rises_while_the_cpus_spin() {
    let app = spawn_app_with(|s| s.collectors.sampling_interval_seconds = INTERVAL_SECONDS).await;
    let before = scrape_until(&app, Duration::from_secs(3), |s| {
        s.value("system_cpu_usage_ratio", &[]).is_some()
    })
    .await;
    let cpus = online_cpus();
    let idle_ratio = before.get("system_cpu_usage_ratio", &[]);
    assert!((0.0..=1.0).contains(&idle_ratio), "{idle_ratio}");
    assert_eq!(before.get("system_cpu_count", &[]), cpus as f64);
    assert_eq!(before.collector_success("cpu"), 1.0);
    for load in ["system_load1", "system_load5", "system_load15"] {
        assert!(before.get(load, &[]) >= 0.0);
    }

    let spinners = Spinners::start(cpus);
    // Two full sampling intervals inside the spin, so the latest sample covers only spinning.
    tokio::time::sleep(Duration::from_secs_f64(INTERVAL_SECONDS * 3.0)).await;
    let mut busiest: f64 = 0.0;
    for _ in 0..5 {
        let ratio = app.scrape().await.get("system_cpu_usage_ratio", &[]);
        assert!((0.0..=1.0).contains(&ratio), "{ratio}");
        busiest = busiest.max(ratio);
        tokio::time::sleep(Duration::from_secs_f64(INTERVAL_SECONDS)).await;
    }
    drop(spinners);

    // One spinning thread per CPU keeps the machine busy whatever else runs on it.
    assert!(
        busiest >= 0.8,
        "busiest {busiest} while spinning {cpus} CPUs"
    );
    assert!(
        busiest > idle_ratio + 0.1 || idle_ratio >= 0.7,
        "did not rise: {idle_ratio} before, {busiest} while spinning"
    );
}
