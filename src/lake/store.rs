//! The lake's root: a local directory or `s3://bucket/prefix`, behind one `object_store` path.
//!
//! Every read and write of the lake goes through [`Lake::put`], [`Lake::get`],
//! [`Lake::get_range`], [`Lake::delete`] and [`Lake::list`], with paths relative to the root, so
//! a local lake and an S3 lake run the same code.
//!
//! - **Local**: a directory, created if missing. A write is durable when [`Lake::put`] returns: a
//!   staged file, fsync, rename and an fsync of the directory (`LocalFileSystem::with_fsync`). A
//!   SIGKILL in the middle of a put can leave the staging file (`name#N`) behind; [`Lake::open`]
//!   sweeps such leftovers, which some readers would otherwise trip over — only when no other
//!   process has the lake open (every handle holds a shared `flock` on [`LOCK_FILE`], and the
//!   sweep needs it exclusively), so a writer starting never removes a running one's put.
//! - **S3** (AWS, MinIO, any S3-compatible server): `s3://bucket/prefix`, path-style requests, the
//!   prefix applied by a `PrefixStore` (so listed paths are relative to the root, as locally). A
//!   write is one PUT and is durable when the server has answered it; a killed writer leaves no
//!   partial object, so there is nothing to sweep. [`Lake::open`] first checks, with short
//!   timeouts and a single retry, that the endpoint answers and the bucket exists, so a wrong
//!   endpoint fails in seconds; later requests get `object_store`'s usual retries.
//!
//! Which root a [`StoreConfig`] names: an `s3://` root is S3 (its bucket must agree with
//! `s3_bucket` when both are given); any other root is a local directory, and giving a bucket
//! with a local root is an error rather than a silent local lake. [`StoreConfig::default_root`]
//! is what a command uses when no root is given: the bucket's root when a bucket is set, else
//! `./lake`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use super::LakeError;

/// The root used when none is given and no S3 bucket is set.
pub const DEFAULT_LOCAL_ROOT: &str = "./lake";
/// The S3 region used when none is given.
pub const DEFAULT_S3_REGION: &str = "us-east-1";

/// Where the lake lives. `StoreConfig::local(dir)` for a local directory; the S3 settings only
/// matter for an `s3://` root.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoreConfig {
    /// A local directory, or `s3://bucket/prefix`.
    pub root: String,
    /// The S3 endpoint, e.g. `http://127.0.0.1:9000` (plain HTTP is allowed); default: AWS's
    /// endpoint for the region.
    pub s3_endpoint: Option<String>,
    /// The bucket: when given with an `s3://` root, it must be the root's.
    pub s3_bucket: Option<String>,
    pub s3_access_key: Option<String>,
    pub s3_secret_key: Option<String>,
    /// Default [`DEFAULT_S3_REGION`].
    pub s3_region: Option<String>,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("root", &self.root)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_access_key", &self.s3_access_key)
            .field(
                "s3_secret_key",
                &self.s3_secret_key.as_ref().map(|_| "<hidden>"),
            )
            .field("s3_region", &self.s3_region)
            .finish()
    }
}

impl StoreConfig {
    /// A root with no S3 settings (a local directory, or an `s3://` root that will then lack
    /// credentials).
    pub fn local(root: impl Into<String>) -> StoreConfig {
        StoreConfig {
            root: root.into(),
            ..StoreConfig::default()
        }
    }

    /// The root a command uses when none is given: `s3://{bucket}` (the bucket's root) when a
    /// bucket is set, else [`DEFAULT_LOCAL_ROOT`].
    pub fn default_root(bucket: Option<&str>) -> String {
        match bucket {
            Some(b) => format!("s3://{b}"),
            None => DEFAULT_LOCAL_ROOT.to_string(),
        }
    }

    fn err(&self, message: impl Into<String>) -> LakeError {
        LakeError::Root {
            root: self.root.clone(),
            message: message.into(),
        }
    }

