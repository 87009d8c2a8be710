//! `docker-compose.yml` and the `Dockerfile` (DESIGN.md "The stack"), checked without Docker:
//! `docker-compose config` accepts the file, every command and health check of our image is a
//! real subcommand whose arguments the debug binaries parse, nats is the pinned server, and the
//! image holds every binary under src/bin and the sample files the replay service reads.
//!
//! The compose checks read what `docker-compose config` resolves (every `${VAR:-default}`
//! substituted, environments as mappings), turned into JSON by Debian's python3-yaml.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The services built from our Dockerfile, and those that run third-party images.
const OUR_SERVICES: [&str; 4] = ["core", "lake", "gateway", "replay"];
const THIRD_PARTY: [&str; 3] = ["nats", "minio", "minio-init"];
const BUCKET_INIT: &str = "minio-init";

/// Debian's own Python, by absolute path: Debian's docker-compose package depends on
/// python3-yaml, so wherever docker-compose came from apt this Python can `import yaml`, while
/// the `python3` first on PATH may be another one (a pyenv one, say) without yaml.
const PYTHON: &str = "/usr/bin/python3";
const YAML_TO_JSON: &str =
    "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// What `docker-compose -f docker-compose.yml config` resolves, as JSON (run once for all the
/// tests), or None (after saying why) when docker-compose is not installed and this is not CI.
fn compose() -> Option<&'static Value> {
    static RESOLVED: OnceLock<Option<Value>> = OnceLock::new();
    RESOLVED.get_or_init(resolve).as_ref()
}

fn resolve() -> Option<Value> {
    let mut cmd = Command::new("docker-compose");
    cmd.current_dir(repo())
        .args(["-f", "docker-compose.yml", "config"]);
    // Every variable the file mentions unset, so the defaults are what gets checked.
    for piece in read("docker-compose.yml").split("${").skip(1) {
        let end = piece.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        cmd.env_remove(&piece[..end.unwrap_or(piece.len())]);
    }
    for var in ["COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"] {
        cmd.env_remove(var);
    }
    let on_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    let mut config = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !on_ci => {
            eprintln!(
                "skipping: docker-compose is not installed (scripts/install-test-deps installs \
                 Debian's docker-compose; under CI this is a failure)"
            );
            return None;
        }
        Err(e) => panic!(
            "docker-compose cannot run ({e}), and CI must check docker-compose.yml with it: \
             scripts/install-test-deps installs Debian's docker-compose"
        ),
    };
    let json = Command::new(PYTHON)
        .args(["-c", YAML_TO_JSON])
        .stdin(config.stdout.take().unwrap())
        .output()
        .unwrap_or_else(|e| panic!("running {PYTHON} (Debian's, with python3-yaml): {e}"));
    let out = config.wait_with_output().expect("wait for docker-compose");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`docker-compose -f docker-compose.yml config` ends with {}:\n{stderr}",
        out.status
    );
    assert!(
        !stderr.contains("variable is not set"),
        "docker-compose.yml uses a variable without a default:\n{stderr}"
    );
    assert!(
        json.status.success(),
        "{PYTHON} cannot turn `docker-compose config`'s output into JSON (is Debian's \
         python3-yaml installed?):\n{}",
        String::from_utf8_lossy(&json.stderr)
    );
    Some(serde_json::from_slice(&json.stdout).expect("python3's json.dump writes JSON"))
}

fn services(doc: &Value) -> &Map<String, Value> {
    let services = doc["services"].as_object();
    services.expect("`docker-compose config` shows no `services` mapping")
}

fn service<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let svc = services(doc).get(name);
    svc.unwrap_or_else(|| panic!("docker-compose.yml has no service `{name}`"))
}

/// A command or health-check test: a list of strings, or a string split on whitespace.
fn argv(v: &Value, what: &str) -> Vec<String> {
    let word = |w: &Value| w.as_str().map(str::to_owned);
    let words = match v {
        Value::String(s) => Some(s.split_whitespace().map(str::to_owned).collect()),
        Value::Array(items) => items.iter().map(word).collect(),
        _ => None,
    };
    words.unwrap_or_else(|| panic!("{what} is not a list of strings nor a string: {v}"))
}

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

