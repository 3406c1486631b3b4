//! A guardian's pages for their children (SPEC capability 9, "my children"): the
//! children the registry links to the signed-in resident, each child's record and due
//! reminders, and the child's printable vaccination plan. A guardian sees a child under
//! 14; from 14 to 17 only with the child's own consent, which the child gives or
//! withdraws on their own page; nobody's proxy reaches an adult
//! (`dhp_core::access::proxy`). Every attempt is audited on the child's record.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::NaiveDate;
use dhp_core::access::{proxy, Principal, Proxy};
use dhp_core::programmes::immunization::{forecast, SeriesState};
use dhp_core::programmes::ResidentRecord;
use dhp_core::registry::age_years;
use dhp_core::{Id, Resident, Sex};
use dhp_store::{Cohort, Guardianship, Reading, StoreError, Table};
use serde::Deserialize;

use super::PortalQuery;
use crate::audit::{self, Actor};
use crate::context::{as_of, Refusal};
use crate::i18n::Messages;
use crate::security::session::SignedIn;
use crate::{AppError, AppState};

/// A child on the guardian's page.
pub(crate) struct Child {
    pub(crate) id: Id,
    pub(crate) name: String,
    pub(crate) facts: String,
    /// Whether the guardian may open the child's record today.
    pub(crate) open: bool,
    /// Why not, in words (empty when open).
    pub(crate) why: String,
}

/// A guardian on a 14-to-17-year-old's own page, with the consent they hold.
pub(crate) struct Guardian {
    pub(crate) id: Id,
    pub(crate) name: String,
    pub(crate) relation: String,
    pub(crate) consented: bool,
}

fn relation(t: &Messages, code: &str) -> String {
    t.get(match code {
        "MTH" => "kid_rel_mth",
        "FTH" => "kid_rel_fth",
        _ => "kid_rel_guard",
    })
    .to_string()
}

fn facts(t: &Messages, r: &Resident, on: NaiveDate) -> String {
    format!(
        "{} · {} {} · {}",
        t.get(if r.sex == Sex::Male { "male" } else { "female" }),
        age_years(r.birth_date, on),
        t.get("years_old"),
        r.birth_date,
    )
}