    /// Parses the root and the S3 settings into where the lake is.
    fn location(&self) -> Result<Location, LakeError> {
        let Some(rest) = self.root.strip_prefix("s3://") else {
            if let Some(bucket) = &self.s3_bucket {
                return Err(self.err(format!(
                    "is a local directory, but an S3 bucket is set (--s3-bucket / S3_BUCKET = \
                     {bucket}): give --root s3://{bucket}/PREFIX for S3, or unset the bucket for \
                     a local lake"
                )));
            }
            if self.root.is_empty() {
                return Err(self.err("is empty"));
            }
            return Ok(Location::Local(self.root.clone()));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket).map_err(|m| self.err(m))?;
        if let Some(b) = &self.s3_bucket
            && b != bucket
        {
            return Err(self.err(format!(
                "names bucket {bucket}, but the S3 bucket set (--s3-bucket / S3_BUCKET) is {b}"
            )));
        }
        let prefix = prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() {
            None
        } else {
            Some(Path::parse(prefix).map_err(|e| self.err(format!("bad prefix {prefix:?}: {e}")))?)
        };
        let endpoint = match self.s3_endpoint.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) if e.starts_with("http://") || e.starts_with("https://") => {
                Some(e.trim_end_matches('/').to_string())
            }
            Some(e) => {
                return Err(self.err(format!(
                    "the S3 endpoint {e:?} is not an http:// or https:// URL"
                )));
            }
        };
        let key = |v: &Option<String>, what: &str| match v.as_deref() {
            Some(k) if !k.is_empty() => Ok(k.to_string()),
            _ => Err(self.err(format!(
                "an S3 root needs {what} (--s3-{flag} / S3_{env})",
                flag = what.replace(' ', "-"),
                env = what.replace(' ', "_").to_uppercase()
            ))),
        };
        Ok(Location::S3(S3Target {
            bucket: bucket.to_string(),
            prefix,
            endpoint,
            region: self
                .s3_region
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| DEFAULT_S3_REGION.to_string()),
            access_key: key(&self.s3_access_key, "access key")?,
            secret_key: key(&self.s3_secret_key, "secret key")?,
        }))
    }
}

/// S3's bucket naming rules, loosely: 3–63 of lower-case letters, digits, `.` and `-`.
fn check_bucket(bucket: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !bucket.starts_with(['.', '-'])
        && !bucket.ends_with(['.', '-']);
    if ok {
        Ok(())
    } else if bucket.is_empty() {
        Err("names no bucket: give s3://BUCKET or s3://BUCKET/PREFIX".into())
    } else {
        Err(format!(
            "bucket {bucket:?} is not a valid S3 bucket name (3 to 63 lower-case letters, digits, \
             '.' and '-')"
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Local(String),
    S3(S3Target),
}

#[derive(Clone, PartialEq, Eq)]
struct S3Target {
    bucket: String,
    prefix: Option<Path>,
    endpoint: Option<String>,
    region: String,
    access_key: String,
    secret_key: String,
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// How long the start-up check waits for an S3 endpoint before calling it unreachable.
const S3_CHECK_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const S3_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// A request (a PUT of tens of MB included) after the check.
const S3_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

impl S3Target {
    /// `endpoint http://… (bucket b)`, for messages.
    fn describe(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("S3 endpoint {e}, bucket {}", self.bucket),
            None => format!("AWS S3 (region {}), bucket {}", self.region, self.bucket),
        }
    }

    /// A client for this bucket and prefix; `check` gives one that fails fast (short timeouts,
    /// one retry) for the start-up check.
    fn store(&self, check: bool) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
        let http = self
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let mut options = ClientOptions::new().with_allow_http(http);
        let mut retry = RetryConfig::default();
        if check {
            options = options
                .with_connect_timeout(S3_CHECK_CONNECT_TIMEOUT)
                .with_timeout(S3_CHECK_TIMEOUT);
            retry.max_retries = 1;
            retry.retry_timeout = S3_CHECK_TIMEOUT;
        } else {
            options = options.with_timeout(S3_REQUEST_TIMEOUT);
        }
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .with_virtual_hosted_style_request(false)
            .with_client_options(options)
            .with_retry(retry);
        if let Some(e) = &self.endpoint {
            builder = builder.with_endpoint(e);
        }
        let s3 = builder.build()?;
        Ok(match &self.prefix {
            Some(p) => Arc::new(PrefixStore::new(s3, p.clone())),
            None => Arc::new(s3),
        })
    }
}

/// Why the start-up check failed, in words first, then `object_store`'s error (its first line,
/// without the XML body a server may have sent).
fn check_failure(e: &object_store::Error) -> String {
    let text = e.to_string();
    let why = if text.contains("NoSuchBucket") {
        "the bucket does not exist"
    } else if text.contains("error sending request") {
        "the endpoint does not answer"
    } else if [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "403",
    ]
    .iter()
    .any(|k| text.contains(k))
    {
        "the credentials are refused"
    } else {
        "the bucket cannot be listed"
    };
    let detail = text.split("<?xml").next().unwrap_or_default().trim_end();
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| format!(" ({code})"))
        .unwrap_or_default();
    format!("{why}: {detail}{code}")
}

/// One object of the lake, by its path under the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub path: String,
    pub size: u64,
}

