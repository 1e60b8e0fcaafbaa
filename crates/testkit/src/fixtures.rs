//! The committed fixtures under `testdata/` (made by `testdata/scripts/*.sh` with swtpm
//! and tpm2-tools; provenance in `testdata/README.md`).

use std::path::{Path, PathBuf};

use trustpool_evidence::alg::parse_hex;
use trustpool_evidence::tpm2_tools::parse_pcr_file;
use trustpool_evidence::{Attest, Attested, PcrSelection, PcrValues};

/// The repository's `testdata/` directory.
#[must_use]
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// The quote fixtures made by `make-quotes.sh`, plus the quote from the OVMF boot.
pub const QUOTES: [&str; 7] = [
    "quote/rsa2048-sha256",
    "quote/rsa2048-pss-sha256",
    "quote/rsa2048-sha384",
    "quote/ecc-p256-sha256",
    "quote/ecc-p384-sha384",
    "quote/rsa2048-sha256-all",
    "eventlog/ovmf-qemu",
];

/// One tpm2-tools quote: the files `tpm2_checkquote` takes.
#[derive(Debug, Clone)]
pub struct QuoteFixture {
    /// Directory under `testdata/`.
    pub name: String,
    /// `ak.pub` (TPM2B_PUBLIC).
    pub ak_pub: Vec<u8>,
    /// `quote.msg` (TPMS_ATTEST).
    pub message: Vec<u8>,
    /// `quote.sig` (TPMT_SIGNATURE).
    pub signature: Vec<u8>,
    /// `quote.pcrs` (serialized PCR file).
    pub pcr_file: Vec<u8>,
    /// The nonce.
    pub nonce: Vec<u8>,
    /// The quote's own selection.
    pub selection: PcrSelection,
    /// The PCR values from `quote.pcrs`.
    pub pcrs: PcrValues,
    /// `eventlog.bin`, for boots.
    pub event_log: Option<Vec<u8>>,
}

impl QuoteFixture {
    /// Loads `testdata/<name>`.
    #[must_use]
    pub fn load(name: &str) -> Self {
        let dir = testdata().join(name);
        let read =
            |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{name}/{f}: {e}"));
        let message = read("quote.msg");
        let selection = match Attest::parse(&message)
            .expect("fixture quote parses")
            .attested
        {
            Attested::Quote(q) => q.pcr_select,
            Attested::Other { .. } => panic!("{name} is not a quote"),
        };
        let pcr_file = read("quote.pcrs");
        let pcrs = parse_pcr_file(&pcr_file, Some(&selection)).expect("fixture PCR file parses");
        let nonce = parse_hex(String::from_utf8(read("nonce.hex")).expect("utf-8").trim())
            .expect("hex nonce");
        let event_log = std::fs::read(dir.join("eventlog.bin")).ok();
        Self {
            name: name.to_owned(),
            ak_pub: read("ak.pub"),
            message,
            signature: read("quote.sig"),
            pcr_file,
            nonce,
            selection,
            pcrs,
            event_log,
        }
    }

    /// Path of a file of this fixture.
    #[must_use]
    pub fn path(&self, file: &str) -> PathBuf {
        testdata().join(&self.name).join(file)
    }
}
