//! Benchmarks of the verifier's hot paths (results in BENCHMARKS.md):
//! quote verification with RSA-2048 and ECC P-256 AKs over 24 SHA-256 PCRs, and event
//! log parse + replay for a ~100-event UEFI log and the real OVMF boot log.
//!
//! `cargo bench -p trustpool-evidence --bench verify`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trustpool_evidence::event_log::writer::EventLogWriter;
use trustpool_evidence::{
    AttestationKey, Challenge, EventLog, EventType, HashAlg, PcrIndex, PcrValues, QuoteEvidence,
    VerifyOptions, replay, replay_banks, verify_quote,
};
use trustpool_testkit::attest::AttestBuilder;
use trustpool_testkit::fixtures::testdata;
use trustpool_testkit::soft_ak::SoftAk;

fn quotes(c: &mut Criterion) {
    let mut values = PcrValues::new();
    for i in 0..24u8 {
        values.insert(PcrIndex::new(i).unwrap(), HashAlg::Sha256.hash(&[i]));
    }
    let selection = values.selection();
    let nonce = [0x11u8; 32];
    let mut group = c.benchmark_group("verify_quote");
    group.throughput(Throughput::Elements(1));
    for (name, ak) in [
        ("rsa2048_sha256_24pcrs", SoftAk::rsa2048()),
        ("ecc_p256_sha256_24pcrs", SoftAk::p256()),
    ] {
        let message = AttestBuilder::quote(&nonce, &values, HashAlg::Sha256).build();
        let signature = ak.sign(&message);
        let key = AttestationKey::new(ak.public(), VerifyOptions::default()).unwrap();
        let challenge = Challenge {
            nonce: &nonce,
            selection: &selection,
        };
        let evidence = QuoteEvidence {
            attest: &message,
            signature: &signature,
            pcrs: &values,
        };
        verify_quote(&key, &challenge, &evidence).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                verify_quote(black_box(&key), black_box(&challenge), black_box(&evidence)).unwrap()
            })
        });
        // Including the AK preparation (parse + attribute checks + key parse), as when a
        // server does not cache prepared keys.
        let public = ak.public();
        group.bench_function(format!("{name}_cold_key"), |b| {
            b.iter(|| {
                let key = AttestationKey::new(black_box(public.clone()), VerifyOptions::default())
                    .unwrap();
                verify_quote(&key, &challenge, &evidence).unwrap()
            });
        });
    }
    group.finish();
}

/// A UEFI-shaped log of ~100 events in three banks: firmware volumes, Secure Boot
/// variables (db/dbx-sized data), boot variables, drivers, applications, separators.
fn uefi_log_100() -> Vec<u8> {
    let mut w = EventLogWriter::new(&[HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384]);
    let pcr = |i: u8| PcrIndex::new(i).unwrap();
    w.measure(
        pcr(0),
        EventType::EV_S_CRTM_VERSION,
        &[0x31, 0, 0x2e, 0, 0x30, 0, 0, 0],
    );
    for i in 0..8u64 {
        let mut blob = Vec::new();
        blob.extend_from_slice(&(0x80_0000 + i * 0x10_0000).to_le_bytes());
        blob.extend_from_slice(&0x10_0000u64.to_le_bytes());
        let d = HashAlg::Sha256.hash(&i.to_le_bytes());
        w.event(
            pcr(0),
            EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB,
            &[d],
            &blob,
        );
    }
    for (name, size) in [
        ("SecureBoot", 1usize),
        ("PK", 900),
        ("KEK", 1600),
        ("db", 3200),
        ("dbx", 12000),
    ] {
        let mut data = vec![0xa5u8; 16];
        data.extend_from_slice(&(name.len() as u64).to_le_bytes());
        data.extend_from_slice(&(size as u64).to_le_bytes());
        for u in name.encode_utf16() {
            data.extend_from_slice(&u.to_le_bytes());
        }
        data.extend(std::iter::repeat_n(0x5au8, size));
        w.measure(pcr(7), EventType::EV_EFI_VARIABLE_DRIVER_CONFIG, &data);
    }
    for i in 0..40u8 {
        w.measure(pcr(2), EventType::EV_EFI_BOOT_SERVICES_DRIVER, &[i; 48]);
    }
    for i in 0..20u8 {
        w.measure(pcr(1), EventType::EV_EFI_VARIABLE_BOOT, &[i; 120]);
    }
    for i in 0..10u8 {
        w.measure(
            pcr(4),
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
            &[i; 80],
        );
        w.measure(pcr(9), EventType::EV_EVENT_TAG, &[i; 40]);
    }
    for i in 0..8u8 {
        w.measure(pcr(i), EventType::EV_SEPARATOR, &[0, 0, 0, 0]);
    }
    w.to_bytes()
}

fn event_logs(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_log");
    group.throughput(Throughput::Elements(1));
    let synthetic = uefi_log_100();
    let ovmf = std::fs::read(testdata().join("eventlog/ovmf-qemu/eventlog.bin")).unwrap();
    for (name, bytes) in [
        ("parse_replay_uefi_100_events_3_banks", &synthetic),
        ("parse_replay_ovmf_25_events_3_banks", &ovmf),
    ] {
        let events = EventLog::parse(bytes).unwrap().events.len();
        assert!(events >= 25, "{name}: {events}");
        group.bench_function(name, |b| {
            b.iter(|| replay(&EventLog::parse(black_box(bytes)).unwrap()).unwrap())
        });
        group.bench_function(format!("{name}_parse_only"), |b| {
            b.iter(|| EventLog::parse(black_box(bytes)).unwrap())
        });
        // What a verifier does: replay only the bank the quote covers.
        group.bench_function(format!("{name}_replay_sha256_only"), |b| {
            b.iter(|| {
                replay_banks(
                    &EventLog::parse(black_box(bytes)).unwrap(),
                    &[HashAlg::Sha256],
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, quotes, event_logs);
criterion_main!(benches);
