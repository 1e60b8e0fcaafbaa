//! Event logs: the real OVMF measured boot replays to the PCRs firmware left in the TPM and
//! to its quote; replay rules (StartupLocality, DRTM PCRs, legacy SHA-1); strict parsing.

use trustpool_evidence::event_log::decode::{self, EventData};
use trustpool_evidence::event_log::writer::EventLogWriter;
use trustpool_evidence::{
    AttestationKey, Challenge, Digest, EventLog, EventType, HashAlg, LogFormat, ParseError,
    PcrIndex, PcrValues, Public, QuoteEvidence, ReplayError, VerifyOptions, Writer, replay,
    verify_quote,
};
use trustpool_testkit::fixtures::{QuoteFixture, testdata};

fn pcr(i: u8) -> PcrIndex {
    PcrIndex::new(i).unwrap()
}

fn ovmf() -> Vec<u8> {
    std::fs::read(testdata().join("eventlog/ovmf-qemu/eventlog.bin")).unwrap()
}

/// The PCR values the guest read from sysfs after firmware and kernel ran.
fn firmware_pcrs() -> PcrValues {
    let text = std::fs::read_to_string(testdata().join("eventlog/ovmf-qemu/pcrs.txt")).unwrap();
    let mut values = PcrValues::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let alg = HashAlg::from_name(parts[1]).unwrap();
        values.insert(
            pcr(parts[2].parse().unwrap()),
            Digest::from_hex(alg, parts[3]).unwrap(),
        );
    }
    values
}

#[test]
fn ovmf_log_parses_with_three_banks() {
    let bytes = ovmf();
    let log = EventLog::parse(&bytes).unwrap();
    assert_eq!(log.format, LogFormat::CryptoAgile);
    assert_eq!(
        log.banks(),
        vec![HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384]
    );
    assert_eq!(log.events.len(), 25);
    assert!(log.events.iter().skip(1).all(|e| e.digests.len() == 3));
}

#[test]
fn ovmf_log_replays_to_the_pcrs_firmware_left() {
    let bytes = ovmf();
    let replayed = replay(&EventLog::parse(&bytes).unwrap()).unwrap();
    let firmware = firmware_pcrs();
    let mut compared = 0;
    for alg in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384] {
        for (index, value) in firmware.bank(alg) {
            // PCR 10 is IMA's: the kernel extends its boot_aggregate there, and that
            // measurement is in the IMA log, not the firmware log.
            if index.get() == 10 {
                continue;
            }
            assert_eq!(replayed.value(alg, index), Some(value), "{alg}:{index}");
            compared += 1;
        }
    }
    assert_eq!(compared, 3 * 23);
}

#[test]
fn ovmf_log_matches_the_quote_from_that_boot() {
    let f = QuoteFixture::load("eventlog/ovmf-qemu");
    let ak = AttestationKey::new(
        Public::parse_tpm2b(&f.ak_pub).unwrap(),
        VerifyOptions::default(),
    )
    .unwrap();
    let quote = verify_quote(
        &ak,
        &Challenge {
            nonce: &f.nonce,
            selection: &f.selection,
        },
        &QuoteEvidence {
            attest: &f.message,
            signature: &f.signature,
            pcrs: &f.pcrs,
        },
    )
    .unwrap();
    let bytes = f.event_log.unwrap();
    replay(&EventLog::parse(&bytes).unwrap())
        .unwrap()
        .verify_against(&quote)
        .unwrap();
}

#[test]
fn a_changed_event_is_named_in_the_mismatch() {
    let mut bytes = ovmf();
    let log = EventLog::parse(&bytes).unwrap();
    // Event #2 is the first firmware volume (PCR 0); flip a bit in its SHA-256 digest.
    let event = &log.events[2];
    assert_eq!(event.event_type, EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB);
    // pcr(4) type(4) count(4) sha1 id(2)+20, sha256 id(2) then the digest.
    let at = event.offset + 12 + 22 + 2;
    drop(log);
    bytes[at] ^= 1;
    let replayed = replay(&EventLog::parse(&bytes).unwrap()).unwrap();
    let err = replayed
        .compare(&QuoteFixture::load("eventlog/ovmf-qemu").pcrs)
        .unwrap_err();
    let ReplayError::Mismatch(m) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (m.bank, m.index, m.last_event, m.events),
        (HashAlg::Sha256, pcr(0), Some(14), 4)
    );
    assert!(err.to_string().contains("PCR sha256:0"), "{err}");
}

#[test]
fn a_bank_the_log_lacks_is_named() {
    let bytes = ovmf();
    let replayed = replay(&EventLog::parse(&bytes).unwrap()).unwrap();
    let mut values = PcrValues::new();
    values.insert(pcr(0), Digest::zero(HashAlg::Sha512));
    assert_eq!(
        replayed.compare(&values).unwrap_err(),
        ReplayError::MissingBank {
            bank: HashAlg::Sha512
        }
    );
}

