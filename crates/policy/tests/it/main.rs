//! Appraisal against real verified evidence (quotes built with the software AK, logs with
//! the evidence crate's writer): every reason has a case where only it occurs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use trustpool_evidence::event_log::writer::EventLogWriter;
use trustpool_evidence::{
    AttestationKey, Challenge, EventLog, EventType, HashAlg, PcrIndex, PcrSelection, PcrSet,
    PcrValues, QuoteEvidence, VerifiedQuote, VerifyOptions, replay, verify_quote,
};
use trustpool_policy::{
    Evidence, ImportOptions, Part, Policy, PolicyDocument, PolicyError, Reason, Verdict,
    VerifiedLog, appraise, from_evidence,
};
use trustpool_testkit::attest::AttestBuilder;
use trustpool_testkit::soft_ak::SoftAk;

fn pcr(i: u8) -> PcrIndex {
    PcrIndex::new(i).unwrap()
}

/// What a host booted.
#[derive(Clone)]
struct Boot {
    bios: &'static str,
    kernel: &'static str,
    initrd: Option<&'static str>,
}

const GOOD: Boot = Boot {
    bios: "BIOS 1.0",
    kernel: "kernel 6.1.0-56",
    initrd: Some("initrd 6.1.0-56"),
};

/// A verified quote of PCR 0, 1, 17, 18, 19 (as `quoted`) and the verified log.
struct Host {
    log_bytes: Vec<u8>,
    quote: VerifiedQuote,
}

impl Host {
    fn boot(boot: &Boot, quoted: &[u8]) -> Self {
        let mut w = EventLogWriter::new(&[HashAlg::Sha256]);
        w.measure(pcr(0), EventType::EV_S_CRTM_VERSION, b"v\0");
        w.measure(
            pcr(0),
            EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2,
            boot.bios.as_bytes(),
        );
        w.measure(pcr(1), EventType::EV_PLATFORM_CONFIG_FLAGS, b"SMT=on");
        w.event(
            pcr(17),
            EventType::EV_TXT_HASH_START,
            &[HashAlg::Sha256.hash(b"ACM")],
            b"SINIT ACM",
        );
        w.event(
            pcr(18),
            EventType::EV_IPL,
            &[HashAlg::Sha256.hash(boot.kernel.as_bytes())],
            b"vmlinuz",
        );
        if let Some(initrd) = boot.initrd {
            w.event(
                pcr(19),
                EventType::EV_IPL,
                &[HashAlg::Sha256.hash(initrd.as_bytes())],
                b"initrd",
            );
        }
        Self::from_log(w.to_bytes(), quoted)
    }

    /// A verified quote of `quoted` over what `log_bytes` replays to.
    fn from_log(log_bytes: Vec<u8>, quoted: &[u8]) -> Self {
        let replayed = replay(&EventLog::parse(&log_bytes).unwrap()).unwrap();
        let mut values = PcrValues::new();
        for i in quoted {
            values.insert(pcr(*i), *replayed.value(HashAlg::Sha256, pcr(*i)).unwrap());
        }
        let ak = SoftAk::p256();
        let nonce = [4u8; 32];
        let selection = PcrSelection::new(vec![(
            HashAlg::Sha256,
            PcrSet::from_indices(quoted.iter().map(|i| pcr(*i))),
        )])
        .unwrap();
        let message = AttestBuilder::quote(&nonce, &values, HashAlg::Sha256).build();
        let signature = ak.sign(&message);
        let key = AttestationKey::new(ak.public(), VerifyOptions::default()).unwrap();
        let quote = verify_quote(
            &key,
            &Challenge {
                nonce: &nonce,
                selection: &selection,
            },
            &QuoteEvidence {
                attest: &message,
                signature: &signature,
                pcrs: &values,
            },
        )
        .unwrap();
        Self { log_bytes, quote }
    }

    /// Appraises with or without its log.
    fn appraise(&self, policies: &[Policy], with_log: bool) -> Verdict {
        let log = EventLog::parse(&self.log_bytes).unwrap();
        let proof = replay(&log).unwrap().verify_against(&self.quote).unwrap();
        let evidence = Evidence {
            quote: &self.quote,
            log: with_log.then(|| VerifiedLog::new(&log, proof)),
        };
        appraise(policies, &evidence)
    }

