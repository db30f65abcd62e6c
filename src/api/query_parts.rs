//! `QueryParts<A, B>`: one query string read into two structs, so that two handlers can share a
//! params struct (the conversation list's filters, which the tab counts take too) while every
//! key stays checked: a key that neither struct names is a 400 `invalid_query`, exactly as a
//! single struct with `#[serde(deny_unknown_fields)]` answers it.
//!
//! Why not `#[serde(flatten)]`: serde ignores `deny_unknown_fields` on a struct that flattens
//! another, and a flattened struct reads every query value as a string, so `page_size=10` or
//! `unassigned=true` would no longer parse. Here each struct is read by axum's own `Query` (the
//! same types, the same messages), after one pass over the keys against both structs' field
//! names, which serde's derive names itself (so a field added to a struct is known at once).
//!
//! Owns the reading and the key check only. What the values mean, and their 422s, stay with the
//! handlers; the OpenAPI parameters come from each struct's `IntoParams`.

use crate::error::{Error, Result};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

/// The query string read as `A` and as `B`; neither struct may use `deny_unknown_fields`.
#[derive(Debug)]
pub struct QueryParts<A, B>(pub A, pub B);

impl<A, B, S> FromRequestParts<S> for QueryParts<A, B>
where
    A: DeserializeOwned,
    B: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        let known: Vec<&str> = field_names::<A>().iter().chain(field_names::<B>()).copied().collect();
        let query = parts.uri.query().unwrap_or_default();
        if let Some((key, _)) = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| !known.contains(&k.as_ref())) {
            let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            return Err(Error::BadRequest {
                code: "invalid_query",
                message: format!(
                    "Failed to deserialize query string: unknown field `{key}`, expected one of {}",
                    expected.join(", ")
                ),
            });
        }
        let axum::extract::Query(a) = axum::extract::Query::<A>::try_from_uri(&parts.uri)?;
        let axum::extract::Query(b) = axum::extract::Query::<B>::try_from_uri(&parts.uri)?;
        Ok(QueryParts(a, b))
    }
}

/// The field names a derived `Deserialize` of a struct hands to `deserialize_struct` (empty for
/// anything else).
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    // The capture ends the read with an error on purpose: only the names were wanted.
    let _ = T::deserialize(FieldNames(&mut names));
    names
}

/// A deserializer that answers nothing and notes the field names it is asked for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> std::result::Result<V::Value, Self::Error> {
        Err(de::Error::custom("field names only"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Paging {
        page_size: Option<usize>,
        unassigned: Option<bool>,
    }

    #[derive(Debug, Deserialize)]
    struct Filters {
        q: Option<String>,
    }

    async fn read(uri: &str) -> Result<QueryParts<Paging, Filters>> {
        let (mut parts, ()) = axum::http::Request::builder().uri(uri).body(()).unwrap().into_parts();
        QueryParts::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn both_parts_read_their_own_keys_with_their_own_types() {
        let QueryParts(p, f) = read("/x?page_size=10&q=bill%20s&unassigned=true").await.unwrap();
        assert_eq!((p.page_size, p.unassigned, f.q.as_deref()), (Some(10), Some(true), Some("bill s")));
        let QueryParts(p, f) = read("/x").await.unwrap();
        assert_eq!((p.page_size, f.q), (None, None));
    }

    #[tokio::test]
    async fn a_key_neither_part_names_is_a_400_naming_every_known_key() {
        let e = read("/x?q=a&page_token=t").await.unwrap_err();
        assert_eq!((e.status().as_u16(), e.code()), (400, "invalid_query"));
        assert!(e.message().contains("unknown field `page_token`"), "{}", e.message());
        assert!(e.message().contains("`page_size`, `unassigned`, `q`"), "{}", e.message());
    }

    #[tokio::test]
    async fn a_bad_value_is_the_400_axum_gives() {
        let e = read("/x?page_size=ten").await.unwrap_err();
        assert_eq!((e.status().as_u16(), e.code()), (400, "invalid_query"));
        assert_eq!(field_names::<u32>(), &[] as &[&str]);
    }
}
