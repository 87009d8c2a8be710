//! Engine-alone benchmark: events/s on decoded events and snap latency with ~20 active levels.
//!
//! A synthetic session is built in memory: ES MBP-10 images at 5 000/s, ES trades at ~500/s,
//! SPY prints and 0DTE option trades, around a mean-reverting price with hotzones every $0.05 so
//! about 20 levels are active at each snap. A chunk of events is generated once and replayed with
//! shifted timestamps (outside the timed region) until at least 5 M events have been applied.
//! Run with `cargo bench --bench core_engine`.

use std::hint::black_box;
use std::time::Instant;

use spymaster::core::{Config, Engine};
use spymaster::event::{BOOK_DEPTH, BookRow, Event, FuturesTrade, Mbp10, OptionTrade, StockTrade};

const MS: u64 = 1_000_000;
/// 2026-11-24 14:30 UTC (09:30 EST).
const T0: u64 = 1_795_530_600 * 1_000_000_000;
const TOTAL: usize = 5_000_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn chunk(size: usize) -> (Vec<Event>, u64) {
    let mut rng = Rng(2026);
    let mut out = Vec::with_capacity(size);
    let mut ts = T0;
    let mut mid_ticks: i64 = 6870 * 4;
    // Resting size by price (ticks from 6800), so a moving mid keeps the sizes at each price.
    let mut sizes: Vec<u32> = (0..1_000).map(|_| 50 + rng.next(200) as u32).collect();
    let at = |tick: i64| (tick - 6800 * 4) as usize;
    let book_gap = MS / 5; // 5 000 images per second
    while out.len() < size {
        ts += book_gap;
        let mid = mid_ticks as f64 * 0.25;
        // One or two visible price levels change per image.
        for _ in 0..1 + rng.next(2) {
            let tick = mid_ticks - 9 + rng.next(20) as i64;
            let s = &mut sizes[at(tick)];
            *s = (*s as i64 + rng.next(61) as i64 - 30).clamp(1, 400) as u32;
        }
        let mut levels = [BookRow::EMPTY; BOOK_DEPTH];
        for (i, row) in levels.iter_mut().enumerate() {
            let bid = mid_ticks - i as i64;
            let ask = mid_ticks + 1 + i as i64;
            row.bid_px = Some(bid as f64 * 0.25);
            row.bid_sz = sizes[at(bid)];
            row.ask_px = Some(ask as f64 * 0.25);
            row.ask_sz = sizes[at(ask)];
        }
        out.push(Event::Mbp10(Box::new(Mbp10 {
            ts_event_ns: ts,
            ts_recv_ns: ts,
            source: "sim".into(),
            symbol: "ESZ5".into(),
            levels,
            is_snapshot: false,
            seq: None,
            action: Some('M'),
            side: Some('B'),
            price: Some(mid),
            size: Some(1),
            flags: None,
        })));
        // ~500 trades/s.
        if rng.next(10) == 0 {
            let aggressor = if rng.next(2) == 0 { 1 } else { -1 };
            let price = if aggressor == 1 { mid + 0.25 } else { mid };
            out.push(Event::FuturesTrade(FuturesTrade {
                ts_event_ns: ts + 1,
                ts_recv_ns: ts + 1,
                source: "sim".into(),
                symbol: "ESZ5".into(),
                price,
                size: 1 + rng.next(20) as u32,
                aggressor,
                exchange: None,
                seq: None,
            }));
            // Mean-reverting walk within about ±$0.40 of 687.
            let pull = if mid_ticks > 6870 * 4 + 12 {
                -1
            } else if mid_ticks < 6870 * 4 - 12 {
                1
            } else {
                0
            };
            mid_ticks += rng.next(3) as i64 - 1 + pull;
        }
        // ~50 SPY prints/s and ~25 option trades/s.
        if rng.next(100) == 0 {
            out.push(Event::StockTrade(StockTrade {
                ts_event_ns: ts + 2,
                ts_recv_ns: ts + 2,
                source: "sim".into(),
                symbol: "SPY".into(),
                price: mid / 10.0 + 0.01 * (rng.next(3) as f64 - 1.0),
                size: 100,
                exchange: None,
                seq: None,
            }));
        }
        if rng.next(200) == 0 {
            let strike = 685.0 + rng.next(5) as f64;
            let right = if rng.next(2) == 0 { 'C' } else { 'P' };
            let price = 0.2 + rng.next(300) as f64 / 100.0;
            out.push(Event::OptionTrade(OptionTrade {
                ts_event_ns: ts + 3,
                ts_recv_ns: ts + 3,
                source: "sim".into(),
                underlying: "SPY".into(),
                option_symbol: format!("SPY 261124{right}{strike}"),
                exp_date: "2026-11-24".into(),
                strike,
                right,
                price,
                size: 1 + rng.next(100) as u32,
                opt_bid: Some(price - 0.02),
                opt_ask: Some(price + 0.02),
                aggressor: 0,
                seq: None,
            }));
        }
    }
    (out, ts - T0 + MS)
}