    fn import(&self, name: &str, vmm_events: bool) -> Policy {
        let log = EventLog::parse(&self.log_bytes).unwrap();
        let proof = replay(&log).unwrap().verify_against(&self.quote).unwrap();
        let evidence = Evidence {
            quote: &self.quote,
            log: Some(VerifiedLog::new(&log, proof)),
        };
        let options = ImportOptions {
            bank: HashAlg::Sha256,
            bios_pcrs: vec![pcr(0)],
            vmm_pcrs: vec![pcr(17), pcr(18), pcr(19)],
            vmm_events,
        };
        from_evidence(name, 1, &evidence, &options).unwrap()
    }
}

const ALL: [u8; 5] = [0, 1, 17, 18, 19];

fn only_reasons(verdict: &Verdict) -> Vec<Reason> {
    match verdict {
        Verdict::Untrusted { mismatches } => {
            mismatches.iter().flat_map(|(_, _, r)| r.clone()).collect()
        }
        other => panic!("expected untrusted, got {other:?}"),
    }
}

#[test]
fn the_golden_host_is_trusted_by_its_own_policy() {
    let golden = Host::boot(&GOOD, &ALL);
    for events in [false, true] {
        let policy = golden.import("golden", events);
        assert_eq!(
            golden.appraise(&[policy], true),
            Verdict::Trusted {
                policy: "golden".into(),
                version: 1
            }
        );
    }
}

#[test]
fn a_changed_bios_is_untrusted_naming_pcr0() {
    let policy = Host::boot(&GOOD, &ALL).import("golden", false);
    let tampered = Host::boot(
        &Boot {
            bios: "BIOS 1.0 (modified)",
            ..GOOD
        },
        &ALL,
    );
    let verdict = tampered.appraise(&[policy], true);
    let reasons = only_reasons(&verdict);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        matches!(&reasons[0], Reason::PcrMismatch { part: Part::Bios, pcr, .. } if pcr.get() == 0)
    );
    let text = verdict.reasons()[0].clone();
    assert!(
        text.starts_with(
            "policy golden v1: BIOS: PCR 0 (sha256) differs from the policy: expected "
        ),
        "{text}"
    );
    assert!(text.contains(", got "), "{text}");
}

#[test]
fn event_rules_allow_a_second_kernel_without_new_pcr_values() {
    let golden = Host::boot(&GOOD, &ALL);
    let mut policy = golden.import("golden", true);
    let upgraded = Host::boot(
        &Boot {
            kernel: "kernel 6.1.0-57",
            ..GOOD
        },
        &ALL,
    );
    let reasons = only_reasons(&upgraded.appraise(std::slice::from_ref(&policy), true));
    assert!(
        matches!(&reasons[..], [Reason::EventNotAllowed { part: Part::Vmm, description, .. }, Reason::RequiredEventMissing { .. }] if description == "vmlinuz"),
        "{reasons:?}"
    );
    // The administrator allows the new kernel: the same rule now accepts both digests.
    let mut doc = PolicyDocument::from(&policy);
    let kernel_rule = doc
        .vmm
        .pcrs
        .iter_mut()
        .find(|p| p.pcr == 18)
        .unwrap()
        .events
        .as_mut()
        .unwrap();
    kernel_rule[0]
        .digests
        .push(HashAlg::Sha256.hash(b"kernel 6.1.0-57").to_hex());
    doc.version = 2;
    policy = Policy::try_from(&doc).unwrap();
    assert!(
        upgraded
            .appraise(std::slice::from_ref(&policy), true)
            .is_trusted()
    );
    assert!(
        golden.appraise(&[policy], true).is_trusted(),
        "both kernels are accepted"
    );
}

