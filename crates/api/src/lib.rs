//! trustpool's REST contract: the request and response types of every HTTP API, shared by
//! the servers that answer and the clients that call. Serde types only — no HTTP
//! framework, no crypto. Values are validated when deserialised (a [`Nonce`] is 16–64
//! bytes, a [`PcrSelection`] names existing PCRs in ascending order), so a handler never
//! sees a malformed one.
//!
//! - [`agent`]: the host agent's API (info, quote, activate);
//! - [`enrollment`]: agent registration with the attestation server;
//! - [`compute`]: the agent's heartbeat to the scheduler;
//! - [`error`]: the error body;
//! - [`names`]: what a host name or alias may be;
//! - [`oat`]: OpenAttestation's `PollHosts`, both sides;
//! - [`sse`]: the event-stream format of the trust stream;
//! - [`time`]: RFC 3339 out, Nova's `vtime` forms in.

pub mod agent;
pub mod bytes;
pub mod compute;
pub mod enrollment;
pub mod error;
pub mod names;
pub mod nonce;
pub mod oat;
pub mod pcr;
pub mod sse;
pub mod time;
pub mod v1;

pub use bytes::{Base64Bytes, HexBytes};
pub use error::ErrorBody;
pub use nonce::{Nonce, NonceError};
pub use pcr::{HashAlgorithm, PcrBankSelection, PcrBankValues, PcrSelection, PcrSelectionError};

/// The version of these APIs, reported by every server.
pub const API_VERSION: &str = "1";

#[cfg(test)]
mod tests {
    use super::agent::QuoteRequest;
    use super::*;

    #[test]
    fn quote_request_validates_on_the_way_in() {
        let good = r#"{"nonce":"00112233445566778899aabbccddeeff","selection":[{"bank":"sha256","pcrs":[0,1,7]}]}"#;
        let req: QuoteRequest = serde_json::from_str(good).unwrap();
        assert!(req.include_event_log);
        assert_eq!(req.selection.banks()[0].pcrs, vec![0, 1, 7]);
        for (bad, why) in [
            (
                r#"{"nonce":"0011","selection":[{"bank":"sha256","pcrs":[0]}]}"#,
                "nonce is 2 bytes",
            ),
            (
                r#"{"nonce":"zz112233445566778899aabbccddeeff","selection":[{"bank":"sha256","pcrs":[0]}]}"#,
                "not hex",
            ),
            (
                r#"{"nonce":"00112233445566778899aabbccddeeff","selection":[{"bank":"sha256","pcrs":[24]}]}"#,
                "PCR 24",
            ),
            (
                r#"{"nonce":"00112233445566778899aabbccddeeff","selection":[{"bank":"sha256","pcrs":[7,1]}]}"#,
                "ascending",
            ),
            (
                r#"{"nonce":"00112233445566778899aabbccddeeff","selection":[]}"#,
                "at least one bank",
            ),
            (
                r#"{"nonce":"00112233445566778899aabbccddeeff","selection":[{"bank":"md5","pcrs":[0]}]}"#,
                "unknown variant",
            ),
            (
                r#"{"nonce":"00112233445566778899aabbccddeeff","selection":[{"bank":"sha256","pcrs":[0]},{"bank":"sha256","pcrs":[1]}]}"#,
                "twice",
            ),
            (
                r#"{"nonce":"00112233445566778899aabbccddeeff","selection":[{"bank":"sha256","pcrs":[0]}],"x":1}"#,
                "unknown field",
            ),
        ] {
            let err = serde_json::from_str::<QuoteRequest>(bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn binary_values_round_trip() {
        let b = Base64Bytes(vec![0, 1, 254, 255]);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, r#""AAH+/w==""#);
        assert_eq!(serde_json::from_str::<Base64Bytes>(&json).unwrap(), b);
        let h = HexBytes(vec![0xab, 0x01]);
        assert_eq!(serde_json::to_string(&h).unwrap(), r#""ab01""#);
        assert!(serde_json::from_str::<HexBytes>(r#""+f""#).is_err());
        assert!(serde_json::from_str::<Base64Bytes>(r#""!!""#).is_err());
    }
}
