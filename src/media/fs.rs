//! [`Storage`] in a local directory: the default backend, for one node (or a directory every
//! node mounts, `media.shared`).
//!
//! A write goes to `<dir>/.tmp/<random>` chunk by chunk and is renamed into place only once
//! complete, so a reader never sees half an object and an aborted upload leaves nothing under
//! its key. Keys are checked to be plain relative paths (`<tenant>/<id>[.thumb]`): nothing a
//! caller sends ever becomes a path.

use super::{ByteStream, Storage};
use crate::error::{Error, Result};
use async_trait::async_trait;
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

#[derive(Debug, Clone)]
pub struct FsStorage {
    dir: PathBuf,
}

impl FsStorage {
    /// Creates `dir` (and its temp folder) when missing.
    pub fn new(dir: &str) -> anyhow::Result<FsStorage> {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(dir.join(".tmp"))
            .map_err(|e| anyhow::anyhow!("media.dir {}: cannot create it: {e}", dir.display()))?;
        Ok(FsStorage { dir })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        let ok = !key.is_empty()
            && key.split('/').all(|p| !p.is_empty() && p != "." && p != ".." && !p.starts_with('.'))
            && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '.' | '_'));
        if !ok {
            return Err(Error::internal(format!("bad media key {key:?}")));
        }
        Ok(self.dir.join(key))
    }
}

fn io(e: std::io::Error) -> Error {
    Error::internal_from("media storage", e)
}

async fn write_all(path: &Path, mut body: ByteStream) -> Result<u64> {
    let mut f = tokio::fs::File::create(path).await.map_err(io)?;
    let mut n = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::bad_request(format!("upload interrupted: {e}")))?;
        n += chunk.len() as u64;
        f.write_all(&chunk).await.map_err(io)?;
    }
    f.flush().await.map_err(io)?;
    f.sync_all().await.map_err(io)?;
    Ok(n)
}

#[async_trait]
impl Storage for FsStorage {
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64> {
        let target = self.path(key)?;
        let tmp = self.dir.join(".tmp").join(uuid::Uuid::new_v4().to_string());
        match write_all(&tmp, body).await {
            Ok(n) => {
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent).await.map_err(io)?;
                }
                tokio::fs::rename(&tmp, &target).await.map_err(io)?;
                Ok(n)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream> {
        let mut f = match tokio::fs::File::open(self.path(key)?).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound("media")),
            Err(e) => return Err(io(e)),
        };
        let stream = match range {
            Some((start, end)) => {
                f.seek(std::io::SeekFrom::Start(start)).await.map_err(io)?;
                tokio_util::io::ReaderStream::new(f.take(end.saturating_sub(start))).boxed()
            }
            None => tokio_util::io::ReaderStream::new(f).boxed(),
        };
        Ok(stream)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }
}