/// An open lake root.
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    /// A local root's [`LOCK_FILE`], held shared while the lake is open.
    _open: Option<Arc<std::fs::File>>,
    root: String,
    /// For S3, what [`Lake::reopen`] needs to build a client of its own.
    s3: Option<S3Target>,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake").field("root", &self.root).finish()
    }
}

fn new_runtime() -> Result<tokio::runtime::Runtime, LakeError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LakeError::Runtime)
}

impl Lake {
    /// Opens the root for reading and writing. A local root is created if missing and swept of
    /// staging files a killed writer left behind; an S3 root is checked to answer (endpoint
    /// reachable, bucket there, credentials accepted), failing within seconds if not.
    pub fn open(cfg: &StoreConfig) -> Result<Lake, LakeError> {
        let root = cfg.root.clone();
        let err = |message: String| LakeError::Root {
            root: root.clone(),
            message,
        };
        match cfg.location()? {
            Location::Local(dir) => {
                std::fs::create_dir_all(&dir).map_err(|e| err(format!("cannot create it: {e}")))?;
                // A read-only lake (a reader's) has no lock to take, and nothing to sweep.
                let open = open_lock(std::path::Path::new(&dir))
                    .inspect_err(|e| tracing::debug!("{dir}: no lock taken ({e}), no sweep"))
                    .ok();
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| err(e.to_string()))?
                    .with_fsync(true)
                    .with_automatic_cleanup(true);
                Ok(Lake {
                    store: Arc::new(fs),
                    _open: open.map(Arc::new),
                    root,
                    s3: None,
                    runtime: new_runtime()?,
                })
            }
            Location::S3(target) => {
                let runtime = new_runtime()?;
                let unusable =
                    |e: object_store::Error| err(format!("{}: {}", target.describe(), e));
                let check = target.store(true).map_err(unusable)?;
                runtime
                    .block_on(check.list_with_delimiter(None))
                    .map_err(|e| err(format!("{}: {}", target.describe(), check_failure(&e))))?;
                drop(check);
                let store = target.store(false).map_err(unusable)?;
                Ok(Lake {
                    store,
                    _open: None,
                    root,
                    s3: Some(target),
                    runtime,
                })
            }
        }
    }

    /// Opens the root and proves it writable (a probe object written and removed), so that a
    /// writer fails at start rather than at its first flush.
    pub fn open_for_write(cfg: &StoreConfig) -> Result<Lake, LakeError> {
        let lake = Lake::open(cfg)?;
        let probe = format!("_spm_probe_{}", std::process::id());
        lake.put(&probe, Bytes::from_static(b"probe"))
            .and_then(|()| lake.delete(&probe))
            .map_err(|e| LakeError::Root {
                root: lake.root.clone(),
                message: format!("not writable: {e}"),
            })?;
        Ok(lake)
    }

    /// Another handle on the same root, with its own I/O runtime (one per writer thread); no
    /// sweep, no probe. An S3 handle also gets its own HTTP client, whose connections live on
    /// that runtime.
    pub fn reopen(&self) -> Result<Lake, LakeError> {
        let store = match &self.s3 {
            None => self.store.clone(),
            Some(target) => target.store(false).map_err(|e| LakeError::Root {
                root: self.root.clone(),
                message: format!("{}: {e}", target.describe()),
            })?,
        };
        Ok(Lake {
            store,
            _open: self._open.clone(),
            root: self.root.clone(),
            s3: self.s3.clone(),
            runtime: new_runtime()?,
        })
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// Whether the root is on S3.
    pub fn is_s3(&self) -> bool {
        self.s3.is_some()
    }

    /// The store, paths relative to the root. Drive it on [`Lake::runtime`]: an S3 client's
    /// connections belong to that runtime.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    fn path(&self, rel: &str) -> Result<Path, LakeError> {
        Path::parse(rel).map_err(|e| LakeError::Root {
            root: self.root.clone(),
            message: format!("bad object path {rel}: {e}"),
        })
    }

    fn store_err(&self, rel: &str) -> impl Fn(object_store::Error) -> LakeError + '_ {
        let path = format!("{}/{rel}", self.root.trim_end_matches('/'));
        move |source| LakeError::Store {
            path: path.clone(),
            source,
        }
    }

    /// Writes an object durably (replacing one of the same name).
    pub fn put(&self, rel: &str, bytes: Bytes) -> Result<(), LakeError> {
        let path = self.path(rel)?;
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from_bytes(bytes)))
            .map(|_| ())
            .map_err(self.store_err(rel))
    }

    pub fn get(&self, rel: &str) -> Result<Bytes, LakeError> {
        let path = self.path(rel)?;
        self.runtime
            .block_on(async { self.store.get(&path).await?.bytes().await })
            .map_err(self.store_err(rel))
    }

    pub fn get_range(&self, rel: &str, range: std::ops::Range<u64>) -> Result<Bytes, LakeError> {
        let path = self.path(rel)?;
        self.runtime
            .block_on(self.store.get_range(&path, range))
            .map_err(self.store_err(rel))
    }

    pub fn delete(&self, rel: &str) -> Result<(), LakeError> {
        let path = self.path(rel)?;
        self.runtime
            .block_on(self.store.delete(&path))
            .map_err(self.store_err(rel))
    }

    /// Every object under `prefix` (a path under the root, e.g. `bronze/futures/mbp10`), sorted
    /// by path. A missing prefix lists nothing.
    pub fn list(&self, prefix: &str) -> Result<Vec<Object>, LakeError> {
        let path = self.path(prefix)?;
        let mut objects: Vec<Object> = self
            .runtime
            .block_on(self.store.list(Some(&path)).try_collect::<Vec<_>>())
            .map_err(self.store_err(prefix))?
            .into_iter()
            .map(|m| Object {
                path: m.location.to_string(),
                size: m.size,
            })
            .collect();
        objects.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(objects)
    }
}

