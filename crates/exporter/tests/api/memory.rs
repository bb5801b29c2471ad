use crate::helpers::{meminfo_bytes, spawn_app};

/// Within 2% or 16 MiB, whichever is larger: memory moves between the two readings.
fn assert_close(what: &str, exported: f64, proc: f64) {
    let tolerance = (proc * 0.02).max(16.0 * 1024.0 * 1024.0);
    assert!(
        (exported - proc).abs() <= tolerance,
        "{what}: exported {exported}, /proc/meminfo {proc}"
    );
}

#[tokio::test]
async fn memory_agrees_with_proc_meminfo() {
    let app = spawn_app().await;

    let scrape = app.scrape().await;
    let (total, available) = (meminfo_bytes("MemTotal"), meminfo_bytes("MemAvailable"));

    assert_eq!(scrape.collector_success("memory"), 1.0);
    let exported_total = scrape.get("system_memory_total_bytes", &[]);
    let exported_available = scrape.get("system_memory_available_bytes", &[]);
    assert_close("MemTotal", exported_total, total);
    assert_close("MemAvailable", exported_available, available);
    assert_eq!(
        scrape.get("system_memory_used_bytes", &[]),
        exported_total - exported_available
    );
    assert_close(
        "SwapTotal",
        scrape.get("system_swap_total_bytes", &[]),
        meminfo_bytes("SwapTotal"),
    );
    let swap_used = scrape.get("system_swap_used_bytes", &[]);
    assert!(swap_used >= 0.0 && swap_used <= scrape.get("system_swap_total_bytes", &[]));
}
