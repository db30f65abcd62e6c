//! Copying inbound provider media into storage (placeholder until the re-hosting job lands).
