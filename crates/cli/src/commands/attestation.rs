//! Attestation-server verbs: hosts, verdicts, policies (nova-style names, `--output json`
//! prints the `trustpool-api` types as they are).

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use serde_json::json;
use trustpool_api::v1::{AddHost, EnrollmentGrant, HostView, Reenroll};
use trustpool_client::{AdminClient, ClientError};

use super::{json_text, outcome};
use crate::Outcome;
use crate::cli::{Cli, Command, GrantArgs, Output};

fn client(cli: &Cli) -> anyhow::Result<AdminClient> {
    let url = cli.attestation_url.as_deref().ok_or_else(|| {
        anyhow!("no attestation server: set --attestation-url or TRUSTPOOL_ATTESTATION_URL")
    })?;
    Ok(AdminClient::new(
        url,
        &cli.server_tls()?,
        cli.token.clone(),
        Duration::from_secs(60),
    )?)
}

fn host_table(hosts: &[HostView]) -> String {
    let mut out = format!(
        "{:<28} {:<10} {:<21} {}\n",
        "HOST", "TRUST", "VTIME", "POLICY / REASON"
    );
    for h in hosts {
        let detail = h
            .policy
            .clone()
            .or_else(|| h.reasons.first().cloned())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<28} {:<10} {:<21} {}",
            h.host_name,
            h.trust_lvl.as_str(),
            h.vtime.as_deref().unwrap_or("-"),
            detail
        );
    }
    out
}

/// An enrollment credential for the operator: the token (or where it was written) and what
/// the agent needs.
fn grant_text(g: &EnrollmentGrant, args: &GrantArgs) -> anyhow::Result<String> {
    let token_line = match &args.token_file {
        Some(path) => {
            write_secret(path, &format!("{}\n", g.token))?;
            format!("token:     written to {}\n", path.display())
        }
        None if args.output == Output::Json => return json_text(g),
        None => format!("token:     {}\n", g.token),
    };
    let mut out = format!("host:      {}\n{token_line}", g.host_name);
    if let Some(fp) = &g.ek_certificate_sha256 {
        let _ = writeln!(
            out,
            "EK:        only the TPM whose EK certificate has SHA-256 {fp} (no token needed)"
        );
    }
    if !g.aliases.is_empty() {
        let _ = writeln!(out, "aliases:   {}", g.aliases.join(", "));
    }
    let _ = writeln!(
        out,
        "expires:   {}\nuse:       the agent reads the token from [server] enrollment_token_file; it is valid once",
        g.expires
    );
    Ok(out)
}