fn shift(events: &mut [Event], by: u64) {
    for e in events {
        match e {
            Event::FuturesTrade(t) => t.ts_event_ns += by,
            Event::Mbp10(m) => m.ts_event_ns += by,
            Event::OptionTrade(o) => o.ts_event_ns += by,
            Event::StockTrade(t) => t.ts_event_ns += by,
            Event::StockQuote(q) => q.ts_event_ns += by,
            Event::LevelSignals(_) | Event::FeedStatus(_) => {}
        }
    }
}

/// User + system CPU time of this process in seconds (from /proc; 0 where unavailable).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    // A large chunk streams events from memory (~0.7 KB each, ~170 MB); a small one (~1.4 MB)
    // stays in the core's cache, as an event just decoded from a pipe does. (A chunk of 20 000,
    // ~14 MB, already spills out of this machine's caches.)
    for size in [250_000, 2_000] {
        bench(size);
    }
}

fn bench(chunk_size: usize) {
    let (mut events, span) = chunk(chunk_size);
    let hotzones: Vec<f64> = (0..21).map(|i| 686.5 + 0.05 * i as f64).collect();
    let config = Config {
        hotzones,
        ..Config::default()
    };
    let mut engine = Engine::new(config);
    let mut applied = 0usize;
    let mut busy = std::time::Duration::ZERO;
    let mut snap_us: Vec<f64> = Vec::new();
    let mut active_levels = 0usize;
    let mut pass = 0u64;
    while applied < TOTAL {
        if pass > 0 {
            shift(&mut events, span);
        }
        let start = Instant::now();
        for e in &events {
            let t = Instant::now();
            if let Some(snap) = engine.apply(e) {
                snap_us.push(t.elapsed().as_secs_f64() * 1e6);
                active_levels += snap.levels.len();
                black_box(snap);
            }
        }
        busy += start.elapsed();
        applied += events.len();
        pass += 1;
    }
    // Throughput without per-event timers: a fresh engine over the same number of events.
    let mut engine2 = Engine::new(engine.config().clone());
    shift(&mut events, span);
    let mut plain = std::time::Duration::ZERO;
    let cpu_start = cpu_seconds();
    let mut applied2 = 0usize;
    let mut snaps2 = 0usize;
    while applied2 < TOTAL {
        shift(&mut events, span);
        let start = Instant::now();
        for e in &events {
            if let Some(snap) = engine2.apply(e) {
                snaps2 += 1;
                black_box(snap);
            }
        }
        plain += start.elapsed();
        applied2 += events.len();
    }
    let cpu = cpu_seconds() - cpu_start;
    println!(
        "  tracked zones at end  {}, non-linear pair records in the window {}",
        engine.market().barrier.tracked_zones(),
        engine.market().barrier.nonlinear_records()
    );
    let mut sorted = snap_us.clone();
    sorted.sort_by(f64::total_cmp);
    let stats = engine.stats();
    println!("core_engine benchmark (events replayed in chunks of {chunk_size})");
    println!(
        "  events applied        {applied} ({} book images, {} ES trades, {} option trades)",
        stats.mbp10, stats.futures_trades, stats.option_trades
    );
    println!(
        "  engine alone          {:.0} events/s ({} events in {:.2} s, {} snaps)",
        applied2 as f64 / plain.as_secs_f64(),
        applied2,
        plain.as_secs_f64(),
        snaps2
    );
    if cpu > 0.0 {
        println!(
            "  engine alone, CPU     {:.0} events per CPU-second ({cpu:.2} s of CPU; the machine is shared)",
            applied2 as f64 / cpu
        );
    }
    println!(
        "  with per-event timer  {:.0} events/s",
        applied as f64 / busy.as_secs_f64()
    );
    println!(
        "  snaps                 {} (mean {:.1} active levels)",
        snap_us.len(),
        active_levels as f64 / snap_us.len().max(1) as f64
    );
    println!(
        "  snap latency µs       p50 {:.1}  p99 {:.1}  max {:.1}",
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.99),
        sorted.last().copied().unwrap_or(0.0)
    );
}