/// The file under a local root that every open handle holds a shared lock on.
pub const LOCK_FILE: &str = ".spm-lake.lock";

/// Takes a shared lock on the root's [`LOCK_FILE`]; first, when no other process has the lake
/// open (the lock is free to take exclusively), sweeps the staging files killed writers left.
fn open_lock(dir: &std::path::Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => {
            let swept = sweep_staging(dir);
            file.unlock()?;
            swept?;
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::debug!(
                "the lake is open elsewhere: staging files are left for the last one to sweep"
            );
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    file.lock_shared()?;
    Ok(file)
}

/// Removes `name#N` staging files left by a killed local put, anywhere under `dir`.
fn sweep_staging(dir: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            sweep_staging(&path)?;
        } else if is_staging(&entry.file_name().to_string_lossy()) {
            tracing::warn!(file = %path.display(), "removing a staging file a killed writer left");
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn is_staging(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_put_are_listed_read_back_and_staging_leftovers_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lake");
        let cfg = StoreConfig::local(root.to_string_lossy());
        let lake = Lake::open_for_write(&cfg).unwrap();
        lake.put("bronze/t/a.parquet", Bytes::from_static(b"abc"))
            .unwrap();
        lake.put("bronze/t/b.parquet", Bytes::from_static(b"de"))
            .unwrap();
        assert_eq!(lake.list("bronze/none").unwrap(), vec![]);
        let listed = lake.list("bronze").unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].path, "bronze/t/b.parquet");
        assert_eq!(listed[1].size, 2);
        assert_eq!(&lake.get("bronze/t/a.parquet").unwrap()[..], b"abc");
        drop(lake);

        std::fs::write(root.join("bronze/t/c.parquet#12"), b"half").unwrap();
        let lake = Lake::open(&cfg).unwrap();
        assert_eq!(lake.list("bronze").unwrap().len(), 2);
        assert!(!root.join("bronze/t/c.parquet#12").exists());
        // While the lake is open, another process's put in progress is left alone.
        std::fs::write(root.join("bronze/t/d.parquet#13"), b"being written").unwrap();
        let other = std::fs::File::open(root.join(LOCK_FILE)).unwrap();
        other.lock_shared().unwrap();
        drop(lake);
        let lake = Lake::open(&cfg).unwrap();
        assert!(root.join("bronze/t/d.parquet#13").exists());
        drop((lake, other));
        drop(Lake::open(&cfg).unwrap());
        assert!(!root.join("bronze/t/d.parquet#13").exists());
        assert!(is_staging("x.parquet#3") && !is_staging("x#.parquet") && !is_staging("x"));
    }

    #[test]
    fn an_unwritable_root_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let cfg = StoreConfig::local(file.join("lake").to_string_lossy());
        let e = Lake::open_for_write(&cfg).unwrap_err().to_string();
        assert!(e.contains("cannot create it"), "{e}");
    }

    fn s3(root: &str) -> StoreConfig {
        StoreConfig {
            s3_endpoint: Some("http://127.0.0.1:9000/".into()),
            s3_access_key: Some("ak".into()),
            s3_secret_key: Some("sk".into()),
            ..StoreConfig::local(root)
        }
    }

    fn target(cfg: &StoreConfig) -> S3Target {
        match cfg.location().unwrap() {
            Location::S3(t) => t,
            other => panic!("not S3: {other:?}"),
        }
    }

    #[test]
    fn an_s3_root_names_the_bucket_and_the_prefix() {
        let t = target(&s3("s3://my-lake/runs/day1/"));
        assert_eq!(t.bucket, "my-lake");
        assert_eq!(t.prefix, Some(Path::from("runs/day1")));
        assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(t.region, DEFAULT_S3_REGION);
        assert_eq!((t.access_key.as_str(), t.secret_key.as_str()), ("ak", "sk"));
        assert_eq!(
            t.describe(),
            "S3 endpoint http://127.0.0.1:9000, bucket my-lake"
        );

        let t = target(&StoreConfig {
            s3_bucket: Some("my-lake".into()),
            s3_region: Some("eu-west-3".into()),
            s3_endpoint: None,
            ..s3("s3://my-lake")
        });
        assert_eq!(t.describe(), "AWS S3 (region eu-west-3), bucket my-lake");
        assert_eq!((t.prefix, t.endpoint), (None, None));
    }

    #[test]
    fn a_local_root_is_a_directory_unless_a_bucket_is_set() {
        let cfg = s3("./lake");
        assert_eq!(cfg.location().unwrap(), Location::Local("./lake".into()));
        let cfg = StoreConfig {
            s3_bucket: Some("b-1".into()),
            ..cfg
        };
        let e = cfg.location().unwrap_err().to_string();
        assert!(
            e.contains("lake root ./lake: is a local directory")
                && e.contains("S3_BUCKET = b-1")
                && e.contains("--root s3://b-1/PREFIX"),
            "{e}"
        );
        assert_eq!(StoreConfig::default_root(Some("b-1")), "s3://b-1");
        assert_eq!(StoreConfig::default_root(None), DEFAULT_LOCAL_ROOT);
        assert!(StoreConfig::local("").location().is_err());
    }

    #[test]
    fn bad_s3_settings_are_refused_with_what_to_fix() {
        let cases = [
            (s3("s3://"), "names no bucket"),
            (s3("s3:///prefix"), "names no bucket"),
            (s3("s3://Upper_Case/x"), "not a valid S3 bucket name"),
            (s3("s3://ab"), "not a valid S3 bucket name"),
            (s3("s3://bucket/a//b"), "bad prefix"),
            (
                StoreConfig {
                    s3_bucket: Some("other".into()),
                    ..s3("s3://bucket/x")
                },
                "names bucket bucket, but the S3 bucket set (--s3-bucket / S3_BUCKET) is other",
            ),
            (
                StoreConfig {
                    s3_endpoint: Some("127.0.0.1:9000".into()),
                    ..s3("s3://bucket")
                },
                "not an http:// or https:// URL",
            ),
            (
                StoreConfig {
                    s3_access_key: None,
                    ..s3("s3://bucket")
                },
                "needs access key (--s3-access-key / S3_ACCESS_KEY)",
            ),
            (
                StoreConfig {
                    s3_secret_key: Some(String::new()),
                    ..s3("s3://bucket")
                },
                "needs secret key (--s3-secret-key / S3_SECRET_KEY)",
            ),
        ];
        for (cfg, want) in cases {
            let e = cfg.location().unwrap_err().to_string();
            assert!(e.contains(want), "{cfg:?}: {e}");
        }
    }

    #[test]
    fn the_secret_key_is_not_in_debug_output() {
        let cfg = s3("s3://bucket");
        let shown = format!("{cfg:?} {:?}", target(&cfg));
        assert!(
            !shown.contains("\"sk\"") && shown.contains("<hidden>"),
            "{shown}"
        );
    }

    #[test]
    fn an_unreachable_s3_endpoint_fails_within_seconds_naming_endpoint_and_bucket() {
        // A loopback port nobody listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = StoreConfig {
            s3_endpoint: Some(format!("http://127.0.0.1:{port}")),
            ..s3("s3://nowhere/lake")
        };
        let t0 = std::time::Instant::now();
        let e = Lake::open_for_write(&cfg).unwrap_err().to_string();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert!(
            e.contains("lake root s3://nowhere/lake")
                && e.contains(&format!(
                    "S3 endpoint http://127.0.0.1:{port}, bucket nowhere"
                ))
                && e.contains("the endpoint does not answer"),
            "{e}"
        );
    }
}
