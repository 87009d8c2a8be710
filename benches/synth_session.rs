//! Generates a full 6.5-hour regular session (09:30–16:00 ET) with the default settings and
//! prints the record count, the seconds taken and the records per second.
//!
//! `cargo bench --bench synth_session` (set `SYNTH_BENCH_HOURS` for a shorter run).

use std::time::Instant;

use chrono::NaiveTime;
use spymaster::synth::{self, Scenario, SynthConfig};

fn main() {
    let hours: f64 = std::env::var("SYNTH_BENCH_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(6.5);
    let cfg = SynthConfig {
        start: NaiveTime::from_hms_opt(9, 30, 0).expect("valid time"),
        duration_s: hours * 3600.0,
        ..SynthConfig::default()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let t0 = Instant::now();
    let summary = synth::generate(&cfg, &Scenario::empty(), dir.path(), None).expect("generate");
    let secs = t0.elapsed().as_secs_f64();
    let bytes: u64 = summary
        .files
        .iter()
        .map(|f| std::fs::metadata(&f.path).map_or(0, |m| m.len()))
        .sum();
    println!("synth_session: {hours} h of market");
    println!("  es records      {:>12}", summary.es_records);
    println!("  all records     {:>12}", summary.total_records());
    println!("  seconds         {secs:>12.2}");
    println!(
        "  es records/s    {:>12.0}",
        summary.es_records as f64 / secs
    );
    println!(
        "  all records/s   {:>12.0}",
        summary.total_records() as f64 / secs
    );
    println!("  output bytes    {bytes:>12}");
    println!(
        "  es range        {:.2} – {:.2} (last {:.2})",
        summary.es_low, summary.es_high, summary.es_last
    );
}
