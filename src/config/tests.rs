//! Defaults, validation and duration parsing of the configuration.

use super::*;

#[test]
fn defaults_are_valid() {
    Config::defaults().validate().unwrap();
}

#[test]
fn validate_lists_every_problem() {
    let mut c = Config::defaults();
    c.server.listen = "nope".into();
    c.limits.page_size_max = 0;
    c.auth.token_secret = "short".into();
    let errs = c.validate().unwrap_err();
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("server.listen")));
    assert!(errs.iter().any(|e| e.starts_with("auth.token_secret")));
}

#[test]
fn tenant_timers_read_iso_durations_and_seconds() {
    let path = std::env::temp_dir().join(format!("switchboard-timers-{}.toml", uuid::Uuid::new_v4()));
    let toml = "[auth]\ntoken_secret = \"0123456789abcdef0123456789abcdef\"\n[[tenants]]\nname = \"acme\"\n\
                api_keys = [\"sk_live_0123456789abcdef\"]\ntimers = { resolve_after = \"PT30M\", close_after = 86400 }\n";
    std::fs::write(&path, toml).unwrap();
    let c = Config::load(Some(&path));
    let _ = std::fs::remove_file(&path);
    let t = c.unwrap().tenants[0].timers;
    assert_eq!((t.resolve_after, t.close_after), (Some(1800), Some(86_400)));
}

#[test]
fn redis_settings_are_checked_only_for_the_redis_backend() {
    let mut c = Config::defaults();
    c.auth.token_secret = "x".repeat(32);
    c.redis.key_prefix = "a{b}".into();
    c.redis.url = "redis://a:1,redis://b:2".into();
    c.media.shared = true;
    c.validate().unwrap();
    c.store.backend = Backend::Redis;
    let errs = c.validate().unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    c.redis.cluster = true;
    c.redis.key_prefix = "sb".into();
    c.validate().unwrap();
}

#[test]
fn retention_days_take_fractions_and_refuse_nonsense() {
    let mut c = Config::defaults();
    c.tenants = vec![TenantConfig {
        id: None,
        name: "acme".into(),
        api_keys: vec!["sk_live_0123456789abcdef".into()],
        timers: Default::default(),
        retention_days: Some(0.0001),
    }];
    c.validate().unwrap();
    assert_eq!(c.tenants[0].retention(), Some(chrono::TimeDelta::milliseconds(8640)));
    c.tenants[0].retention_days = Some(-1.0);
    c.retention.sweep_secs = 0;
    let errs = c.validate().unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("tenants[0].retention_days")), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("retention.sweep_secs")), "{errs:?}");
}

#[test]
fn fs_media_on_several_nodes_needs_a_shared_directory() {
    let mut c = Config::defaults();
    c.auth.token_secret = "x".repeat(32);
    c.store.backend = Backend::Redis;
    let errs = c.validate().unwrap_err();
    assert!(errs.iter().any(|e| e.starts_with("media.backend") && e.contains("shared")), "{errs:?}");
    c.media.shared = true;
    c.validate().unwrap();
    c.media.shared = false;
    c.media.backend = MediaBackend::S3;
    let errs = c.validate().unwrap_err();
    assert_eq!(errs, vec!["media.s3.bucket: required with media.backend = \"s3\"".to_string()]);
    c.media.s3.bucket = "b".into();
    c.validate().unwrap();
}
