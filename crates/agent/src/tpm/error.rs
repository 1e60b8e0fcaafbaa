//! What can go wrong talking to the TPM.

use thiserror::Error;

/// A TPM operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TpmError {
    /// The TCTI string is not one libtss2 understands.
    #[error("invalid TCTI {tcti:?}")]
    Tcti {
        /// The configured TCTI.
        tcti: String,
    },
    /// A TPM command failed.
    #[error("TPM command {op} failed")]
    Command {
        /// The operation.
        op: &'static str,
        /// The TSS error.
        #[source]
        source: tss_esapi::Error,
    },
    /// The agent's key state could not be read or written.
    #[error("agent state {path}")]
    State {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Saved key state is corrupt or belongs to another TPM.
    #[error("saved attestation key in {path} is unusable: {reason}")]
    BadState {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The PCRs changed between the quote and reading them, twice in a row.
    #[error("PCR values changed while quoting (twice); try again")]
    PcrsChanged,
    /// The TPM returned something the agent could not use.
    #[error("unexpected TPM output: {0}")]
    Unexpected(String),
    /// The request cannot be carried out (a bank the TPM does not have …).
    #[error("{0}")]
    BadRequest(String),
    /// The TPM task has stopped.
    #[error("the TPM task has stopped")]
    Stopped,
}

/// Attaches the operation name to a TSS error.
pub(crate) fn cmd(op: &'static str) -> impl FnOnce(tss_esapi::Error) -> TpmError {
    move |source| TpmError::Command { op, source }
}