#[test]
fn ovmf_events_decode_for_humans() {
    let bytes = ovmf();
    let log = EventLog::parse(&bytes).unwrap();
    let text: Vec<String> = log.events.iter().map(decode::description).collect();
    assert_eq!(decode::decode(&log.events[0]), EventData::SpecId);
    assert_eq!(text[4], "SecureBoot");
    assert_eq!(text[11], "BootOrder");
    assert_eq!(text[13], "Calling EFI Application from Boot Option");
    assert_eq!(decode::decode(&log.events[14]), EventData::Separator(0));
    assert_eq!(text[22], "Linux initrd");
    assert!(matches!(
        decode::decode(&log.events[10]),
        EventData::ImageLoad { .. }
    ));
}

#[test]
fn every_prefix_is_truncated_or_ends_on_an_event() {
    let bytes = ovmf();
    let log = EventLog::parse(&bytes).unwrap();
    let boundaries: Vec<usize> = log
        .events
        .iter()
        .skip(1)
        .map(|e| e.offset)
        .chain([bytes.len()])
        .collect();
    for len in 0..bytes.len() {
        match EventLog::parse(&bytes[..len]) {
            Ok(short) => assert!(
                boundaries.contains(&len),
                "{len}: parsed {} events",
                short.events.len()
            ),
            Err(e) => assert!(matches!(e, ParseError::Truncated { .. }), "{len}: {e}"),
        }
    }
}

#[test]
fn byte_flips_never_panic() {
    let bytes = ovmf();
    for i in 0..bytes.len() {
        for bit in [0, 3, 7] {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            if let Ok(log) = EventLog::parse(&b) {
                let _ = replay(&log);
                for e in &log.events {
                    let _ = decode::decode(e).to_string();
                }
            }
        }
    }
}

#[test]
fn written_logs_parse_back_and_replay() {
    let mut w = EventLogWriter::new(&[HashAlg::Sha256, HashAlg::Sha384]);
    w.measure(pcr(0), EventType::EV_S_CRTM_VERSION, b"1.0\0");
    w.measure(pcr(0), EventType::EV_SEPARATOR, &[0, 0, 0, 0]);
    let blob = HashAlg::Sha256.hash(b"bios image");
    w.event(
        pcr(0),
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB,
        &[blob],
        &[0u8; 16],
    );
    let bytes = w.to_bytes();
    let log = EventLog::parse(&bytes).unwrap();
    assert_eq!(log.events.len(), 4);
    assert_eq!(log.events[3].digest(HashAlg::Sha256), Some(&blob));
    let replayed = replay(&log).unwrap();
    let mut want = Digest::zero(HashAlg::Sha256);
    for d in [
        HashAlg::Sha256.hash(b"1.0\0"),
        HashAlg::Sha256.hash(&[0, 0, 0, 0]),
        blob,
    ] {
        want = HashAlg::Sha256.extend(&want, d.as_bytes());
    }
    assert_eq!(replayed.value(HashAlg::Sha256, pcr(0)), Some(&want));
    assert_eq!(
        replayed.value(HashAlg::Sha256, pcr(1)),
        Some(&Digest::zero(HashAlg::Sha256))
    );
}

#[test]
fn startup_locality_sets_pcr0_initial_value() {
    let mut w = EventLogWriter::new(&[HashAlg::Sha256]);
    w.startup_locality(3);
    w.measure(pcr(0), EventType::EV_S_CRTM_VERSION, b"v");
    let bytes = w.to_bytes();
    let replayed = replay(&EventLog::parse(&bytes).unwrap()).unwrap();
    let mut init = [0u8; 32];
    init[31] = 3;
    let want = HashAlg::Sha256.extend(
        &Digest::new(HashAlg::Sha256, &init).unwrap(),
        HashAlg::Sha256.hash(b"v").as_bytes(),
    );
    assert_eq!(replayed.value(HashAlg::Sha256, pcr(0)), Some(&want));
    assert_eq!(replayed.startup_locality(), Some(3));

    let mut late = EventLogWriter::new(&[HashAlg::Sha256]);
    late.measure(pcr(0), EventType::EV_S_CRTM_VERSION, b"v");
    late.startup_locality(3);
    let bytes = late.to_bytes();
    assert_eq!(
        replay(&EventLog::parse(&bytes).unwrap()).unwrap_err(),
        ReplayError::LateStartupLocality { event: 2 }
    );
}

