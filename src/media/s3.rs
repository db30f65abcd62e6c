//! [`Storage`] on any S3-compatible store (AWS S3, MinIO, Ceph, moto…) through the
//! `object_store` crate, for deployments with several nodes.
//!
//! Writes are multipart uploads fed chunk by chunk (`WriteMultipart`: at most a few 5 MiB
//! parts in flight), so an upload is never held whole in memory; an aborted write aborts the
//! multipart upload, leaving no object. Reads ask the store for the byte range wanted.

use super::{ByteStream, Storage};
use crate::config::S3Config;
use crate::error::{Error, Result};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, WriteMultipart};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct S3Storage {
    store: Arc<AmazonS3>,
    prefix: String,
}

/// Parts in flight while an upload streams in.
const MAX_PARTS_IN_FLIGHT: usize = 2;

fn store_error(e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound("media"),
        e => Error::unavailable_from("the media store did not answer", e),
    }
}

impl S3Storage {
    pub fn new(c: &S3Config) -> anyhow::Result<S3Storage> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&c.bucket)
            .with_region(&c.region)
            .with_virtual_hosted_style_request(!c.path_style);
        if !c.endpoint.is_empty() {
            b = b.with_endpoint(&c.endpoint).with_allow_http(c.endpoint.starts_with("http://"));
        }
        if !c.access_key_id.is_empty() {
            b = b.with_access_key_id(&c.access_key_id).with_secret_access_key(&c.secret_access_key);
        }
        let store = b.build().map_err(|e| anyhow::anyhow!("media.s3: {e}"))?;
        Ok(S3Storage { store: Arc::new(store), prefix: c.prefix.trim_matches('/').to_string() })
    }

    fn path(&self, key: &str) -> Path {
        if self.prefix.is_empty() { Path::from(key) } else { Path::from(format!("{}/{key}", self.prefix)) }
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64> {
        let upload = self.store.put_multipart(&self.path(key)).await.map_err(store_error)?;
        let mut w = WriteMultipart::new(upload);
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(Error::bad_request(format!("upload interrupted: {e}")));
                }
            };
            if let Err(e) = w.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await {
                return Err(store_error(e));
            }
            n += chunk.len() as u64;
            w.write(&chunk);
        }
        w.finish().await.map_err(store_error)?;
        Ok(n)
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream> {
        let opts = GetOptions { range: range.map(|(a, b)| GetRange::Bounded(a..b)), ..Default::default() };
        let res = self.store.get_opts(&self.path(key), opts).await.map_err(store_error)?;
        Ok(res.into_stream().map_err(std::io::Error::other).boxed())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }
}
