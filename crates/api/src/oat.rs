//! OpenAttestation compatibility: `POST {api_url}/PollHosts`, exactly as every Nova
//! `TrustedFilter` from Folsom to Pike sends it and reads the answer
//! (`../shared/reference/oat-nova.md` §0, §1.3–1.4).

use core::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// The URL prefixes Nova deployments use; `PollHosts` is mounted under each.
pub const POLL_HOSTS_PREFIXES: [&str; 3] = [
    "/AttestationService/resources",
    "/OpenAttestationWebServices/V1.0",
    "/mtwilson/v2/integrations/openstack",
];

/// Most host names accepted in one request (Nova sends every compute node it knows).
pub const MAX_POLL_HOSTS: usize = 100_000;

/// `{"count": N, "hosts": [...]}`. `hosts` may be a single string (Folsom); `count` and
/// unknown keys (`pcrmask`, `timeThreshold` …) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PollHostsRequest {
    /// The host names, exactly as sent (echoed back unchanged).
    #[serde(deserialize_with = "string_or_list")]
    pub hosts: Vec<String>,
}

fn string_or_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct HostsVisitor;
    impl<'de> Visitor<'de> for HostsVisitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a host name or a list of host names")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut hosts = Vec::new();
            while let Some(host) = seq.next_element::<String>()? {
                if hosts.len() >= MAX_POLL_HOSTS {
                    return Err(de::Error::custom(format!(
                        "more than {MAX_POLL_HOSTS} hosts"
                    )));
                }
                hosts.push(host);
            }
            Ok(hosts)
        }
    }
    deserializer.deserialize_any(HostsVisitor)
}

/// A trust level as Nova compares it (exact, case-sensitive string match with the flavor's
/// `trust:trusted_host`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustLevel {
    /// A complete, current, verified match with a known-good policy.
    Trusted,
    /// Verified evidence that does not match, or evidence that failed verification.
    Untrusted,
    /// Nothing current is known: never enrolled, unreachable, expired, pending.
    Unknown,
}

impl TrustLevel {
    /// The wire string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trusted => "trusted",
            Self::Untrusted => "untrusted",
            Self::Unknown => "unknown",
        }
    }
}

/// One host in the answer. All three keys are mandatory: Nova raises `KeyError` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTrust {
    /// Exactly the requested string.
    pub host_name: String,
    /// The level.
    pub trust_lvl: TrustLevel,
    /// RFC 3339 UTC time of this answer (`2017-05-07T10:56:07Z`): Nova's cache lifetime is
    /// measured from it.
    pub vtime: String,
}

/// `{"hosts": [...]}` — always an object, one entry per requested host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollHostsResponse {
    /// The entries.
    pub hosts: Vec<HostTrust>,
}

/// One host of a `PollHosts` answer as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolledHost {
    /// As the server wrote it.
    pub host_name: String,
    /// `trusted` / `untrusted`; any other value (OAT 1.x also said `timeout`, `pending`)
    /// is unknown.
    pub level: TrustLevel,
    /// `vtime`, Unix ms; an unparseable one makes the host unknown as of `now_ms` (Nova).
    pub vtime_ms: i64,
}

/// Reads a `PollHosts` answer the way Nova's TrustedFilter did
/// (`../shared/reference/oat-nova.md` §1.4–1.5), without its crashes: the body must be a
/// JSON object with a `hosts` list (else an error: Nova raised); an entry that is not an
/// object or lacks a string `host_name` / `trust_lvl` is skipped (its host stays unknown);
/// `vtime` is ISO-8601, else C-locale `%c`, else the host is unknown as of `now_ms`.
///
/// # Errors
/// A message saying what the body is instead.
pub fn read_answer(body: &[u8], now_ms: i64) -> Result<Vec<PolledHost>, String> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("the PollHosts answer is not JSON: {e}"))?;
    let list = value
        .as_object()
        .ok_or("the PollHosts answer is not a JSON object")?
        .get("hosts")
        .and_then(serde_json::Value::as_array)
        .ok_or("the PollHosts answer has no \"hosts\" list")?;
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let text = |key: &str| item.get(key).and_then(serde_json::Value::as_str);
        let (Some(host_name), Some(level)) = (text("host_name"), text("trust_lvl")) else {
            continue;
        };
        let vtime = text("vtime")
            .and_then(|v| crate::time::parse_iso8601(v).or_else(|| crate::time::parse_c_locale(v)));
        let level = match (level, vtime) {
            (_, None) => TrustLevel::Unknown,
            ("trusted", Some(_)) => TrustLevel::Trusted,
            ("untrusted", Some(_)) => TrustLevel::Untrusted,
            _ => TrustLevel::Unknown,
        };
        out.push(PolledHost {
            host_name: host_name.to_owned(),
            level,
            vtime_ms: vtime.unwrap_or(now_ms),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_request_shape_nova_sent() {
        for (body, want) in [
            (
                r#"{"count": 2, "hosts": ["node2", "node1"]}"#,
                vec!["node2", "node1"],
            ),
            (r#"{"hosts": ["node1"], "count": 1}"#, vec!["node1"]),
            (r#"{"count": 1, "hosts": "host1"}"#, vec!["host1"]),
            (
                r#"{"count": 1, "hosts": ["h"], "pcrmask": "0,17", "timeThreshold": 60}"#,
                vec!["h"],
            ),
            (r#"{"hosts": []}"#, vec![]),
        ] {
            let req: PollHostsRequest = serde_json::from_str(body).unwrap();
            assert_eq!(req.hosts, want, "{body}");
        }
        assert!(serde_json::from_str::<PollHostsRequest>(r#"{"count": 1}"#).is_err());
        assert!(serde_json::from_str::<PollHostsRequest>(r#"{"hosts": [1]}"#).is_err());
    }

    #[test]
    fn answers_in_the_shape_nova_reads() {
        let response = PollHostsResponse {
            hosts: vec![HostTrust {
                host_name: "node1".into(),
                trust_lvl: TrustLevel::Trusted,
                vtime: "2017-05-07T10:56:07Z".into(),
            }],
        };
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"hosts":[{"host_name":"node1","trust_lvl":"trusted","vtime":"2017-05-07T10:56:07Z"}]}"#
        );
    }
}