#[test]
fn drtm_pcrs_start_at_ones_without_a_launch_and_zero_with_one() {
    let w = EventLogWriter::new(&[HashAlg::Sha256]);
    let bytes = w.to_bytes();
    let replayed = replay(&EventLog::parse(&bytes).unwrap()).unwrap();
    for i in 17..=22 {
        assert_eq!(
            replayed.value(HashAlg::Sha256, pcr(i)),
            Some(&Digest::ones(HashAlg::Sha256)),
            "PCR {i}"
        );
    }
    assert_eq!(
        replayed.value(HashAlg::Sha256, pcr(23)),
        Some(&Digest::zero(HashAlg::Sha256))
    );

    let mut w = EventLogWriter::new(&[HashAlg::Sha256]);
    let acm = HashAlg::Sha256.hash(b"SINIT ACM");
    w.event(pcr(17), EventType::EV_TXT_HASH_START, &[acm], b"");
    let bytes = w.to_bytes();
    let replayed = replay(&EventLog::parse(&bytes).unwrap()).unwrap();
    // What swtpm_ioctl -h gives: PCR17 = H(0^32 ‖ H(ACM)).
    assert_eq!(
        replayed.value(HashAlg::Sha256, pcr(17)),
        Some(&HashAlg::Sha256.extend(&Digest::zero(HashAlg::Sha256), acm.as_bytes()))
    );
    assert_eq!(
        replayed.value(HashAlg::Sha256, pcr(18)),
        Some(&Digest::zero(HashAlg::Sha256))
    );
}

/// A TPM 1.2-style log: TCG_PCR_EVENT records only.
fn legacy_event(w: &mut Writer, pcr: u32, event_type: EventType, data: &[u8]) -> Digest {
    let d = HashAlg::Sha1.hash(data);
    w.u32_le(pcr)
        .u32_le(event_type.0)
        .bytes(d.as_bytes())
        .u32_le(data.len() as u32)
        .bytes(data);
    d
}

#[test]
fn legacy_sha1_logs_replay() {
    let mut w = Writer::new();
    let a = legacy_event(&mut w, 0, EventType::EV_S_CRTM_VERSION, b"crtm");
    let b = legacy_event(&mut w, 0, EventType::EV_POST_CODE, b"POST CODE");
    legacy_event(&mut w, 4, EventType::EV_IPL, b"grub");
    let bytes = w.into_bytes();
    let log = EventLog::parse(&bytes).unwrap();
    assert_eq!(log.format, LogFormat::LegacySha1);
    assert_eq!(log.events.len(), 3);
    let replayed = replay(&log).unwrap();
    let want = HashAlg::Sha1.extend(
        &HashAlg::Sha1.extend(&Digest::zero(HashAlg::Sha1), a.as_bytes()),
        b.as_bytes(),
    );
    assert_eq!(replayed.value(HashAlg::Sha1, pcr(0)), Some(&want));
    assert_eq!(decode::description(&log.events[2]), "grub");
}

#[test]
fn digest_lists_must_match_the_header() {
    let w = EventLogWriter::new(&[HashAlg::Sha256, HashAlg::Sha384]);
    let header = w.to_bytes();
    let event = |count: u32, algs: &[HashAlg]| {
        let mut e = Writer::new();
        e.u32_le(0).u32_le(EventType::EV_POST_CODE.0).u32_le(count);
        for alg in algs {
            e.u16_le(alg.tpm_id()).bytes(alg.hash(b"x").as_bytes());
        }
        e.u32_le(1).bytes(b"x");
        let mut bytes = header.clone();
        bytes.extend(e.into_bytes());
        bytes
    };
    assert!(EventLog::parse(&event(2, &[HashAlg::Sha256, HashAlg::Sha384])).is_ok());
    for (count, algs, what) in [
        (1, &[HashAlg::Sha256][..], "count"),
        (2, &[HashAlg::Sha256, HashAlg::Sha256][..], "twice"),
        (2, &[HashAlg::Sha256, HashAlg::Sha1][..], "not in Spec ID"),
    ] {
        let err = EventLog::parse(&event(count, algs)).unwrap_err();
        assert!(
            err.to_string().contains(what) || matches!(err, ParseError::Truncated { .. }),
            "{what}: {err}"
        );
    }
}

#[test]
fn pcr_index_above_23_is_refused() {
    let mut bytes = EventLogWriter::new(&[HashAlg::Sha256]).to_bytes();
    let mut e = Writer::new();
    e.u32_le(24)
        .u32_le(EventType::EV_POST_CODE.0)
        .u32_le(1)
        .u16_le(HashAlg::Sha256.tpm_id())
        .bytes(&[0; 32])
        .u32_le(0);
    bytes.extend(e.into_bytes());
    assert!(matches!(
        EventLog::parse(&bytes),
        Err(ParseError::UnexpectedValue {
            what: "TCG_PCR_EVENT2.pcrIndex",
            ..
        })
    ));
}
