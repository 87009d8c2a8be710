//! Reads `spm-synth` output with Databento's official Python decoder (`databento_dbn`) through
//! `tests/py/check_synth.py`: metadata, book sanity, trades allowed by the book, option
//! no-arbitrage bounds, time order, and the committed sample's BREAK / REJECT expectations
//! replayed through a reference reading of PHYSICS.md. Skips when Python or the decoder is
//! missing.

use std::path::Path;
use std::process::Command;

use spymaster::synth::{self, Scenario, SynthConfig};

fn python_with_decoder() -> bool {
    match Command::new("python3")
        .args(["-c", "import databento_dbn"])
        .output()
    {
        Ok(o) if o.status.success() => true,
        Ok(_) => {
            println!("skipping: python3 has no databento_dbn module (pip install databento-dbn)");
            false
        }
        Err(_) => {
            println!("skipping: python3 not found");
            false
        }
    }
}

fn run_checker(dir: &Path, extra: &[&str]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_synth.py");
    Command::new("python3")
        .arg(script)
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

fn check(dir: &Path, extra: &[&str]) {
    let out = run_checker(dir, extra);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "check_synth.py failed on {}:\n{stdout}\n{stderr}",
        dir.display()
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["failures"], serde_json::json!([]));
    assert!(v["mbp10_records"].as_u64().unwrap() > 1000);
    assert!(v["option_trades"].as_u64().unwrap() > 0);
}

#[test]
fn generated_session_reads_cleanly_with_the_official_decoder() {
    if !python_with_decoder() {
        return;
    }
    let scenario = Scenario::from_toml_str(
        r#"
        [[event]]
        at = "+00:00:20"
        kind = "sweep"
        side = "sell"
        size = 300
        prices = 4
        [[event]]
        at = "+00:00:30"
        kind = "options"
        customer = "sell"
        strikes = [680, 688, 695]
        contracts = 800
        duration_s = 20
        "#,
    )
    .unwrap();
    let cfg = SynthConfig {
        duration_s: 90.0,
        ..SynthConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    synth::generate(&cfg, &scenario, dir.path(), None).unwrap();
    check(dir.path(), &[]);
    let plain = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        zstd_level: None,
        seed: 9,
        ..cfg
    };
    synth::generate(&cfg, &scenario, plain.path(), None).unwrap();
    check(plain.path(), &[]);
}

#[test]
fn committed_sample_reads_cleanly_and_shows_the_expected_calls() {
    if !python_with_decoder() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let scenario = root.join("scenario.toml");
    check(&root, &["--physics", scenario.to_str().unwrap()]);
}

#[test]
fn checker_catches_a_crossed_book() {
    use dbn::decode::{DbnMetadata, DecodeRecord, DynDecoder};
    use dbn::encode::{DbnEncoder, EncodeRecord};

    if !python_with_decoder() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        duration_s: 20.0,
        zstd_level: None,
        ..SynthConfig::default()
    };
    synth::generate(&cfg, &Scenario::empty(), dir.path(), None).unwrap();
    let path = dir.path().join("es.mbp-10.dbn");
    let mut dec = DynDecoder::from_file(&path, dbn::VersionUpgradePolicy::AsIs).unwrap();
    let meta = dec.metadata().clone();
    let mut recs = Vec::new();
    while let Some(r) = dec.decode_record::<dbn::Mbp10Msg>().unwrap() {
        recs.push(r.clone());
    }
    drop(dec);
    // Swap the best bid and ask of one image in the middle of the file: a crossed book.
    let i = recs.len() / 2;
    let l = &mut recs[i].levels[0];
    std::mem::swap(&mut l.bid_px, &mut l.ask_px);
    let mut enc = DbnEncoder::new(std::fs::File::create(&path).unwrap(), &meta).unwrap();
    for r in &recs {
        enc.encode_record(r).unwrap();
    }
    drop(enc);
    let out = run_checker(dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "checker accepted a crossed book:\n{stdout}"
    );
    assert!(stdout.contains("crossed book"), "{stdout}");
}