#[test]
fn any_accepted_policy_may_match() {
    let old = Host::boot(&GOOD, &ALL).import("old", false);
    let new_host = Host::boot(
        &Boot {
            bios: "BIOS 2.0",
            ..GOOD
        },
        &ALL,
    );
    let new = new_host.import("new", false);
    assert_eq!(
        new_host.appraise(&[old.clone(), new], true),
        Verdict::Trusted {
            policy: "new".into(),
            version: 1
        }
    );
    assert!(!new_host.appraise(&[old], true).is_trusted());
}

#[test]
fn a_pcr_the_quote_does_not_cover_is_untrusted() {
    let policy = Host::boot(&GOOD, &ALL).import("golden", false);
    let partial = Host::boot(&GOOD, &[0, 1, 17, 18]);
    let reasons = only_reasons(&partial.appraise(&[policy], true));
    assert!(
        matches!(&reasons[..], [Reason::PcrNotQuoted { part: Part::Vmm, pcr, .. }] if pcr.get() == 19),
        "{reasons:?}"
    );
}

#[test]
fn event_rules_without_a_log_are_untrusted() {
    let golden = Host::boot(&GOOD, &ALL);
    let policy = golden.import("golden", true);
    let reasons = only_reasons(&golden.appraise(&[policy], false));
    assert!(
        reasons.iter().all(|r| matches!(
            r,
            Reason::NoEventLog {
                part: Part::Vmm,
                ..
            }
        )),
        "{reasons:?}"
    );
    assert_eq!(reasons.len(), 3);
}

#[test]
fn a_missing_required_event_is_named() {
    let policy = Host::boot(&GOOD, &ALL).import("golden", true);
    let no_initrd = Host::boot(
        &Boot {
            initrd: None,
            ..GOOD
        },
        &ALL,
    );
    let reasons = only_reasons(&no_initrd.appraise(&[policy], true));
    assert!(
        matches!(&reasons[..], [Reason::RequiredEventMissing { pcr, description: Some(d), .. }] if pcr.get() == 19 && d == "initrd"),
        "{reasons:?}"
    );
}

#[test]
fn no_policy_is_never_trusted() {
    let golden = Host::boot(&GOOD, &ALL);
    assert_eq!(golden.appraise(&[], true), Verdict::NoPolicy);
    assert!(!Verdict::NoPolicy.is_trusted());
}

#[test]
fn documents_round_trip_and_refuse_what_would_match_everything() {
    let policy = Host::boot(&GOOD, &ALL).import("golden", true);
    let doc = PolicyDocument::from(&policy);
    let json = serde_json::to_string(&doc).unwrap();
    let back: PolicyDocument = serde_json::from_str(&json).unwrap();
    assert_eq!(Policy::try_from(&back).unwrap(), policy);

    let mut empty = doc.clone();
    empty.bios.pcrs.clear();
    assert_eq!(
        Policy::try_from(&empty).unwrap_err(),
        PolicyError::Empty(Part::Bios)
    );
    let mut bad = doc.clone();
    bad.bios.pcrs[0].value = Some("abcd".into());
    assert!(
        Policy::try_from(&bad)
            .unwrap_err()
            .to_string()
            .contains("bios.pcrs[0].value")
    );
    let mut both = doc.clone();
    both.vmm.pcrs[0].value = Some(HashAlg::Sha256.hash(b"x").to_hex());
    assert!(
        Policy::try_from(&both)
            .unwrap_err()
            .to_string()
            .contains("exactly one of value and events")
    );
    let mut no_digest = doc;
    no_digest.vmm.pcrs[0].events.as_mut().unwrap()[0]
        .digests
        .clear();
    assert!(matches!(
        Policy::try_from(&no_digest).unwrap_err(),
        PolicyError::NoDigests { .. }
    ));
    assert!(
        serde_json::from_str::<PolicyDocument>(
            r#"{"name":"x","version":1,"bios":{"pcrs":[]},"vmm":{"pcrs":[]},"extra":1}"#
        )
        .is_err()
    );
}