/// The services built from our Dockerfile (those with `build`), checked to share one image.
fn our_services(doc: &Value) -> Vec<(&str, &Value)> {
    let ours: Vec<(&str, &Value)> = (services(doc).iter())
        .filter(|(_, svc)| svc.get("build").is_some())
        .map(|(name, svc)| (name.as_str(), svc))
        .collect();
    for want in OUR_SERVICES {
        assert!(
            ours.iter().any(|(n, _)| *n == want),
            "service `{want}` is not built from the Dockerfile (no `build`)"
        );
    }
    let images: BTreeSet<&str> = (ours.iter())
        .map(|(name, svc)| {
            let image = svc["image"].as_str();
            image.unwrap_or_else(|| panic!("service `{name}` builds our image but names no image"))
        })
        .collect();
    assert_eq!(
        images.len(),
        1,
        "the services built from the Dockerfile must share one image, not {images:?}"
    );
    let image = *images.first().unwrap();
    for (name, svc) in services(doc) {
        assert!(
            svc["image"].as_str() != Some(image) || svc.get("build").is_some(),
            "service `{name}` runs {image} without `build`: compose would try to pull it"
        );
    }
    ours
}

/// The binaries the package builds: `src/bin/NAME.rs` or `src/bin/NAME/main.rs`.
fn package_bins() -> BTreeSet<String> {
    let mut bins = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("src/bin")).expect("src/bin") {
        let path = entry.expect("src/bin entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".rs") {
            bins.insert(stem.to_owned());
        } else if path.join("main.rs").is_file() {
            bins.insert(name);
        }
    }
    assert!(!bins.is_empty(), "no binaries found under src/bin");
    bins
}

