//! `[media]`: where uploaded files live (`crate::media`) and what is accepted.
//!
//! Owns the keys and their checks only; the storage backends read them when the node starts.
//! Kept apart from `config.rs` because media has its own backend choice (a directory or an
//! S3-compatible store) that has to agree with the store backend: a directory that only one
//! node sees cannot serve the uploads of a cluster.

use serde::{Deserialize, Serialize};

/// Where media objects are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaBackend {
    /// A local directory (`media.dir`): the default, for one node (or a shared mount).
    Fs,
    /// Any S3-compatible object store (`media.s3`).
    S3,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    pub backend: MediaBackend,
    /// The directory of the `fs` backend (created when missing).
    pub dir: String,
    /// Declares `dir` shared by every node (NFS, a cluster file system); required for `fs`
    /// with the Redis store backend, where several nodes serve the same uploads.
    pub shared: bool,
    /// How long a signed download URL stays valid.
    pub url_ttl_secs: u64,
    /// Largest accepted upload per kind, in bytes.
    pub max_image_bytes: u64,
    pub max_audio_bytes: u64,
    pub max_video_bytes: u64,
    pub max_file_bytes: u64,
    /// Most bytes of stored media attached to one outbound email; medias past it go as links.
    pub email_attachment_max_bytes: u64,
    /// Attempts of the inbound re-hosting job before a provider media is given up.
    pub rehost_attempts: u32,
    pub s3: S3Config,
}

/// An S3-compatible store, reached through the `object_store` crate.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// e.g. `https://s3.eu-west-1.amazonaws.com` or a MinIO/Ceph URL; empty = AWS's default.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Path-style URLs (`endpoint/bucket/key`), as most self-hosted stores want.
    pub path_style: bool,
    /// Object key prefix inside the bucket.
    pub prefix: String,
}

impl MediaConfig {
    /// Problems of `[media]`; `redis_store` tells whether several nodes may serve it.
    pub fn validate(&self, redis_store: bool, errs: &mut Vec<String>) {
        match self.backend {
            MediaBackend::Fs => {
                if self.dir.trim().is_empty() {
                    errs.push("media.dir: must name a directory for backend = \"fs\"".into());
                }
                if redis_store && !self.shared {
                    errs.push(
                        "media.backend: \"fs\" keeps uploads on this node's disk, but store.backend = \"redis\" \
                         runs several nodes; use backend = \"s3\", or set media.shared = true if media.dir is \
                         shared by every node"
                            .into(),
                    );
                }
            }
            MediaBackend::S3 => {
                if self.s3.bucket.trim().is_empty() {
                    errs.push("media.s3.bucket: required with media.backend = \"s3\"".into());
                }
                let e = &self.s3.endpoint;
                if !(e.is_empty() || e.starts_with("http://") || e.starts_with("https://")) {
                    errs.push(format!("media.s3.endpoint: `{e}` must start with http:// or https://"));
                }
            }
        }
        if self.url_ttl_secs == 0 {
            errs.push("media.url_ttl_secs: must be greater than 0".into());
        }
        for (name, v) in [
            ("media.max_image_bytes", self.max_image_bytes),
            ("media.max_audio_bytes", self.max_audio_bytes),
            ("media.max_video_bytes", self.max_video_bytes),
            ("media.max_file_bytes", self.max_file_bytes),
        ] {
            if v == 0 {
                errs.push(format!("{name}: must be greater than 0"));
            }
        }
        if self.rehost_attempts == 0 {
            errs.push("media.rehost_attempts: must be at least 1".into());
        }
    }
}