/// A golden host without a dynamic launch has PCR 17–19 at their reset value (all ones): a
/// VMM part of Value rules on them would only say "no launch happened" and accept any OS.
/// The import leaves them out, takes the UEFI boot chain instead and says so; with nothing
/// measured at all it refuses.
#[test]
fn import_refuses_reset_values_and_takes_the_uefi_chain() {
    let digest = |byte: u8| {
        trustpool_evidence::Digest::from_hex(HashAlg::Sha256, &format!("{byte:02x}").repeat(32))
            .unwrap()
    };
    let mut values = PcrValues::new();
    values.insert(pcr(0), digest(0x11));
    for i in [17, 18, 19] {
        values.insert(pcr(i), digest(0xff));
    }
    for i in [4, 7, 8] {
        values.insert(pcr(i), digest(0x40 + i));
    }
    values.insert(pcr(9), digest(0x00));
    let options = ImportOptions {
        bank: HashAlg::Sha256,
        bios_pcrs: vec![pcr(0)],
        vmm_pcrs: vec![pcr(17), pcr(18), pcr(19)],
        vmm_events: false,
    };
    let draft = trustpool_policy::draft("golden", 1, &values, None, &options).unwrap();
    let vmm: Vec<u8> = draft
        .policy
        .required_pcrs()
        .into_iter()
        .map(|(_, p)| p.get())
        .filter(|p| *p != 0)
        .collect();
    assert_eq!(vmm, vec![4, 7, 8], "PCR 9 is at its reset value too");
    assert!(
        draft
            .notes
            .iter()
            .any(|n| n.contains("17, 18, 19") && n.contains("reset")),
        "{:?}",
        draft.notes
    );
    assert!(
        draft
            .notes
            .iter()
            .any(|n| n.contains("UEFI boot chain instead: PCR 4, 7, 8")),
        "{:?}",
        draft.notes
    );
    // Nothing measured anywhere in the VMM/OS part: refused, naming the part.
    for i in [4, 7, 8] {
        values.insert(pcr(i), digest(0x00));
    }
    let err = trustpool_policy::draft("golden", 1, &values, None, &options).unwrap_err();
    assert!(err.to_string().contains("reset value"), "{err}");
}

/// A measured boot extends in a fixed order, and an imported event policy keeps it: a log
/// whose boot loader comes after the kernel it loaded (same digests, so the same PCR
/// allow-list otherwise) is refused, naming the event (#3: the boot loader, second).
#[test]
fn imported_event_rules_keep_the_boot_order() {
    let log = |order: [(&[u8], &[u8]); 2]| {
        let mut w = EventLogWriter::new(&[HashAlg::Sha256]);
        w.measure(pcr(0), EventType::EV_S_CRTM_VERSION, b"v\0");
        for (what, description) in order {
            w.event(
                pcr(4),
                EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
                &[HashAlg::Sha256.hash(what)],
                description,
            );
        }
        w.to_bytes()
    };
    type Measured<'a> = (&'a [u8], &'a [u8]);
    let grub: Measured<'_> = (b"grubx64.efi 2.12", b"grub");
    let kernel: Measured<'_> = (b"vmlinuz 6.1", b"vmlinuz");
    let golden = Host::from_log(log([grub, kernel]), &[0, 4]);
    let options = ImportOptions {
        bank: HashAlg::Sha256,
        bios_pcrs: vec![pcr(0)],
        vmm_pcrs: vec![pcr(4)],
        vmm_events: true,
    };
    let parsed = EventLog::parse(&golden.log_bytes).unwrap();
    let policy =
        trustpool_policy::from_values("golden", 1, golden.quote.pcrs(), Some(&parsed), &options)
            .unwrap();
    assert!(
        golden
            .appraise(std::slice::from_ref(&policy), true)
            .is_trusted()
    );
    let swapped = Host::from_log(log([kernel, grub]), &[0, 4]);
    let reasons = only_reasons(&swapped.appraise(std::slice::from_ref(&policy), true));
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, Reason::EventOutOfOrder { pcr, event: 3, .. } if pcr.get() == 4)),
        "{reasons:?}"
    );
    // Unordered rules (a document without "ordered") accept either order.
    let mut doc = PolicyDocument::from(&policy);
    for p in &mut doc.vmm.pcrs {
        p.ordered = false;
    }
    let unordered = Policy::try_from(&doc).unwrap();
    assert!(swapped.appraise(&[unordered], true).is_trusted());
}