/// Runs the debug binary `args[0]` with the rest of `args` and `--help`: clap parses every
/// argument before it acts on `--help`, so exit 0 means each flag exists and each value is
/// valid. The binary is found beside spm-core rather than through `env!("CARGO_BIN_EXE_...")`,
/// so this test compiles whichever binaries exist.
fn assert_parses(args: &[String], bins: &BTreeSet<String>, what: &str) {
    let program = &args[0];
    assert!(
        bins.contains(program),
        "{what} runs `{program}`, which is not one of our binaries {bins:?} (src/bin/{program}.rs \
         does not exist; name the program itself, in exec form)"
    );
    let path = Path::new(env!("CARGO_BIN_EXE_spm-core")).with_file_name(program);
    assert!(
        path.is_file(),
        "{what}: {} is not built (is src/bin/{program}.rs new and not yet compiled?)",
        path.display()
    );
    let out = Command::new(&path)
        .args(&args[1..])
        .arg("--help")
        .env_remove("SPM_GEN_DOCS")
        .output()
        .unwrap_or_else(|e| panic!("{what}: running {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{what}: `{} --help` ends with {}, so the image would reject these arguments:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `COPY` of the Dockerfile.
struct Copy {
    final_stage: bool,
    /// The `--from` stage; None for the build context.
    from: Option<String>,
    srcs: Vec<String>,
    dest: String,
}

/// The Dockerfile's instructions as words (comment lines dropped, continued lines joined), each
/// with whether it is in the final stage.
fn dockerfile() -> Vec<(bool, Vec<String>)> {
    let mut instrs: Vec<(bool, Vec<String>)> = Vec::new();
    let mut words = Vec::new();
    for line in read("Dockerfile").lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let (line, continued) = line.strip_suffix('\\').map_or((line, false), |l| (l, true));
        words.extend(line.split_whitespace().map(str::to_owned));
        if !continued && !words.is_empty() {
            if words[0].eq_ignore_ascii_case("FROM") {
                instrs.iter_mut().for_each(|(last, _)| *last = false);
            }
            instrs.push((true, std::mem::take(&mut words)));
        }
    }
    instrs
}

/// The Dockerfile's `COPY`s.
fn copies() -> Vec<Copy> {
    let mut copies = Vec::new();
    for (final_stage, words) in dockerfile() {
        if !words[0].eq_ignore_ascii_case("COPY") {
            continue;
        }
        let from = words.iter().find_map(|a| a.strip_prefix("--from="));
        let mut srcs: Vec<String> = words[1..]
            .iter()
            .filter(|a| !a.starts_with("--"))
            .cloned()
            .collect();
        let dest = srcs.pop().filter(|_| !srcs.is_empty());
        let dest = dest.unwrap_or_else(|| panic!("`{}` has no destination", words.join(" ")));
        copies.push(Copy {
            final_stage,
            from: from.map(str::to_owned),
            srcs,
            dest: dest.trim_end_matches('/').to_owned(),
        });
    }
    copies
}

/// Directories of the build context the final image holds, and where: (repo path, image path).
fn copied_dirs() -> Vec<(PathBuf, String)> {
    let mut dirs = Vec::new();
    let from_context = copies()
        .into_iter()
        .filter(|c| c.final_stage && c.from.is_none());
    for c in from_context {
        for src in c.srcs.iter().map(|s| repo().join(s.trim_end_matches('/'))) {
            if src.is_dir() {
                dirs.push((src, c.dest.clone()));
            }
        }
    }
    dirs
}

/// The repository path of an image path under a directory the Dockerfile copies.
fn in_repo(image_path: &str, copied: &[(PathBuf, String)]) -> Option<PathBuf> {
    copied.iter().find_map(|(src, dest)| {
        let rest = image_path.strip_prefix(dest.as_str())?.strip_prefix('/')?;
        Some(src.join(rest))
    })
}

#[test]
fn docker_compose_config_accepts_the_file_with_every_service() {
    let Some(doc) = compose() else { return };
    let names: BTreeSet<&str> = services(doc).keys().map(String::as_str).collect();
    for want in THIRD_PARTY.iter().chain(&OUR_SERVICES) {
        assert!(
            names.contains(want),
            "`docker-compose config` lists no service `{want}` (only {names:?})"
        );
    }
}

#[test]
fn every_service_of_our_image_runs_one_of_our_binaries_with_arguments_it_accepts() {
    let Some(doc) = compose() else { return };
    let (bins, copied) = (package_bins(), copied_dirs());
    for (name, svc) in our_services(doc) {
        let what = format!("service `{name}`'s command");
        assert!(
            svc.get("entrypoint").is_none(),
            "service `{name}` overrides the entrypoint: use `command`"
        );
        let args = argv(&svc["command"], &what);
        assert_parses(&args, &bins, &what);
        for (a, host) in args.iter().filter_map(|a| Some((a, in_repo(a, &copied)?))) {
            assert!(
                host.exists(),
                "{what} reads {a}, but the repository has no {host:?}"
            );
        }
        assert_eq!(
            svc["environment"]["NATS_URL"].as_str(),
            Some("nats://nats:4222"),
            "service `{name}` must reach the bus with NATS_URL=nats://nats:4222"
        );
    }
}

#[test]
fn every_health_check_of_our_image_is_an_spm_stack_probe_of_its_own_service() {
    let Some(doc) = compose() else { return };
    let bins = package_bins();
    for (name, svc) in our_services(doc) {
        let what = format!("service `{name}`'s health check");
        if svc["healthcheck"].is_null() {
            assert_eq!(
                name, "replay",
                "{what} is missing (only the replay job may go without)"
            );
            continue;
        }
        let test = argv(&svc["healthcheck"]["test"], &what);
        let Some(("CMD", probe)) = test.split_first().map(|(c, p)| (c.as_str(), p)) else {
            panic!(
                "{what} must be exec form [\"CMD\", ...], not {test:?}: our image has no curl \
                 or wget, and a shell form hides which program runs"
            )
        };
        assert!(
            probe.starts_with(&["spm-stack".to_owned(), "probe".to_owned()]),
            "{what} must run `spm-stack probe`, not {probe:?}"
        );
        assert_parses(probe, &bins, &what);
        let program = &argv(&svc["command"], &what)[0];
        if let Some(client) = flag(probe, "--client") {
            assert_eq!(
                client, program,
                "{what} watches NATS client `{client}`, but runs `{program}`"
            );
            assert_eq!(
                flag(probe, "--monitor"),
                Some("http://nats:8222"),
                "{what} must ask the nats service's monitoring port"
            );
        } else {
            let url = flag(probe, "--http");
            let url = url
                .unwrap_or_else(|| panic!("{what} probes neither --http nor --client: {probe:?}"));
            assert!(
                url.starts_with("http://localhost:") || url.starts_with("http://127.0.0.1:"),
                "{what} must ask the container itself, not {url}"
            );
        }
    }
}

#[test]
fn gateway_listens_on_every_interface_in_its_container_and_is_published_on_host_loopback_only() {
    let Some(doc) = compose() else { return };
    let gw = service(doc, "gateway");
    let cmd = argv(&gw["command"], "service `gateway`'s command");
    assert_eq!(
        flag(&cmd, "--bind"),
        Some("0.0.0.0"),
        "spm-gateway binds 127.0.0.1 by default: inside a container it needs --bind 0.0.0.0"
    );
    let port = flag(&cmd, "--port").or(gw["environment"]["GATEWAY_PORT"].as_str());
    let port = port.unwrap_or("8000");
    let ports = gw["ports"].as_array().filter(|p| !p.is_empty());
    for p in ports.expect("the gateway publishes no port") {
        // `docker-compose config` writes a port with a host IP as `IP:PUBLISHED:TARGET/tcp`,
        // one without as a mapping.
        let host_ip = p.as_str().filter(|p| p.starts_with("127.0.0.1:"));
        let p = host_ip.unwrap_or_else(|| {
            panic!("the gateway port {p} must be published on the host's 127.0.0.1 only")
        });
        let inside = p.rsplit(':').next().unwrap().trim_end_matches("/tcp");
        assert_eq!(
            inside, port,
            "{p} publishes container port {inside}, but the gateway is on {port}"
        );
    }
    let check = argv(&gw["healthcheck"]["test"], "the gateway's health check");
    let url = check.last().unwrap();
    assert!(
        url.contains(&format!(":{port}/")),
        "the gateway's health check asks {url}, but the gateway listens on port {port}"
    );
}

#[test]
fn lake_writes_to_the_minio_bucket_the_init_service_creates_before_it_starts() {
    let Some(doc) = compose() else { return };
    let lake = service(doc, "lake");
    let var = |k: &str| {
        let v = lake["environment"][k].as_str();
        v.unwrap_or_else(|| panic!("service `lake` does not set {k}"))
    };
    assert_eq!(
        var("S3_ENDPOINT"),
        "http://minio:9000",
        "the lake must write to the minio service"
    );
    var("S3_REGION");
    let bucket = var("S3_BUCKET");
    let cmd = argv(&lake["command"], "service `lake`'s command");
    let root = flag(&cmd, "--root").or(lake["environment"]["SPM_LAKE_ROOT"].as_str());
    let root = root.map_or_else(|| format!("s3://{bucket}"), str::to_owned);
    assert_eq!(
        root.strip_prefix("s3://").and_then(|r| r.split('/').next()),
        Some(bucket),
        "the lake's root {root} is not in S3_BUCKET={bucket} (spm-lake refuses that)"
    );
    let minio = &service(doc, "minio")["environment"];
    for (theirs, ours) in [
        ("MINIO_ROOT_USER", "S3_ACCESS_KEY"),
        ("MINIO_ROOT_PASSWORD", "S3_SECRET_KEY"),
    ] {
        assert_eq!(
            minio[theirs].as_str(),
            Some(var(ours)),
            "the lake's {ours} is not MinIO's {theirs}"
        );
    }

    let init = service(doc, BUCKET_INIT);
    let mb = argv(&init["command"], BUCKET_INIT);
    assert!(
        mb.first().map(String::as_str) == Some("mb") && mb.iter().any(|a| a == "--ignore-existing"),
        "`{BUCKET_INIT}` must run `mc mb --ignore-existing ALIAS/BUCKET`, not {mb:?}"
    );
    let made = mb.last().unwrap();
    assert!(
        made.ends_with(&format!("/{bucket}")),
        "`{BUCKET_INIT}` creates {made}, not the lake's bucket {bucket}"
    );
    assert_eq!(
        lake["depends_on"][BUCKET_INIT]["condition"].as_str(),
        Some("service_completed_successfully"),
        "the lake must wait for `{BUCKET_INIT}` to complete successfully"
    );
    assert_eq!(
        init["depends_on"]["minio"]["condition"].as_str(),
        Some("service_healthy"),
        "`{BUCKET_INIT}` must wait for MinIO to be healthy"
    );
}

#[test]
fn replay_publishes_every_bundled_sample_file_onto_nats() {
    let Some(doc) = compose() else { return };
    let what = "service `replay`'s command";
    let cmd = argv(&service(doc, "replay")["command"], what);
    assert_eq!(
        flag(&cmd, "--output"),
        Some("nats"),
        "{what} must publish with --output nats (a container's stdout is not a terminal)"
    );
    let copied = copied_dirs();
    let read: BTreeSet<PathBuf> = cmd.iter().filter_map(|a| in_repo(a, &copied)).collect();
    let sample = std::fs::read_dir(repo().join("testdata")).expect("testdata");
    let sample: BTreeSet<PathBuf> = (sample.map(|e| e.unwrap().path()))
        .filter(|p| p.to_string_lossy().ends_with(".dbn.zst"))
        .collect();
    assert!(!sample.is_empty(), "testdata/ holds no .dbn.zst files");
    let missing: Vec<_> = sample.difference(&read).collect();
    assert!(
        missing.is_empty(),
        "{what} does not replay {missing:?} (compose does not glob: list every file)"
    );
}

#[test]
fn services_restart_unless_stopped_and_the_replay_job_on_failure() {
    let Some(doc) = compose() else { return };
    for (name, svc) in services(doc) {
        let want = match name.as_str() {
            "replay" => "on-failure",
            // The live feed reconnects by itself and exits only on an error a restart cannot
            // fix (a refused key): restarting it would only repeat the refusal.
            "ingest" => "no",
            BUCKET_INIT => continue,
            _ => "unless-stopped",
        };
        assert_eq!(
            svc["restart"].as_str(),
            Some(want),
            "service `{name}` must restart `{want}`"
        );
    }
}

#[test]
fn nats_image_is_the_pinned_server_version_in_its_alpine_variant() {
    let Some(doc) = compose() else { return };
    let out = Command::new(repo().join("scripts/nats-server"))
        .arg("--pinned-version")
        .output()
        .expect("run scripts/nats-server --pinned-version");
    assert!(
        out.status.success(),
        "scripts/nats-server --pinned-version fails"
    );
    let pinned = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let nats = service(doc, "nats");
    let image = nats["image"].as_str().expect("service `nats` has no image");
    let tag = image.strip_prefix("nats:");
    let tag = tag.unwrap_or_else(|| panic!("the nats service runs {image}, not the nats image"));
    let (version, variant) = tag.split_once('-').unwrap_or((tag, ""));
    assert_eq!(
        version, pinned,
        "the nats image is {image}, but scripts/nats-server pins nats-server {pinned}"
    );
    assert_eq!(
        variant, "alpine",
        "the nats image {image} must be the -alpine variant: its health check runs wget"
    );
    let cmd = argv(&nats["command"], "the nats service's command");
    assert!(
        cmd.iter().any(|a| a == "-js"),
        "the nats service must enable JetStream (-js): {cmd:?}"
    );
}

#[test]
fn every_third_party_image_is_pinned_to_a_release() {
    let Some(doc) = compose() else { return };
    let third_party = services(doc)
        .iter()
        .filter(|(_, s)| s.get("build").is_none());
    for (name, svc) in third_party {
        let image = svc["image"].as_str();
        let image = image.unwrap_or_else(|| panic!("service `{name}` has no image"));
        let tag = image.rsplit_once(':').map_or("", |(_, t)| t);
        assert!(
            !tag.is_empty() && tag != "latest" && !tag.contains('/'),
            "service `{name}` runs {image}: pin a release tag"
        );
        assert!(
            !image.starts_with("minio/") || tag.starts_with("RELEASE."),
            "service `{name}` runs {image}: pin MinIO images by RELEASE.* tag"
        );
    }
}

#[test]
fn dockerfile_copies_every_binary_under_src_bin_into_the_image() {
    let bins = package_bins();
    let mut copied = BTreeSet::new();
    let from_stage = copies()
        .into_iter()
        .filter(|c| c.final_stage && c.from.is_some());
    for c in from_stage.filter(|c| c.dest == "/usr/local/bin") {
        for s in &c.srcs {
            assert!(
                s.contains("/target/release/"),
                "the Dockerfile copies {s} into /usr/local/bin: not a release build"
            );
            copied.insert(s.rsplit('/').next().unwrap().to_owned());
        }
    }
    let missing: Vec<_> = bins.difference(&copied).collect();
    assert!(
        missing.is_empty(),
        "the Dockerfile does not copy {missing:?} into /usr/local/bin (every src/bin binary \
         belongs in the image)"
    );
    let stale: Vec<_> = copied.difference(&bins).collect();
    assert!(
        stale.is_empty(),
        "the Dockerfile copies {stale:?}, which src/bin does not build"
    );
    let cargo =
        |i: &Vec<String>| i[0].eq_ignore_ascii_case("RUN") && i.iter().any(|a| a == "cargo");
    let (_, build) = dockerfile()
        .into_iter()
        .find(|(_, i)| cargo(i))
        .expect("no `RUN cargo`");
    for want in ["build", "--release", "--locked"] {
        assert!(
            build.contains(&want.to_owned()),
            "the Dockerfile's cargo command lacks {want}: {}",
            build.join(" ")
        );
    }
}

#[test]
fn dockerignore_keeps_everything_the_dockerfile_copies_from_the_repository() {
    let ignore = read(".dockerignore");
    let patterns: Vec<&str> = (ignore.lines().map(str::trim))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // The last pattern that matches decides; `!` keeps what an earlier one left out.
    let excluded = |path: &str| {
        let mut out = false;
        for p in &patterns {
            let (keep, p) = p.strip_prefix('!').map_or((false, *p), |rest| (true, rest));
            let p = p.trim_end_matches('/');
            assert!(
                p == "*" || !p.contains(['*', '?', '[']),
                ".dockerignore pattern {p:?}: this test understands `*` alone and plain paths"
            );
            if p == "*" || path == p || path.starts_with(&format!("{p}/")) {
                out = !keep;
            }
        }
        out
    };
    for c in copies().into_iter().filter(|c| c.from.is_none()) {
        for src in c.srcs.iter().map(|s| s.trim_end_matches('/')) {
            assert!(
                !excluded(src),
                ".dockerignore leaves out {src}, but the Dockerfile copies it"
            );
            assert!(
                repo().join(src).exists(),
                "the Dockerfile copies {src}, which the repository does not have"
            );
        }
    }
    for heavy in ["target", ".git", "lake", ".spm"] {
        assert!(excluded(heavy), ".dockerignore must leave {heavy} out");
    }
}

#[test]
fn the_cluster_profile_runs_three_routed_nodes_of_the_pinned_server() {
    let Some(doc) = compose() else { return };
    let single = service(doc, "nats")["image"].as_str().map(str::to_owned);
    let nodes = ["nats-1", "nats-2", "nats-3"];
    for node in nodes {
        let svc = service(doc, node);
        assert_eq!(
            svc["profiles"],
            serde_json::json!(["cluster"]),
            "`{node}` runs only in the `cluster` profile"
        );
        assert_eq!(
            svc["image"].as_str().map(str::to_owned),
            single,
            "`{node}` runs the same pinned image as `nats`"
        );
        let cmd = argv(&svc["command"], &format!("`{node}`'s command"));
        assert_eq!(flag(&cmd, "--server_name"), Some(node));
        assert!(cmd.iter().any(|a| a == "-js"), "`{node}` enables JetStream");
        let routes = flag(&cmd, "--routes").unwrap_or_default();
        for other in nodes {
            assert!(
                routes.contains(&format!("nats://{other}:6222")),
                "`{node}` routes to `{other}`: {routes}"
            );
        }
    }
}
