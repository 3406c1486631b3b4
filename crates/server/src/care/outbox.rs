//! The booking day's housekeeping, run by the server every minute: appointments whose
//! slot ended before today are marked no-shows (their places given back), waitlist
//! offers not accepted in time expire (the place passes to the next in line), and the
//! reminders the booking queued in its own transaction (the day before, two hours
//! before) are delivered through a sender adapter — written to the log, or posted to a
//! webhook an SMS gateway listens on — and each outcome is recorded in the outbox. An
//! SMS provider plugs in as another [`Sender`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::NaiveDateTime;
use dhp_core::booking::Status;
use dhp_store::{Delivery, DueReminder, StoreError};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::AppState;

/// Reminders delivered in one round at most; the rest wait for the next minute.
const ROUND: i64 = 500;

/// How long a webhook may take to answer before the delivery counts as failed.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where reminders go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Reminders {
    /// Into the server's log (the phone number masked): nothing leaves the machine.
    #[default]
    Log,
    /// `POST` as JSON (`to`, `text`, `appointment`, `kind`, `start`) to this `http://`
    /// URL; a 2xx answer is a delivery, anything else a failure tried again.
    Webhook(url::Url),
}

impl Reminders {
    /// The webhook from a `--reminder-webhook` URL: plain `http://` with a host (an SMS
    /// gateway or relay beside the server; TLS to the outside is the relay's part).
    pub fn webhook(url: &str) -> Result<Self, String> {
        let u = url::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
        if u.scheme() != "http" || u.host_str().is_none() {
            return Err(format!(
                "{url}: the reminder webhook is an http:// URL with a host (a gateway beside the server)"
            ));
        }
        Ok(Reminders::Webhook(u))
    }
}

/// One reminder as it is sent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Message {
    pub to: String,
    pub text: String,
    pub appointment: dhp_core::Id,
    pub kind: String,
    pub start: NaiveDateTime,
}

/// A way of sending reminders: `Ok` says how it was delivered, `Err` why not.
pub trait Sender: Send + Sync {
    fn send<'a>(
        &'a self,
        m: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
}

/// The sender a configuration names.
pub fn sender(config: &Reminders) -> Box<dyn Sender> {
    match config {
        Reminders::Log => Box::new(LogSender),
        Reminders::Webhook(url) => Box::new(WebhookSender(url.clone())),
    }
}

/// A phone number as the log may show it: the first three and last four digits.
fn masked(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

struct LogSender;

impl Sender for LogSender {
    fn send<'a>(
        &'a self,
        m: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            tracing::info!(
                to = %masked(&m.to),
                appointment = m.appointment,
                kind = %m.kind,
                start = %m.start,
                "appointment reminder (log sender)"
            );
            Ok("log".to_string())
        })
    }
}

struct WebhookSender(url::Url);

impl WebhookSender {
    async fn post(&self, m: &Message) -> Result<String, String> {
        let url = &self.0;
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("webhook {host}:{port} unreachable: {e}"))?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("webhook handshake: {e}"))?;
        tokio::spawn(conn);
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let body = serde_json::to_vec(m).map_err(|e| e.to_string())?;
        let req = hyper::Request::post(path)
            .header("host", format!("{host}:{port}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let res = send
            .send_request(req)
            .await
            .map_err(|e| format!("webhook: {e}"))?;
        let status = res.status();
        // The answer's body is read (bounded by the timeout) so the gateway's
        // connection ends cleanly; its content is not kept.
        let _ = res.into_body().collect().await;
        if status.is_success() {
            Ok(format!("webhook {}", status.as_u16()))
        } else {
            Err(format!("webhook answered {}", status.as_u16()))
        }
    }
}

