//! JSON views of evidence structures (for `--output json`) and their text forms.

use serde_json::{Map, Value, json};
use trustpool_evidence::alg::hex_string;
use trustpool_evidence::event_log::decode;
use trustpool_evidence::{Attest, Attested, EventLog, HashAlg, PcrValues, ReplayedLog, Signature};

pub(crate) fn attest(a: &Attest<'_>) -> Value {
    let mut v = json!({
        "magic": format!("{:#010x}", a.magic),
        "type": format!("{:#06x}", a.tag()),
        "qualified_signer": hex_string(a.qualified_signer),
        "extra_data": hex_string(a.extra_data),
        "clock_info": {
            "clock": a.clock_info.clock,
            "reset_count": a.clock_info.reset_count,
            "restart_count": a.clock_info.restart_count,
            "safe": a.clock_info.safe,
        },
        "firmware_version": format!("{:#018x}", a.firmware_version),
    });
    if let (Attested::Quote(q), Some(obj)) = (&a.attested, v.as_object_mut()) {
        obj.insert("pcr_select".into(), json!(q.pcr_select.to_string()));
        obj.insert("pcr_digest".into(), json!(hex_string(q.pcr_digest)));
    }
    v
}

pub(crate) fn signature(s: &Signature<'_>) -> Value {
    json!({ "scheme": s.scheme.name(), "hash": s.hash.name() })
}

pub(crate) fn pcrs(values: &PcrValues) -> Value {
    let mut banks = Map::new();
    for alg in values.algs() {
        let bank: Map<String, Value> = values
            .bank(alg)
            .map(|(i, d)| (i.to_string(), json!(d.to_hex())))
            .collect();
        banks.insert(alg.name().into(), Value::Object(bank));
    }
    Value::Object(banks)
}

pub(crate) fn event_log(log: &EventLog<'_>, replayed: Option<&ReplayedLog>) -> Value {
    let events: Vec<Value> = log
        .events
        .iter()
        .map(|e| {
            let digests: Map<String, Value> = e
                .digests
                .iter()
                .map(|d| (d.alg().name().into(), json!(d.to_hex())))
                .collect();
            json!({
                "number": e.number,
                "pcr": e.pcr.get(),
                "type": e.event_type.to_string(),
                "digests": digests,
                "data": decode::decode(e).to_string(),
            })
        })
        .collect();
    let banks: Vec<&str> = log.banks().into_iter().map(HashAlg::name).collect();
    json!({
        "format": format!("{:?}", log.format),
        "banks": banks,
        "events": events,
        "replayed": replayed.map(|r| pcrs(&r.values())),
    })
}
