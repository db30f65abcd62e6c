//! `GET /v1.0/conversations/counts`: how many conversations the inbox's Mine, Unassigned and
//! All tabs hold, under the same filters as the list (`status`, `q`, `channel`, `address`,
//! `account_id`, `contact_id`), counted by the server so the tabs do not show the length of
//! the pages loaded so far.
//!
//! Owns the meaning of the three tabs for each caller (All is what the caller may list: the
//! whole tenant for API keys and operator/admin tokens, an agent's own plus the unassigned for
//! an agent token; Mine is the caller's staff identity or `?owner_id=`) and the cap. It does not
//! own counting itself: `Store::count_conversations` does (a `ZCARD` of the owner indexes on
//! Redis when nothing but the owner narrows; otherwise up to `limits.count_cap` conversations
//! read through the list's own finder), so a count always equals the list's length below the
//! cap. Why a cap: a filtered count costs as much as listing that many conversations.

use super::conversations::{ConversationFilters, by_address};
use super::query_parts::QueryParts;
use crate::agents::Caller;
use crate::app::AppState;
use crate::conversations;
use crate::error::{Error, ErrorBody, Json, Result};
use crate::store::{OwnerFilter, count_by_pages};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The counts' own param; the filters are the list's [`ConversationFilters`], read from the same
/// query string (`QueryParts`: a key neither names, such as the list's `page_size`, is a 400).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CountParams {
    /// Whose conversations Mine counts. Default: the caller's own identity (agent, operator
    /// and admin tokens); an API key counts 0 without it. An agent token may name only itself.
    pub owner_id: Option<String>,
}

/// The tab counts; each at most `limits.count_cap`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Counts {
    /// Conversations owned by the caller (or `owner_id`).
    pub mine: usize,
    /// Conversations nobody owns.
    pub unassigned: usize,
    /// Every conversation the caller may list.
    pub all: usize,
    /// A count reached `limits.count_cap` and stopped there: the true number is at least it.
    pub capped: bool,
}

#[utoipa::path(get, path = "/v1.0/conversations/counts", tag = "conversations", params(CountParams, ConversationFilters),
    responses((status = 200, body = Counts), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "an end-user token, or an agent token naming another agent's `owner_id`", body = ErrorBody),
        (status = 404, description = "`account_id` names no account of this tenant", body = ErrorBody),
        (status = 422, description = "`invalid_filter` / `invalid_address`, as in the list; `owner_id=none`", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn counts(
    State(state): State<AppState>,
    caller: Caller,
    QueryParts(p, filters): QueryParts<CountParams, ConversationFilters>,
) -> Result<Json<Counts>> {
    // What the caller may list at all (403 for end-user tokens).
    let all = caller.owner_filter(None)?;
    let mine = match p.owner_id.as_deref().map(str::trim) {
        None | Some("") => caller.staff_identity().map(str::to_string),
        Some("none") => {
            return Err(Error::invalid(
                "invalid_filter",
                "`owner_id` names the agent Mine counts; Unassigned is counted anyway",
            ));
        }
        Some(id) => match caller
            .owner_filter(Some(id))
            .and_then(|o| conversations::check_name(&state, "owner_id", id).map(|()| o))?
        {
            OwnerFilter::Agent(a) => Some(a),
            _ => None,
        },
    };
    if filters.account_id.is_some() && filters.address.is_none() {
        return Err(Error::invalid("invalid_filter", "`account_id` goes with `address`: give both"));
    }
    let cap = state.config.limits.count_cap;
    let all = count(&state, &caller, &filters, all, cap).await?;
    let unassigned = count(&state, &caller, &filters, OwnerFilter::Unassigned, cap).await?;
    let mine = match mine {
        Some(a) => count(&state, &caller, &filters, OwnerFilter::Agent(a), cap).await?,
        None => 0,
    };
    let capped = [mine, unassigned, all].iter().any(|n| *n >= cap);
    Ok(Json(Counts { mine, unassigned, all, capped }))
}

/// How many conversations `filters` and `owner` leave, up to `cap`, found the way the
/// list finds them (binding lookup, contact's list, or the store's indexes).
async fn count(
    state: &AppState,
    caller: &Caller,
    filters: &ConversationFilters,
    owner: OwnerFilter,
    cap: usize,
) -> Result<usize> {
    let filter = filters.filter(owner)?;
    let tenant = caller.tenant();
    if let (Some(account), Some(address)) = (filters.account_id, filters.address.as_deref()) {
        let mut n = 0;
        for c in by_address(state, caller, account, address).await? {
            if filter.matches(&c, &state.store.list_participants(c.id).await?) {
                n += 1;
            }
        }
        return Ok(n.min(cap));
    }
    match filters.contact_id {
        Some(contact) => {
            count_by_pages(cap, |before, want| {
                conversations::contacts::find(state, tenant, contact, &filter, before, want)
            })
            .await
        }
        None => state.store.count_conversations(tenant, &filter, cap).await,
    }
}
