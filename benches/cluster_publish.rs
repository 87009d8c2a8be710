//! Replay onto a replicated stream of a three-node cluster, side by side with a bare client, in
//! one run — `benches/nats_publish.rs` on the local cluster of `src/bus/testing.rs` (three
//! nodes of the pinned nats-server from the committed `deploy/nats-cluster.conf`):
//!
//! 1. `spm-replay --speed 0 --output nats --stream-replicas 3` of a synthetic session
//!    (`spm-synth`; **1 h** by default to keep the run to a few minutes on a small machine,
//!    SPM_BENCH_HOURS for another length) into `MARKET_DATA` as R3: events/s;
//! 2. the bare client of `nats_publish.rs` — the very same JSON payloads (an NDJSON copy of the
//!    session, made outside the timed region), the same fast-ingest protocol (batches of 10 000,
//!    flow 500, a window of 4 096, the same headers), no decoding, JSON or retention — into the
//!    same R3 stream: messages/s, and our share of it (target ≥ 80 %);
//! 3. both again on an R1 stream of the same nodes (which takes async persistence, as
//!    `just up` does; replicated streams cannot), for the price of replication.
//!
//! Each run starts on a freshly started cluster with empty stores. The streams are created first
//! with the settings the replay uses, then both clients connect to the same node — by default the
//! stream's leader, so R3 against R1 is replication alone (SPM_BENCH_CONNECT=`follower` for a
//! node that does not lead, one route hop more; `seeds` for the whole seed list, a node at
//! random, as a user gives it). After each run every node holding the stream must hold every
//! event, and the leader must not have moved. SPM_BENCH_ORDER lists the runs (default
//! `replay-r3,bare-r3,replay-r1,bare-r1`); ratios use the last of each.
//!
//! **What the figures say.** Here the three servers, the publisher and whatever else runs
//! share the machine's cores (2 on the reference machine); on a real cluster each server has a
//! machine. The absolute rates are therefore bounded by CPU that the replicas take from the
//! leader and the publisher, and say little about a real cluster's rate. The ratio to the bare
//! client is what carries over: on the same servers, cores and protocol, it is what our decoding,
//! merging, JSON and retention cost over the protocol itself. The CPU columns (µs per event of
//! the publisher and of each node, the share of all cores these processes used, and how busy the
//! machine was, others' work included) show where the time goes; the ratio of CPU per event
//! (publisher and nodes together) is the same comparison without the noise of other work on a
//! shared machine, which the wall-clock ratio of two runs a minute apart is exposed to.

mod support;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spymaster::bus::testing::{NATS_SERVER_VERSION, NatsCluster};
use spymaster::bus::{Bus, BusConfig, MARKET_DATA_STREAM};

use support::bare::{bare_fast_ingest, children_cpu_secs, cpu_secs, per_msg_us};
use support::{data_dir, mb, measure, session};

/// The machine's CPU time so far from `/proc/stat`, in seconds summed over its cores: (busy,
/// waiting for I/O, all).
fn machine_cpu() -> Option<[f64; 3]> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let t: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse::<f64>().map(|x| x / 100.0))
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal
    let busy = t[0] + t[1] + t[2] + t[5] + t[6] + t[7];
    Some([busy, t[4], busy + t[3] + t[4]])
}

/// The pids of the cluster's nodes, by node index: the `nats-server` children of this process,
/// told apart by the `SPM_NODE` they were started with.
fn node_pids(cluster: &NatsCluster) -> [Option<u32>; 3] {
    let me = std::process::id();
    let mut pids = [None; 3];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let parent = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if parent != Some(me) || !stat.contains("(nats-server)") {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let node = env
            .split(|&b| b == 0)
            .find_map(|kv| kv.strip_prefix(b"SPM_NODE="))
            .map(|n| String::from_utf8_lossy(n).into_owned());
        if let Some(i) = node.and_then(|n| cluster.index_of(&n)) {
            pids[i] = Some(pid);
        }
    }
    pids
}

