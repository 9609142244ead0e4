//! `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`: the Messages list as Twilio serves it,
//! newest first, filtered by `To`, `From` and `DateSent` (`DateSent=YYYY-MM-DD` that day,
//! `DateSent<=…` on or before, `DateSent>=…` on or after; in a query string those are the keys
//! `DateSent<` and `DateSent>`), paged with `PageSize` (50 by default, at most 1000), `Page` and
//! `PageToken`, with `next_page_uri` while more remain.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_twilio::messages::MessageResource;
use time::{Date, OffsetDateTime};

use crate::answers::{authenticate, twilio_error};
use crate::handle::Emulator;
use crate::model::SentMessage;

fn day(raw: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(raw.get(..10).unwrap_or(raw), &format).ok()
}

fn resource(m: &SentMessage) -> MessageResource {
    let created = OffsetDateTime::from_unix_timestamp(m.created_unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let date = created.format(&time::format_description::well_known::Rfc2822).unwrap_or_default();
    MessageResource {
        sid: Some(m.sid.clone()),
        account_sid: Some(m.account_sid.clone()),
        api_version: Some("2010-04-01".into()),
        body: m.body.clone(),
        date_created: Some(date.clone()),
        date_sent: Some(date.clone()),
        date_updated: Some(date),
        direction: Some("outbound-api".into()),
        error_code: m.error_code.map(i64::from),
        from: Some(m.from.clone()),
        to: Some(m.to.clone()),
        num_media: Some(m.media_urls.len().to_string()),
        num_segments: Some("1".into()),
        status: Some(m.status.clone()),
        uri: Some(format!("/2010-04-01/Accounts/{}/Messages/{}.json", m.account_sid, m.sid)),
        ..Default::default()
    }
}

pub(crate) async fn list_messages(
    State(em): State<Emulator>,
    Path(account_sid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authenticate(&em, &account_sid, &headers) {
        return *response;
    }
    if let Some(answer) = crate::answers::outage_answer(&em) {
        return answer;
    }
    let query = query.unwrap_or_default();
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut dates = Vec::new();
    for (key, bound) in [("DateSent", 0), ("DateSent<", -1), ("DateSent>", 1)] {
        if let Some(raw) = get(key) {
            let Some(date) = day(raw) else {
                return twilio_error(StatusCode::BAD_REQUEST, 20001, &format!("Invalid {key}: {raw}"));
            };
            dates.push((bound, date));
        }
    }
    let page_size = get("PageSize").and_then(|v| v.parse::<usize>().ok()).unwrap_or(50).clamp(1, 1_000);
    let page = get("Page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    let (to, from) = (get("To"), get("From"));
    let mut matching: Vec<SentMessage> = em
        .lock()
        .sent
        .iter()
        .filter(|m| m.account_sid == account_sid)
        .filter(|m| to.is_none_or(|t| m.to == t))
        .filter(|m| from.is_none_or(|f| m.from == f))
        .filter(|m| {
            let sent = OffsetDateTime::from_unix_timestamp(m.created_unix).map_or(Date::MIN, OffsetDateTime::date);
            dates.iter().all(|(bound, date)| match bound {
                0 => sent == *date,
                -1 => sent <= *date,
                _ => sent >= *date,
            })
        })
        .cloned()
        .collect();
    // Newest first, as Twilio lists them.
    matching.sort_by(|a, b| b.created_unix.cmp(&a.created_unix).then(b.received_ms.cmp(&a.received_ms)));
    let start = page * page_size;
    let messages: Vec<MessageResource> = matching.iter().skip(start).take(page_size).map(resource).collect();
    let base = format!("/2010-04-01/Accounts/{account_sid}/Messages.json");
    let filters: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            params
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "Page" | "PageToken" | "PageSize")),
        )
        .finish();
    let page_uri = |n: usize| {
        let sep = if filters.is_empty() { "" } else { "&" };
        format!("{base}?{filters}{sep}PageSize={page_size}&Page={n}&PageToken=PA{n}")
    };
    let more = start + messages.len() < matching.len();
    let body = serde_json::json!({
        "messages": messages,
        "page": page,
        "page_size": page_size,
        "start": start,
        "end": start + messages.len().saturating_sub(1),
        "uri": page_uri(page),
        "first_page_uri": page_uri(0),
        "next_page_uri": more.then(|| page_uri(page + 1)),
        "previous_page_uri": (page > 0).then(|| page_uri(page - 1)),
    });
    axum::Json(body).into_response()
}
