//! `trustpool quote verify`: checks what tpm2-tools produced, taking the files
//! `tpm2_checkquote` takes.

use anyhow::{Context as _, anyhow};
use serde_json::json;
use trustpool_evidence::alg::{hex_string, parse_hex};
use trustpool_evidence::spki::{parse_spki_der, parse_spki_pem};
use trustpool_evidence::tpm2_tools::parse_pcr_file;
use trustpool_evidence::{
    Attest, AttestationKey, Attested, Challenge, EventLog, KeyProvenance, PcrSelection, Public,
    QuoteEvidence, Signature, VerifyOptions, replay, verify_quote,
};

use crate::Outcome;
use crate::cli::{Output, QuoteVerifyArgs};
use crate::commands::read_input;
use crate::view;

/// Loads the AK: TPM2B_PUBLIC, TPMT_PUBLIC, PEM or DER. A failed AK check is a refusal
/// (exit 1); a file that is none of these is unusable input (exit 2).
fn load_key(
    bytes: &[u8],
    options: VerifyOptions,
) -> anyhow::Result<Result<AttestationKey, String>> {
    let public = Public::parse_tpm2b(bytes).or_else(|_| Public::parse(bytes));
    if let Ok(public) = public {
        return Ok(AttestationKey::new(public, options)
            .map_err(|e| format!("attestation key rejected: {e}")));
    }
    let key = match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            parse_spki_pem(text).context("PEM public key")?
        }
        _ => parse_spki_der(bytes)
            .map_err(|e| anyhow!("not a TPM2B_PUBLIC, TPMT_PUBLIC, PEM or DER public key ({e})"))?,
    };
    Ok(Ok(AttestationKey::from_bare_key(key, options)))
}

pub(crate) fn verify(args: &QuoteVerifyArgs) -> anyhow::Result<Outcome> {
    let options = VerifyOptions {
        allow_sha1: args.allow_sha1,
    };
    let key_bytes = read_input(&args.public)?;
    let message = read_input(&args.message)?;
    let sig_bytes = read_input(&args.signature)?;
    let pcr_bytes = read_input(&args.pcrs)?;
    let nonce = parse_hex(args.nonce.trim_start_matches("0x"))
        .ok_or_else(|| anyhow!("--nonce is not hex: {}", args.nonce))?;

    let ak = load_key(&key_bytes, options).with_context(|| format!("{}", args.public.display()))?;
    let attest = Attest::parse(&message)
        .with_context(|| format!("{} is not a TPMS_ATTEST", args.message.display()))?;
    let signature = Signature::parse(&sig_bytes)
        .with_context(|| format!("{} is not a TPMT_SIGNATURE", args.signature.display()))?;
    let selection = match &args.pcr_list {
        Some(list) => PcrSelection::parse_list(list)
            .ok_or_else(|| anyhow!("--pcr-list is not a PCR list like sha256:0,1,2: {list}"))?,
        None => match &attest.attested {
            Attested::Quote(q) => q.pcr_select.clone(),
            Attested::Other { .. } => PcrSelection::default(),
        },
    };
    let quoted_selection = match &attest.attested {
        Attested::Quote(q) => Some(&q.pcr_select),
        Attested::Other { .. } => None,
    };
    let pcrs = parse_pcr_file(&pcr_bytes, quoted_selection).with_context(|| {
        format!(
            "{} is not a tpm2-tools PCR file for this quote",
            args.pcrs.display()
        )
    })?;
    let log_bytes = args.eventlog.as_deref().map(read_input).transpose()?;
    let log = log_bytes
        .as_deref()
        .map(EventLog::parse)
        .transpose()
        .with_context(|| {
            format!(
                "{} is not a TCG event log",
                args.eventlog
                    .as_deref()
                    .unwrap_or_else(|| "".as_ref())
                    .display()
            )
        })?;

    let mut report = json!({
        "quote": view::attest(&attest),
        "signature": view::signature(&signature),
        "pcrs": view::pcrs(&pcrs),
    });
    let refuse = |reason: String, mut report: serde_json::Value| {
        if args.output == Output::Json {
            report["valid"] = json!(false);
            report["error"] = json!(reason);
            crate::emit(&format!("{report:#}\n"));
        }
        Ok(Outcome::Refused(reason))
    };
    let ak = match ak {
        Ok(ak) => ak,
        Err(reason) => return refuse(reason, report),
    };
    let challenge = Challenge {
        nonce: &nonce,
        selection: &selection,
    };
    let evidence = QuoteEvidence {
        attest: &message,
        signature: &sig_bytes,
        pcrs: &pcrs,
    };
    let verified = match verify_quote(&ak, &challenge, &evidence) {
        Ok(v) => v,
        Err(e) => return refuse(format!("quote rejected: {e}"), report),
    };
    let mut log_summary = String::new();
    if let Some(log) = &log {
        let replayed = match replay(log) {
            Ok(r) => r,
            Err(e) => return refuse(format!("event log rejected: {e}"), report),
        };
        report["event_log"] = view::event_log(log, Some(&replayed));
        if let Err(e) = replayed.verify_against(&verified) {
            return refuse(format!("event log rejected: {e}"), report);
        }
        log_summary = format!(
            "; event log ({} events) replays to every quoted PCR",
            log.events.len()
        );
    }
    let bare = ak.provenance() == KeyProvenance::BareKey;
    if bare {
        eprintln!(
            "trustpool: warning: {} is a bare public key: the AK's TPM attributes (restricted, fixedTPM …) were not checked",
            args.public.display()
        );
    }
    if args.output == Output::Json {
        report["valid"] = json!(true);
        report["ak_attributes_checked"] = json!(!bare);
        crate::emit(&format!("{report:#}\n"));
    } else {
        crate::emit(&format!(
            "quote OK: {}-{} signature by {}, nonce {} matches, PCRs {} match pcrDigest{}\n",
            signature.scheme.name(),
            verified.hash(),
            ak.key().describe(),
            hex_string(&nonce),
            verified.selection(),
            log_summary
        ));
    }
    Ok(Outcome::Success)
}
