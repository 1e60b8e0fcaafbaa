//! The endorsement key (TCG default templates) and the attestation key, which is created
//! once and kept across restarts as its `TPM2B_PRIVATE`/`TPM2B_PUBLIC` blobs in the state
//! directory (the private blob is wrapped by the EK: useless outside this TPM).

use std::path::{Path, PathBuf};

use tss_esapi::Context;
use tss_esapi::abstraction::{AsymmetricAlgorithmSelection, ak, ek};
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::algorithm::{
    AsymmetricAlgorithm, HashingAlgorithm, SignatureSchemeAlgorithm,
};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::structures::{Private, Public};
use tss_esapi::traits::{Marshall, UnMarshall};

use crate::config::KeyAlgorithm;
use crate::tpm::error::{TpmError, cmd};

/// Creates the EK from the TCG default template (EK Credential Profile 2.x, B.3.3 RSA-2048
/// / B.3.4 ECC P-256). Deterministic: the same TPM always yields the same key, which is
/// the key in its EK certificate. The caller flushes it.
pub(crate) fn create_ek(ctx: &mut Context, alg: KeyAlgorithm) -> Result<KeyHandle, TpmError> {
    let alg = match alg {
        KeyAlgorithm::Rsa => AsymmetricAlgorithm::Rsa,
        KeyAlgorithm::Ecc => AsymmetricAlgorithm::Ecc,
    };
    ek::create_ek_object(ctx, alg, None).map_err(cmd("CreatePrimary(EK)"))
}

/// The EK certificate from its NV index (0x01c00002 RSA-2048, 0x01c0000a P-256), if the
/// manufacturer (or swtpm_setup) put one there.
pub(crate) fn ek_certificate(ctx: &mut Context, alg: KeyAlgorithm) -> Option<Vec<u8>> {
    let selection = match alg {
        KeyAlgorithm::Rsa => AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
        KeyAlgorithm::Ecc => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
    };
    ek::retrieve_ek_pubcert(ctx, selection)
        .ok()
        .filter(|der| !der.is_empty())
}

/// `TPM2B_PUBLIC` bytes of a `Public`.
pub(crate) fn tpm2b_public(public: &Public) -> Result<Vec<u8>, TpmError> {
    let body = public.marshall().map_err(cmd("marshal TPMT_PUBLIC"))?;
    let len = u16::try_from(body.len())
        .map_err(|_| TpmError::Unexpected("public area too large".to_owned()))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

/// The AK's blobs on disk.
struct AkFiles {
    public: PathBuf,
    private: PathBuf,
}

fn ak_files(state_dir: &Path, alg: KeyAlgorithm) -> AkFiles {
    let stem = match alg {
        KeyAlgorithm::Rsa => "ak-rsa",
        KeyAlgorithm::Ecc => "ak-ecc",
    };
    AkFiles {
        public: state_dir.join(format!("{stem}.pub")),
        private: state_dir.join(format!("{stem}.priv")),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TpmError> {
    std::fs::read(path).map_err(|source| TpmError::State {
        path: path.display().to_string(),
        source,
    })
}

/// Writes a file atomically (temporary file, fsync, rename) with mode 0600.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TpmError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |source| TpmError::State {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Loads the AK saved in `state_dir`, or creates and saves one (restricted, sign-only,
/// fixedTPM, fixedParent: tss-esapi's AK template, as `tpm2_createak`). Returns its
/// handle and public area. `ek` must be loaded; the caller flushes it afterwards.
pub(crate) fn load_or_create_ak(
    ctx: &mut Context,
    ek: KeyHandle,
    state_dir: &Path,
    alg: KeyAlgorithm,
) -> Result<(KeyHandle, Public), TpmError> {
    let files = ak_files(state_dir, alg);
    if files.public.exists() && files.private.exists() {
        let public_bytes = read(&files.public)?;
        let private_bytes = read(&files.private)?;
        let bad = |reason: String| TpmError::BadState {
            path: files.public.display().to_string(),
            reason,
        };
        let public = Public::unmarshall(&public_bytes).map_err(|e| bad(e.to_string()))?;
        let private = Private::try_from(private_bytes).map_err(|e| bad(e.to_string()))?;
        let handle = ak::load_ak(ctx, ek, None, private, public.clone())
            .map_err(|e| bad(format!("the TPM refused to load it ({e}); was the TPM cleared? remove the file to create a new AK and re-enroll")))?;
        return Ok((handle, public));
    }
    let (hash, scheme) = match alg {
        KeyAlgorithm::Rsa => (HashingAlgorithm::Sha256, SignatureSchemeAlgorithm::RsaSsa),
        KeyAlgorithm::Ecc => (HashingAlgorithm::Sha256, SignatureSchemeAlgorithm::EcDsa),
    };
    let created = ak::create_ak(ctx, ek, hash, scheme, None, None).map_err(cmd("Create(AK)"))?;
    std::fs::create_dir_all(state_dir).map_err(|source| TpmError::State {
        path: state_dir.display().to_string(),
        source,
    })?;
    write_atomic(&files.private, created.out_private.value())?;
    write_atomic(
        &files.public,
        &created
            .out_public
            .marshall()
            .map_err(cmd("marshal AK public"))?,
    )?;
    let handle = ak::load_ak(
        ctx,
        ek,
        None,
        created.out_private,
        created.out_public.clone(),
    )
    .map_err(cmd("Load(AK)"))?;
    Ok((handle, created.out_public))
}
