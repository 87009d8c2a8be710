//! The lake's root: a local directory or `s3://bucket/prefix`, behind one `object_store` path.
//!
//! Writes are durable when [`Lake::put`] returns: locally a staged file, fsync, rename and an
//! fsync of the directory (`LocalFileSystem::with_fsync`); on S3 a completed PUT. A SIGKILL in
//! the middle of a local put can leave the staging file (`name#N`) behind; [`Lake::open`] sweeps
//! such leftovers, which some readers would otherwise trip over.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::LakeError;

/// Where the lake lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// A local directory, or `s3://bucket/prefix`.
    pub root: String,
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
    root: String,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake").field("root", &self.root).finish()
    }
}

impl Lake {
    /// Opens the root for reading and writing; a local root is created if missing and swept of
    /// staging files a killed writer left behind.
    pub fn open(cfg: &StoreConfig) -> Result<Lake, LakeError> {
        let root = cfg.root.clone();
        let err = |message: String| LakeError::Root {
            root: root.clone(),
            message,
        };
        if root.starts_with("s3://") {
            return Err(err("S3 roots are not available in this build yet".into()));
        }
        std::fs::create_dir_all(&root).map_err(|e| err(format!("cannot create it: {e}")))?;
        sweep_staging(std::path::Path::new(&root)).map_err(|e| err(e.to_string()))?;
        let fs = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| err(e.to_string()))?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(LakeError::Runtime)?;
        Ok(Lake {
            store: Arc::new(fs),
            root,
            runtime,
        })
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
    /// sweep, no probe.
    pub fn reopen(&self) -> Result<Lake, LakeError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(LakeError::Runtime)?;
        Ok(Lake {
            store: self.store.clone(),
            root: self.root.clone(),
            runtime,
        })
    }

    pub fn root(&self) -> &str {
        &self.root
    }

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
        let cfg = StoreConfig {
            root: root.to_string_lossy().into_owned(),
        };
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
        assert!(is_staging("x.parquet#3") && !is_staging("x#.parquet") && !is_staging("x"));
    }

    #[test]
    fn an_unwritable_root_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let cfg = StoreConfig {
            root: file.join("lake").to_string_lossy().into_owned(),
        };
        let e = Lake::open_for_write(&cfg).unwrap_err().to_string();
        assert!(e.contains("cannot create it"), "{e}");
    }
}