impl Sender for WebhookSender {
    fn send<'a>(
        &'a self,
        m: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            match tokio::time::timeout(WEBHOOK_TIMEOUT, self.post(m)).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "webhook gave no answer within {} s",
                    WEBHOOK_TIMEOUT.as_secs()
                )),
            }
        })
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub no_shows: u64,
    /// Waitlist offers expired, and entries whose days passed.
    pub offers_expired: u64,
    pub waits_lapsed: u64,
    /// Holds (`Appointment/$hold`) not booked in time, their places let go.
    pub holds_released: u64,
    pub sent: u64,
    pub failed: u64,
    pub void: u64,
}

/// The text a resident receives (Chinese: residents' language by default).
fn text(state_district: &str, org: &str, service: &str, r: &DueReminder) -> String {
    let t = crate::i18n::messages("zh");
    t.get("reminder_text")
        .replace("{district}", state_district)
        .replace("{when}", &r.start.format("%Y-%m-%d %H:%M").to_string())
        .replace("{org}", org)
        .replace("{service}", service)
}

/// One round at `now`: mark yesterday's and earlier unattended appointments no-shows,
/// expire the waitlist offers not taken in time, then deliver the reminders due by `now` (a reminder of an appointment no longer
/// booked is voided, not sent).
pub async fn round(
    state: &AppState,
    sender: &dyn Sender,
    now: NaiveDateTime,
) -> Result<Round, StoreError> {
    let mut done = Round {
        no_shows: state
            .store
            .mark_no_shows(now.date().and_time(chrono::NaiveTime::MIN))
            .await?,
        ..Round::default()
    };
    (done.offers_expired, done.waits_lapsed) = state.store.expire_offers(now).await?;
    done.holds_released = state.store.release_holds(now).await?;
    done.void = state.store.void_stale_reminders(now).await?;
    let due = state.store.due_reminders(now, ROUND).await?;
    if due.is_empty() {
        return Ok(done);
    }
    let district = state.place().await?.district.clone();
    let orgs = state.orgs().await?;
    let t = crate::i18n::messages("zh");
    for r in due {
        let delivery = if r.status != Status::Booked {
            done.void += 1;
            Delivery::Void
        } else {
            let org = orgs
                .get(&r.org_id)
                .map(|o| o.name_zh.as_str())
                .unwrap_or("");
            let m = Message {
                to: r.phone.clone(),
                text: text(&district, org, t.get(&format!("svc_{}", r.service)), &r),
                appointment: r.appointment_id,
                kind: r.kind.clone(),
                start: r.start,
            };
            match sender.send(&m).await {
                Ok(how) => {
                    done.sent += 1;
                    Delivery::Sent(how)
                }
                Err(why) => {
                    done.failed += 1;
                    tracing::warn!(appointment = r.appointment_id, kind = %r.kind, %why, "a reminder was not delivered");
                    Delivery::Failed(why)
                }
            }
        };
        state
            .store
            .record_reminder(r.appointment_id, &r.kind, &delivery, now)
            .await?;
    }
    Ok(done)
}

/// Every minute while the server runs: one [`round`] at the district's present moment.
pub(crate) async fn run(state: std::sync::Arc<AppState>) {
    let sender = sender(&state.config.reminders);
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = match crate::context::district_now(&state).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "the booking round could not read the date");
                continue;
            }
        };
        match round(&state, &*sender, now).await {
            Ok(r) if r != Round::default() => tracing::info!(
                no_shows = r.no_shows,
                offers_expired = r.offers_expired,
                waits_lapsed = r.waits_lapsed,
                holds_released = r.holds_released,
                sent = r.sent,
                failed = r.failed,
                void = r.void,
                "booking round"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the booking round failed; trying again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_phone_shows_only_its_ends() {
        assert_eq!(masked("13812345678"), "138****5678");
        assert_eq!(masked("021-5555"), "021*5555");
        assert_eq!(masked("12345"), "*****");
    }

    #[test]
    fn a_webhook_is_plain_http_with_a_host() {
        assert!(Reminders::webhook("http://127.0.0.1:9000/sms").is_ok());
        assert!(Reminders::webhook("https://sms.example/send").is_err());
        assert!(Reminders::webhook("file:///tmp/x").is_err());
        assert!(Reminders::webhook("not a url").is_err());
    }
}
