//! The committed man pages and shell completions match what the commands generate (`just docs`).

use std::path::Path;
use std::process::Command;

#[test]
fn committed_man_pages_and_completions_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().expect("tempdir");
    for bin in [
        env!("CARGO_BIN_EXE_spm-replay"),
        env!("CARGO_BIN_EXE_spm-ingest"),
        env!("CARGO_BIN_EXE_spm-core"),
        env!("CARGO_BIN_EXE_spm-synth"),
        env!("CARGO_BIN_EXE_spm-tap"),
        env!("CARGO_BIN_EXE_spm-lake"),
        env!("CARGO_BIN_EXE_spm-gateway"),
        env!("CARGO_BIN_EXE_spm-stack"),
        env!("CARGO_BIN_EXE_spm-eval"),
    ] {
        let status = Command::new(bin)
            .env("SPM_GEN_DOCS", tmp.path())
            .status()
            .expect("run command");
        assert!(status.success(), "{bin} could not write its docs");
    }
    let mut checked = 0;
    for sub in ["man", "completions"] {
        for entry in std::fs::read_dir(tmp.path().join(sub)).expect("generated dir") {
            let generated = entry.expect("entry").path();
            let name = generated.file_name().expect("name");
            let committed = root.join(sub).join(name);
            let want = std::fs::read(&generated).expect("read generated");
            let have = std::fs::read(&committed).unwrap_or_default();
            assert!(
                want == have,
                "{} is stale: run `just docs`",
                committed.display()
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        9 * 4,
        "a man page and three completions per command"
    );
}