/// CPU seconds of every node so far.
fn nodes_cpu(pids: &[Option<u32>; 3]) -> [Option<f64>; 3] {
    pids.map(|p| p.and_then(cpu_secs))
}

fn cpu_since(now: [Option<f64>; 3], then: [Option<f64>; 3]) -> [Option<f64>; 3] {
    [0, 1, 2].map(|i| now[i].zip(then[i]).map(|(b, a)| b - a))
}

/// One measured run: what it published and how fast, and the CPU it and each node took.
struct Run {
    msgs: u64,
    secs: f64,
    client_cpu: Option<f64>,
    nodes_cpu: [Option<f64>; 3],
    peak_rss: Option<u64>,
    /// The machine's CPU seconds over the run: busy, waiting for I/O, all.
    machine: Option<[f64; 3]>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.msgs as f64 / self.secs
    }

    /// CPU seconds per message of the publisher and every node together.
    fn cpu_per_msg(&self) -> f64 {
        (self.client_cpu.unwrap_or(f64::NAN) + self.nodes_cpu.iter().flatten().sum::<f64>())
            / self.msgs.max(1) as f64
    }
}

/// The cluster of a run with its streams made, and the node both clients use.
struct Setup {
    cluster: NatsCluster,
    /// Connected to the chosen node; creates the streams and counts what they hold.
    bus: Bus,
    url: String,
    leader: usize,
    node: Option<usize>,
}

fn bus_config(url: &str, replicas: u8) -> BusConfig {
    let mut cfg = BusConfig::new(url);
    cfg.streams.replicas = replicas;
    cfg
}