/// Writes a secret readable by its owner only.
fn write_secret(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn host_detail(h: &HostView) -> String {
    let mut out = format!(
        "host:      {}\naliases:   {}\nagent:     {} ({})\nstate:     {}\ntrust:     {}\nvtime:     {}\npolicy:    {}\npolicies:  {}\nsoftware:  {}\n",
        h.host_name,
        h.aliases.join(", "),
        h.agent_id,
        h.agent_url,
        h.state,
        h.trust_lvl.as_str(),
        h.vtime.as_deref().unwrap_or("-"),
        h.policy.as_deref().unwrap_or("-"),
        h.policies.join(", "),
        h.software_tpm
    );
    for r in &h.reasons {
        let _ = writeln!(out, "reason:    {r}");
    }
    out
}

/// PCRs vs policy, then the event log, as text.
fn evidence_text(e: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let mut out = format!(
        "host {} — evidence verified at {} (quoted {})\n",
        text(&e["host_name"]),
        text(&e["at"]),
        text(&e["selection"])
    );
    for p in e["policies"].as_array().into_iter().flatten() {
        let verdict = if p["matches"] == true {
            "matches"
        } else {
            "does NOT match"
        };
        let _ = writeln!(out, "\npolicy {}: {verdict}", text(&p["policy"]));
        let _ = writeln!(
            out,
            "  {:<5} {:<7} {:<4} {:<7} {:<66} GOT",
            "PART", "BANK", "PCR", "RULE", "EXPECTED"
        );
        for r in p["rules"].as_array().into_iter().flatten() {
            let expected = match r["rule"].as_str() {
                Some("value") => text(&r["expected"]),
                _ => format!(
                    "{} allowed event(s)",
                    r["expected"].as_array().map_or(0, Vec::len)
                ),
            };
            let mark = match r["matches"].as_bool() {
                Some(true) => " ✓",
                Some(false) => " ✗",
                None => "",
            };
            let _ = writeln!(
                out,
                "  {:<5} {:<7} {:<4} {:<7} {:<66} {}{mark}",
                text(&r["part"]),
                text(&r["bank"]),
                r["pcr"].to_string(),
                text(&r["rule"]),
                expected,
                text(&r["got"])
            );
        }
        for reason in p["reasons"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  reason: {}", text(reason));
        }
    }
    let events = e["event_log"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "\nevent log ({} events):", events.len());
    for ev in &events {
        let _ = writeln!(
            out,
            "  {:>3}  PCR {:<2} {:<32} {}",
            ev["number"].to_string(),
            ev["pcr"].to_string(),
            text(&ev["type"]),
            text(&ev["data"])
        );
    }
    out
}

pub(crate) fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = client(cli)?;
    runtime.block_on(async {
        match &cli.command {
            Command::HostList(a) => {
                let json = a.output == Output::Json;
                outcome(client.hosts().await, |h| if json { json_text(&h) } else { Ok(host_table(&h)) })
            }
            Command::HostShow(a) => {
                let json = a.output == Output::Json;
                outcome(client.host(&a.host).await, |h| if json { json_text(&h) } else { Ok(host_detail(&h)) })
            }
            Command::HostEvidence(a) => {
                let json = a.output == Output::Json;
                outcome(client.evidence(&a.host).await, |e| if json { json_text(&e) } else { Ok(evidence_text(&e)) })
            }
            Command::HostVerdicts(a) => {
                let json = a.output == Output::Json;
                outcome(client.verdicts(&a.host).await, |v| {
                    if json {
                        return json_text(&v);
                    }
                    // One line per run of identical verdicts.
                    let mut out = format!("{:<21} {:<21} {:>7} {:<10} {}\n", "FROM", "UNTIL", "TIMES", "TRUST", "POLICY / REASONS");
                    for x in v {
                        let until = x.until.unwrap_or_else(|| x.at.clone());
                        let _ = writeln!(out, "{:<21} {:<21} {:>7} {:<10} {}", x.at, until, x.repeats, x.trust_lvl.as_str(), x.policy.unwrap_or_else(|| x.reasons.join("; ")));
                    }
                    Ok(out)
                })
            }
            Command::HostPolicySet { host, policies, output } => {
                let json = *output == Output::Json;
                outcome(client.set_policies(host, policies.clone()).await, |h| if json { json_text(&h) } else { Ok(host_detail(&h)) })
            }
            Command::HostAdd { host, aliases, grant } => {
                let request = AddHost {
                    host_name: host.clone(),
                    aliases: aliases.clone(),
                    ek_certificate_sha256: grant.ek_sha256.clone(),
                    valid_hours: grant.valid_hours,
                };
                outcome(client.add_host(&request).await, |g| grant_text(&g, grant))
            }
            Command::HostReenroll { host, grant } => {
                let request = Reenroll {
                    ek_certificate_sha256: grant.ek_sha256.clone(),
                    valid_hours: grant.valid_hours,
                };
                outcome(client.allow_reenroll(host, &request).await, |g| grant_text(&g, grant))
            }
            Command::HostClockReset(a) => outcome(client.reset_clock(&a.host).await, |h| Ok(format!("{}: the next quote is the TPM clock baseline\n", h.host_name))),
            Command::HostGrantRevoke(a) => outcome(client.revoke_grant(&a.host).await, |()| Ok(format!("revoked the enrollment credential of {}\n", a.host))),
            Command::HostAliasSet { host, aliases, output } => {
                let json = *output == Output::Json;
                outcome(client.set_aliases(host, aliases.clone()).await, |h| if json { json_text(&h) } else { Ok(host_detail(&h)) })
            }
            Command::HostApprove(a) => outcome(client.approve(&a.host).await, |h| Ok(host_detail(&h))),
            Command::HostDelete(a) => outcome(client.delete_host(&a.host).await, |()| Ok(format!("deleted {}\n", a.host))),
            Command::Attest(a) => {
                let json = a.output == Output::Json;
                outcome(client.attest(&a.host).await, |v| {
                    if json {
                        return json_text(&v);
                    }
                    let mut out = format!("{}: {} at {}{}\n", a.host, v.trust_lvl.as_str(), v.at, v.policy.map(|p| format!(" (policy {p})")).unwrap_or_default());
                    for r in v.reasons {
                        let _ = writeln!(out, "  {r}");
                    }
                    Ok(out)
                })
            }
            Command::PolicyList(a) => {
                let json = a.output == Output::Json;
                outcome(client.policies().await, |p| {
                    if json {
                        return json_text(&p);
                    }
                    let mut out = format!("{:<28} {:<8} {:<10} {}\n", "NAME", "VERSION", "BIOS PCRS", "VMM PCRS");
                    for doc in p {
                        let pcrs = |part: &str| doc[part]["pcrs"].as_array().map(|a| a.iter().map(|p| p["pcr"].to_string()).collect::<Vec<_>>().join(",")).unwrap_or_default();
                        let _ = writeln!(out, "{:<28} {:<8} {:<10} {}", doc["name"].as_str().unwrap_or("?"), doc["version"], pcrs("bios"), pcrs("vmm"));
                    }
                    Ok(out)
                })
            }
            Command::PolicyCreate { file } => {
                let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
                let doc: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
                outcome(client.create_policy(&doc).await, |d| Ok(format!("created policy {} version {}\n", d["name"].as_str().unwrap_or("?"), d["version"])))
            }
            Command::PolicyImport { host, name, bios_pcrs, vmm_pcrs, vmm_events, apply, force } => {
                let request = json!({"host": host, "name": name, "bios_pcrs": bios_pcrs, "vmm_pcrs": vmm_pcrs, "vmm_events": vmm_events, "force": force});
                let draft = match client.import_policy(&request).await {
                    Ok(d) => d,
                    Err(ClientError::Status { status, message, .. }) if (400..500).contains(&status) => return Ok(Outcome::Refused(message)),
                    Err(e) => return Err(e.into()),
                };
                if *apply {
                    outcome(client.create_policy(&draft).await, |d| Ok(format!("created policy {} version {}\n", d["name"].as_str().unwrap_or("?"), d["version"])))
                } else {
                    crate::emit(&json_text(&draft)?);
                    Ok(Outcome::Success)
                }
            }
            Command::Quote(_) | Command::Eventlog(_) | Command::Compute(_) | Command::Dev(_) => Err(anyhow!("not an attestation-server command")),
        }
    })
}
