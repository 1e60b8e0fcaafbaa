//! `GET /dashboard`: the pool at a glance for a person — counts by trust level and every
//! host with its level, when it was decided, and the policy that matched or why not.
//! Server-rendered HTML (no script), refreshed every 5 s; every string from an agent or a
//! verdict is escaped.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;
use trustpool_api::v1::HostView;

use super::auth::Viewer;
use super::{ApiError, host_view};
use crate::service::cache::rfc3339;
use crate::service::{Service, ServiceError};
use crate::store::now_ms;

/// HTML-escapes text for element content and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The page.
fn render(server_id: &str, hosts: &[HostView], counts: &[(&str, usize)], now: &str) -> String {
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>trustpool — trusted compute pool</title>\
         <style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
         table{border-collapse:collapse;width:100%}td,th{padding:.35em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
         .trusted{color:#176c2b;font-weight:600}.untrusted{color:#b3261e;font-weight:600}.unknown{color:#7a6300;font-weight:600}\
         .count{display:inline-block;margin-right:2em;font-size:1.3em}code{font-size:.85em;word-break:break-all}</style></head><body>",
    );
    let _ = write!(
        out,
        "<h1>trustpool</h1><p>attestation server <code>{}</code> — {}</p><p>",
        escape(server_id),
        escape(now)
    );
    for (level, n) in counts {
        let _ = write!(
            out,
            "<span class=\"count {level}\" id=\"count-{level}\">{n} {level}</span>"
        );
    }
    out.push_str("</p><table><thead><tr><th>host</th><th>trust</th><th>vtime</th><th>policy / reasons</th><th>state</th></tr></thead><tbody>");
    for h in hosts {
        let level = h.trust_lvl.as_str();
        let detail = match &h.policy {
            Some(p) => escape(p),
            None => h
                .reasons
                .iter()
                .map(|r| format!("<code>{}</code>", escape(r)))
                .collect::<Vec<_>>()
                .join("<br>"),
        };
        let software = if h.software_tpm {
            " (software TPM)"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr id=\"host-{id}\"><td>{name}</td><td class=\"{level}\">{level}</td><td>{vtime}</td><td>{detail}</td><td>{state}{software}</td></tr>",
            id = escape(&h.host_name),
            name = escape(&h.host_name),
            vtime = escape(h.vtime.as_deref().unwrap_or("-")),
            state = escape(&h.state),
        );
    }
    out.push_str("</tbody></table><p>API: <code>/v1/hosts</code>, <code>/v1/openapi.json</code>; Nova: <code>/AttestationService/resources/PollHosts</code></p></body></html>");
    out
}

/// `GET /dashboard`.
pub(super) async fn dashboard(
    State(s): State<Arc<Service>>,
    _: Viewer,
) -> Result<Html<String>, ApiError> {
    let mut views = Vec::new();
    for host in s.store.hosts().await.map_err(ServiceError::from)? {
        views.push(host_view(&s, host).await?);
    }
    views.sort_by(|a, b| a.host_name.cmp(&b.host_name));
    let counts = s.cache.counts(s.config.verdict_ttl);
    Ok(Html(render(
        &s.config.server_id,
        &views,
        &counts,
        &rfc3339(now_ms()),
    )))
}

#[cfg(test)]
mod tests {
    use trustpool_api::oat::TrustLevel;

    use super::*;

    #[test]
    fn strings_from_agents_and_verdicts_are_escaped() {
        let host = HostView {
            host_name: "<script>alert(1)</script>".into(),
            agent_id: "00".into(),
            aliases: vec![],
            state: "enrolled".into(),
            trust_lvl: TrustLevel::Untrusted,
            vtime: Some("2026-11-26T12:00:00Z".into()),
            policy: None,
            reasons: vec!["event \"<img src=x onerror=alert(1)>\" not allowed".into()],
            policies: vec![],
            software_tpm: true,
            agent_url: "https://h".into(),
        };
        let page = render(
            "dev",
            &[host],
            &[("trusted", 0), ("untrusted", 1), ("unknown", 0)],
            "now",
        );
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(
            page.contains(
                "<span class=\"count untrusted\" id=\"count-untrusted\">1 untrusted</span>"
            )
        );
    }
}