/// A fresh cluster with the replay's streams created at `replicas`, and the URL to publish to.
fn setup(replicas: u8, connect: &str) -> anyhow::Result<Setup> {
    let cluster = NatsCluster::start();
    Bus::connect(&bus_config(&cluster.url(), replicas))?.ensure_streams()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Some(l) = cluster.leader_of(MARKET_DATA_STREAM) {
            break l;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no leader of {MARKET_DATA_STREAM} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let node = match connect {
        "leader" => Some(leader),
        "follower" => Some((leader + 1) % 3),
        "seeds" => None,
        other => anyhow::bail!("SPM_BENCH_CONNECT takes leader, follower or seeds, got {other:?}"),
    };
    let url = node.map_or_else(|| cluster.url(), |i| cluster.node_url(i));
    let bus = Bus::connect(&bus_config(&url, replicas))?;
    Ok(Setup {
        cluster,
        bus,
        url,
        leader,
        node,
    })
}

/// Checks that the stream holds `expected` messages on every node that keeps it (replicas
/// catch up after the leader's acknowledgement: waits up to 60 s); says so when the leader moved
/// during the run (a re-election: the run is not comparable with the others).
fn verify(s: &Setup, replicas: u8, expected: u64) -> anyhow::Result<Option<String>> {
    let stored = s.bus.stream_message_count(MARKET_DATA_STREAM)?;
    anyhow::ensure!(
        stored == expected,
        "the stream holds {stored} messages, the session has {expected} events"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held: Vec<u64> = (0..3)
            .filter_map(|i| s.cluster.stream_on(i, MARKET_DATA_STREAM))
            .map(|(msgs, _, _)| msgs)
            .collect();
        if held.len() == usize::from(replicas) && held.iter().all(|&m| m == expected) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the nodes hold {held:?} messages of {MARKET_DATA_STREAM}, expected {expected} on {replicas}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let leader = s.cluster.leader_of(MARKET_DATA_STREAM);
    Ok((leader != Some(s.leader)).then(|| {
        format!(
            "NOTE: the leader moved from {} to {} during this run; not comparable",
            s.cluster.node_name(s.leader),
            leader.map_or("none", |l| s.cluster.node_name(l))
        )
    }))
}

/// The warnings, errors and elections in the nodes' logs, each line prefixed by its node.
fn node_notes(cluster: &NatsCluster) -> String {
    (0..3)
        .flat_map(|i| {
            cluster
                .log(i)
                .lines()
                .filter(|l| l.contains("[WRN]") || l.contains("[ERR]") || l.contains("leader"))
                .map(|l| format!("{}: {l}", cluster.node_name(i)))
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lines of a file.
fn count_lines(path: &Path) -> anyhow::Result<u64> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let mut n = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(n);
        }
        n += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let len = buf.len();
        reader.consume(len);
    }
}

fn main() -> anyhow::Result<()> {
    let hours: f64 = std::env::var("SPM_BENCH_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let connect = std::env::var("SPM_BENCH_CONNECT").unwrap_or_else(|_| "leader".into());
    let order = std::env::var("SPM_BENCH_ORDER")
        .unwrap_or_else(|_| "replay-r3,bare-r3,replay-r1,bare-r1".into());
    let files = session(hours);
    let payloads = support::session_pipe(&files, hours, "ndjson");
    let events = count_lines(&payloads)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "nats-server {NATS_SERVER_VERSION}, three-node cluster on this machine ({cpus} CPUs shared by the nodes and the publisher), JetStream file storage, {hours} h session ({events} events), clients on the {}",
        match connect.as_str() {
            "leader" => "stream leader",
            "follower" => "node after the stream leader",
            _ => "seed list (a node at random)",
        }
    );
    support::warm_page_cache(&files);
    support::warm_page_cache(std::slice::from_ref(&payloads));

    let mut results: Vec<(String, Run)> = Vec::new();
    for step in order.split(',').map(str::trim) {
        let (who, replicas) = match step {
            "replay-r3" => ("replay", 3),
            "bare-r3" => ("bare", 3),
            "replay-r1" => ("replay", 1),
            "bare-r1" => ("bare", 1),
            other => anyhow::bail!(
                "SPM_BENCH_ORDER takes replay-r3, bare-r3, replay-r1 and bare-r1, got {other:?}"
            ),
        };
        let s = setup(replicas, &connect)?;
        let pids = node_pids(&s.cluster);
        let nodes0 = nodes_cpu(&pids);
        let machine0 = machine_cpu();
        let mut run = if who == "bare" {
            let client0 = cpu_secs(std::process::id());
            let (sent, secs) = bare_fast_ingest(&s.bus, &payloads)?;
            let client_cpu = cpu_secs(std::process::id())
                .zip(client0)
                .map(|(b, a)| b - a);
            Run {
                msgs: sent,
                secs,
                client_cpu,
                nodes_cpu: cpu_since(nodes_cpu(&pids), nodes0),
                peak_rss: None,
                machine: None,
            }
        } else {
            let log = data_dir().join(format!("cluster_publish-{step}.log"));
            let client0 = children_cpu_secs();
            let run = measure(
                Command::new(env!("CARGO_BIN_EXE_spm-replay"))
                    .args(["--speed", "0", "--output", "nats", "--nats-url", &s.url])
                    .args(["--stream-replicas", &replicas.to_string()])
                    .args(&files)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log)?),
            );
            let nodes_cpu = cpu_since(nodes_cpu(&pids), nodes0);
            let client_cpu = children_cpu_secs().zip(client0).map(|(b, a)| b - a);
            anyhow::ensure!(
                run.status.success(),
                "spm-replay --output nats --stream-replicas {replicas} failed ({}); its log, {}:\n{}\nthe nodes' warnings, errors and elections:\n{}",
                run.status,
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_default(),
                node_notes(&s.cluster)
            );
            Run {
                msgs: s.bus.stream_message_count(MARKET_DATA_STREAM)?,
                secs: run.wall.as_secs_f64(),
                client_cpu,
                nodes_cpu,
                peak_rss: Some(run.peak_rss),
                machine: None,
            }
        };
        run.machine = machine_cpu()
            .zip(machine0)
            .map(|(b, a)| [0, 1, 2].map(|i| b[i] - a[i]));
        let note = match verify(&s, replicas, events) {
            Ok(note) => note,
            Err(e) => {
                let logs: Vec<String> = (0..3)
                    .map(|i| format!("--- {} ---\n{}", s.cluster.node_name(i), s.cluster.log(i)))
                    .collect();
                anyhow::bail!("{step}: {e}\n{}", logs.join("\n"));
            }
        };
        anyhow::ensure!(
            run.msgs == events,
            "{step} published {} of the session's {events} events",
            run.msgs
        );
        println!("{}", describe(who, replicas, &s, &run, cpus));
        if let Some(note) = note {
            println!("  {note}");
        }
        results.push((step.to_string(), run));
    }

    let last = |step: &str| {
        results
            .iter()
            .rev()
            .find(|(s, _)| s == step)
            .map(|(_, r)| r)
    };
    if let (Some(ours), Some(bare)) = (last("replay-r3"), last("bare-r3")) {
        let ratio = 100.0 * ours.rate() / bare.rate();
        println!(
            "spm-replay / bare client, R3 : {ratio:5.1} % (target >= 80 %: {})",
            if ratio >= 80.0 { "PASS" } else { "FAIL" }
        );
        println!(
            "  by CPU per event          : {:5.1} % (bare {:.1} us / replay {:.1} us, publisher and nodes: the ratio on a machine these processes alone keep busy)",
            100.0 * bare.cpu_per_msg() / ours.cpu_per_msg(),
            bare.cpu_per_msg() * 1e6,
            ours.cpu_per_msg() * 1e6
        );
    }
    if let (Some(ours), Some(bare)) = (last("replay-r1"), last("bare-r1")) {
        println!(
            "spm-replay / bare client, R1 : {:5.1} % (for information)",
            100.0 * ours.rate() / bare.rate()
        );
    }
    for (who, r3, r1) in [
        ("spm-replay", "replay-r3", "replay-r1"),
        ("bare client", "bare-r3", "bare-r1"),
    ] {
        if let (Some(r3), Some(r1)) = (last(r3), last(r1)) {
            println!(
                "R3 / R1, {who:<11}        : {:5.1} % (the price of replication here, for information)",
                100.0 * r3.rate() / r1.rate()
            );
        }
    }
    Ok(())
}