async fn residents(state: &AppState, ids: &[Id]) -> Result<Vec<Resident>, StoreError> {
    let mut out = Vec::new();
    for id in ids {
        match state.store.get(Table::Residents, *id).await {
            Ok(b) => out.extend(b.residents),
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The children linked to resident `me`, with what the guardian may do for each today
/// (adults no longer listed).
pub(crate) async fn children(
    state: &AppState,
    t: &Messages,
    me: Id,
    on: NaiveDate,
) -> Result<Vec<Child>, StoreError> {
    let links = state.store.children_of(me).await?;
    let ids: Vec<Id> = links.iter().map(|l| l.child_id).collect();
    let kids = residents(state, &ids).await?;
    Ok(links
        .iter()
        .filter_map(|l| {
            let k = kids.iter().find(|k| k.id == l.child_id)?;
            let standing = proxy(k.birth_date, on, l.consent_at.is_some());
            (standing != Proxy::Adult).then(|| Child {
                id: k.id,
                name: k.name.clone(),
                facts: facts(t, k, on),
                open: standing.allowed(),
                why: if standing.allowed() {
                    String::new()
                } else {
                    t.get("kid_needs_consent").to_string()
                },
            })
        })
        .collect())
}

/// The guardians of resident `me` whose consent `me` decides (only from 14 to 17).
pub(crate) async fn guardians(
    state: &AppState,
    t: &Messages,
    me: &Resident,
    on: NaiveDate,
) -> Result<Vec<Guardian>, StoreError> {
    let age = age_years(me.birth_date, on);
    if !(dhp_core::access::PROXY_WITHOUT_CONSENT_BELOW..dhp_core::access::ADULT_AT).contains(&age) {
        return Ok(Vec::new());
    }
    let links = state.store.guardians_of(me.id).await?;
    let ids: Vec<Id> = links.iter().map(|l| l.guardian_id).collect();
    let people = residents(state, &ids).await?;
    Ok(links
        .iter()
        .filter_map(|l| {
            let g = people.iter().find(|g| g.id == l.guardian_id)?;
            Some(Guardian {
                id: g.id,
                name: g.name.clone(),
                relation: relation(t, &l.relation),
                consented: l.consent_at.is_some(),
            })
        })
        .collect())
}

/// Whether guardian `me` (signed in as `who`) may `action` for child `raw` on `on`: the
/// child's id and the link, or the styled refusal. A child not linked to the guardian
/// (or no such resident) is answered as none, revealing nothing; every refusal is
/// audited, on the child's record where the link stands.
#[allow(clippy::too_many_arguments)]
async fn standing(
    state: &AppState,
    t: &'static Messages,
    user: &SignedIn,
    who: &Principal,
    me: Id,
    raw: &str,
    on: NaiveDate,
    action: &str,
) -> Result<Result<(Id, Guardianship), Response>, AppError> {
    let actor = Actor::from(who);
    let back = ("/me", "me_title");
    let none = || {
        Refusal::bare(StatusCode::NOT_FOUND, t.get("kid_none")).page(t, Some(user.clone()), back)
    };
    let Ok(child) = raw.parse::<Id>() else {
        return Ok(Err(none()));
    };
    let resource = format!("Patient/{child}");
    let link = state
        .store
        .guardians_of(child)
        .await?
        .into_iter()
        .find(|l| l.guardian_id == me);
    let kid = match &link {
        Some(_) => match state.store.resident(child).await {
            Ok(k) => Some(k),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let (Some(link), Some(kid)) = (link, kid) else {
        audit::record(
            &*state.store,
            &actor,
            action,
            &resource,
            None,
            "denied",
            "guardian proxy: not a guardian of this resident",
        )
        .await?;
        return Ok(Err(none()));
    };
    let standing = proxy(kid.birth_date, on, link.consent_at.is_some());
    if !standing.allowed() {
        audit::record(
            &*state.store,
            &actor,
            action,
            &resource,
            Some(child),
            "denied",
            &format!("guardian proxy ({}): {}", link.relation, standing.as_str()),
        )
        .await?;
        let why = if standing == Proxy::Adult {
            "kid_adult"
        } else {
            "kid_needs_consent"
        };
        return Ok(Err(Refusal::bare(StatusCode::FORBIDDEN, t.get(why)).page(
            t,
            Some(user.clone()),
            back,
        )));
    }
    Ok(Ok((child, link)))
}

/// Child `raw`'s record for the guardian `who`, or the styled refusal ([`standing`]);
/// the read is audited on the child's record.
async fn child_record(
    state: &AppState,
    t: &'static Messages,
    user: &SignedIn,
    who: &Principal,
    me: Id,
    raw: &str,
    on: NaiveDate,
) -> Result<Result<(ResidentRecord, Guardianship), Response>, AppError> {
    let (child, link) = match standing(state, t, user, who, me, raw, on, "read").await? {
        Ok(x) => x,
        Err(r) => return Ok(Err(r)),
    };
    let rec = state
        .store
        .programme_records(&Cohort::Resident(child), Reading::Full, on, child - 1, 1)
        .await?
        .pop();
    let Some(rec) = rec else {
        return Ok(Err(Refusal::bare(StatusCode::NOT_FOUND, t.get("kid_none"))
            .page(t, Some(user.clone()), ("/me", "me_title"))));
    };
    let standing = proxy(rec.resident.birth_date, on, link.consent_at.is_some());
    audit::record(
        &*state.store,
        &Actor::from(who),
        "read",
        &format!("Patient/{child}"),
        Some(child),
        "success",
        &format!("guardian proxy ({}): {}", link.relation, standing.as_str()),
    )
    .await?;
    Ok(Ok((rec, link)))
}

/// Whom a portal act is for: the signed-in resident themself, or — given `child` —
/// the guardian's child, acted for under the child's own scope (the account's name
/// stays the guardian's in every audit entry); a child the guardian may not act for
/// today is refused as [`standing`] says.
pub(crate) async fn acting_for(
    state: &AppState,
    t: &'static Messages,
    user: &SignedIn,
    who: Principal,
    me: Id,
    child: Option<&str>,
) -> Result<Result<(Principal, Id, Option<Id>), Response>, AppError> {
    let Some(raw) = child.filter(|c| !c.is_empty()) else {
        return Ok(Ok((who, me, None)));
    };
    let on = as_of(state).await?;
    let (child, _) = match standing(state, t, user, &who, me, raw, on, "book").await? {
        Ok(x) => x,
        Err(r) => return Ok(Err(r)),
    };
    let for_child = Principal {
        resident_id: Some(child),
        ..who
    };
    Ok(Ok((for_child, child, Some(child))))
}

/// `GET /me/children/{id}`: a child's record, as the guardian sees it.
pub async fn child_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<PortalQuery>,
) -> Result<Response, AppError> {
    let t = q.t();
    let path = format!("/me/children/{raw}");
    let (user, who, me) = match super::resident(&state, &headers, t, &path) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let page = match super::timeline_page(t, &user, q.page.as_deref()) {
        Ok(p) => p,
        Err(r) => return Ok(*r),
    };
    let on = as_of(&state).await?;
    let (rec, _) = match child_record(&state, t, &user, &who, me, &raw, on).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let mut page = super::me_page(&state, t, user, &rec, on, page, q.saved.as_deref()).await?;
    page.base = format!("/me/children/{}", rec.resident.id);
    page.proxy = true;
    page.child_q = format!("&child={}", rec.resident.id);
    for v in &mut page.visits {
        v.rate = false;
    }
    Ok(Html(page.render()?).into_response())
}

/// One vaccine of the plan.
pub(crate) struct PlanRow {
    vaccine: String,
    given: Vec<String>,
    /// The next dose: its number, the recommended day and the last on-time day.
    next: Option<(i32, String, String)>,
    status: String,
    /// `good`, `warn` or `bad`.
    tone: &'static str,
    state: String,
}

#[derive(Template)]
#[template(path = "portal/vaccines.html")]
pub(crate) struct PlanPage {
    t: &'static Messages,
    user: Option<SignedIn>,
    lang: String,
    child: Id,
    name: String,
    facts: String,
    date: String,
    edition: String,
    rows: Vec<PlanRow>,
}

/// `GET /me/children/{id}/vaccines`: the child's vaccination plan on the national
/// schedule, to print: each vaccine's doses given and the next one due.
pub async fn vaccine_plan(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<PortalQuery>,
) -> Result<Response, AppError> {
    let t = q.t();
    let path = format!("/me/children/{raw}/vaccines");
    let (user, who, me) = match super::resident(&state, &headers, t, &path) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let on = as_of(&state).await?;
    let (rec, _) = match child_record(&state, t, &user, &who, me, &raw, on).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let zh = t.get("lang") == "zh";
    let rows = forecast(&rec, on)
        .into_iter()
        .map(|s| {
            let (status, tone) = match (&s.state, &s.next) {
                (SeriesState::Complete, _) => (t.get("kid_complete").to_string(), "good"),
                (SeriesState::Closed, _) => (t.get("kid_closed").to_string(), "warn"),
                (SeriesState::InProgress, Some(n)) => {
                    let (key, tone) = match n.status {
                        dhp_core::programmes::DueStatus::Overdue => ("kid_overdue", "bad"),
                        dhp_core::programmes::DueStatus::Due => ("kid_due", "warn"),
                        dhp_core::programmes::DueStatus::Upcoming => ("kid_upcoming", "good"),
                    };
                    (t.get(key).to_string(), tone)
                }
                (SeriesState::InProgress, None) => (String::new(), "warn"),
            };
            PlanRow {
                vaccine: if zh { s.name_zh } else { s.name_en },
                given: s.given.iter().map(|d| d.to_string()).collect(),
                next: s.next.as_ref().map(|n| {
                    (
                        n.number,
                        n.recommended.to_string(),
                        n.overdue_after.to_string(),
                    )
                }),
                status,
                tone,
                state: match s.state {
                    SeriesState::Complete => "complete",
                    SeriesState::InProgress => "in-progress",
                    SeriesState::Closed => "closed",
                }
                .to_string(),
            }
        })
        .collect();
    let r = &rec.resident;
    let page = PlanPage {
        t,
        user: Some(user),
        lang: t.get("lang").into(),
        child: r.id,
        name: r.name.clone(),
        facts: facts(t, r, on),
        date: on.to_string(),
        edition: dhp_core::codes::immunization_schedule().edition.clone(),
        rows,
    };
    Ok(Html(page.render()?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    /// `yes` gives consent, `no` withdraws it.
    #[serde(default)]
    pub give: String,
}

/// `POST /me/guardians/{id}/consent`: a resident of 14 to 17 lets a guardian see their
/// record, or stops it. Audited on the resident's own record.
pub async fn consent(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<PortalQuery>,
    Form(form): Form<ConsentForm>,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who, me) = match super::resident(&state, &headers, t, "/me") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let back = ("/me", "me_title");
    let give = match form.give.as_str() {
        "yes" => true,
        "no" => false,
        _ => {
            return Ok(
                Refusal::bad(t.get("kid_f_consent"), t.get("kid_bad_consent")).page(
                    t,
                    Some(user),
                    back,
                ),
            )
        }
    };
    let on = as_of(&state).await?;
    let myself = residents(&state, &[me]).await?;
    let Some(myself) = myself.first() else {
        return Ok(
            Refusal::bare(StatusCode::NOT_FOUND, t.get("me_no_record")).page(t, Some(user), back),
        );
    };
    // Only one's own guardians, and only while the choice is one's own (14 to 17).
    let mine = guardians(&state, t, myself, on).await?;
    let Some(g) = raw
        .parse::<Id>()
        .ok()
        .and_then(|id| mine.iter().find(|g| g.id == id))
    else {
        return Ok(
            Refusal::bare(StatusCode::NOT_FOUND, t.get("kid_no_guardian")).page(
                t,
                Some(user),
                back,
            ),
        );
    };
    let at = give.then(|| chrono::Utc::now().naive_utc());
    state.store.set_proxy_consent(me, g.id, at).await?;
    audit::record(
        &*state.store,
        &Actor::from(&who),
        "consent",
        &format!("Patient/{me}"),
        Some(me),
        "success",
        &format!(
            "guardian proxy consent {} for Patient/{}",
            if give { "given" } else { "withdrawn" },
            g.id
        ),
    )
    .await?;
    let lang = q.lang.as_deref().unwrap_or("zh");
    Ok(Redirect::to(&format!(
        "/me?lang={lang}&saved={}#guardians",
        if give { "consented" } else { "withdrawn" }
    ))
    .into_response())
}