/// One line of the table: the rate, where the CPU went, and the share of all cores used.
fn describe(who: &str, replicas: u8, s: &Setup, run: &Run, cpus: usize) -> String {
    let (name, unit) = if who == "replay" {
        ("spm-replay ", "events")
    } else {
        ("bare client", "msgs")
    };
    let nodes: Vec<String> = (0..3)
        .map(|i| {
            let role = if i == s.leader {
                "leader"
            } else if replicas > 1 {
                "follower"
            } else {
                "no replica"
            };
            let here = if s.node == Some(i) { ", client's" } else { "" };
            format!(
                "{} ({role}{here}) {:.1}",
                s.cluster.node_name(i),
                per_msg_us(run.nodes_cpu[i], run.msgs)
            )
        })
        .collect();
    let total = run.client_cpu.unwrap_or(f64::NAN) + run.nodes_cpu.iter().flatten().sum::<f64>();
    let machine = run.machine.map_or(String::new(), |[busy, iowait, all]| {
        format!(
            "; the machine {:.0} % busy, {:.0} % in I/O wait",
            100.0 * busy / all,
            100.0 * iowait / all
        )
    });
    let rss = run
        .peak_rss
        .map_or(String::new(), |b| format!("peak RSS {:.1} MB; ", mb(b)));
    format!(
        "{name} -> R{replicas}: {} {unit} in {:.2} s = {:>9.0} {unit}/s ({rss}CPU us/{}: client {:.1}, {}; all cores {:.0} % busy with these{machine})",
        run.msgs,
        run.secs,
        run.rate(),
        unit.trim_end_matches('s'),
        per_msg_us(run.client_cpu, run.msgs),
        nodes.join(", "),
        100.0 * total / run.secs / cpus as f64,
    )
}
