//! The TPM, owned by one task. Handlers send requests over a channel and await replies;
//! the TPM task runs them one at a time on its own thread (tss-esapi calls block, and the
//! TPM is a serial device anyway). No `Mutex<Context>` anywhere.

mod convert;
mod device;
mod error;
mod keys;

pub(crate) use convert::{active_banks, read_pcrs};
pub use device::{Identity, QuoteOutput, TpmSettings};
pub use error::TpmError;

use tokio::sync::{mpsc, oneshot};
use trustpool_api::{Nonce, PcrSelection};

use device::Device;

/// Requests waiting for the TPM beyond this are refused (the server retries later).
const QUEUE_DEPTH: usize = 64;

enum Request {
    Quote {
        nonce: Nonce,
        selection: PcrSelection,
        reply: oneshot::Sender<Result<QuoteOutput, TpmError>>,
    },
    Activate {
        id_object: Vec<u8>,
        encrypted_secret: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, TpmError>>,
    },
    TransientObjects {
        reply: oneshot::Sender<Result<usize, TpmError>>,
    },
}

/// The TPM thread. [`TpmTask::join`] waits for it after every [`Tpm`] handle is dropped,
/// so the AK is flushed before the process exits.
#[derive(Debug)]
pub struct TpmTask {
    join: std::thread::JoinHandle<()>,
}

impl TpmTask {
    /// Waits for the TPM thread to finish (it finishes when the last [`Tpm`] is dropped).
    pub fn join(self) {
        let _ = self.join.join();
    }
}

/// A cheap, cloneable handle to the TPM task.
#[derive(Debug, Clone)]
pub struct Tpm {
    tx: mpsc::Sender<Request>,
    identity: std::sync::Arc<Identity>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Quote { .. } => "Quote",
            Self::Activate { .. } => "Activate",
            Self::TransientObjects { .. } => "TransientObjects",
        })
    }
}

impl Tpm {
    /// Opens the TPM on a dedicated thread: flushes stale handles, creates the EK, loads
    /// (or creates) the AK, reads the TPM's identity. Returns when ready or failed. The
    /// task ends, flushing the AK, when every handle is dropped.
    ///
    /// # Errors
    /// The `TpmError` that stopped it opening.
    pub fn start(settings: TpmSettings) -> Result<(Self, TpmTask), TpmError> {
        let (tx, mut rx) = mpsc::channel::<Request>(QUEUE_DEPTH);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let join = std::thread::Builder::new()
            .name("tpm".to_owned())
            .spawn(move || {
                let mut device = match Device::open(settings) {
                    Ok(device) => {
                        let _ = ready_tx.send(Ok(device.identity().clone()));
                        device
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Some(request) = rx.blocking_recv() {
                    match request {
                        Request::Quote {
                            nonce,
                            selection,
                            reply,
                        } => {
                            let _ = reply.send(device.quote(&nonce, &selection));
                        }
                        Request::Activate {
                            id_object,
                            encrypted_secret,
                            reply,
                        } => {
                            let _ = reply.send(device.activate(&id_object, &encrypted_secret));
                        }
                        Request::TransientObjects { reply } => {
                            let _ = reply.send(device.transient_objects());
                        }
                    }
                }
            })
            .map_err(|e| TpmError::Unexpected(format!("cannot start the TPM thread: {e}")))?;
        let identity = ready_rx.recv().map_err(|_| TpmError::Stopped)??;
        Ok((
            Self {
                tx,
                identity: std::sync::Arc::new(identity),
            },
            TpmTask { join },
        ))
    }

    /// The TPM's identity and keys.
    #[must_use]
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, TpmError>>) -> Request,
    ) -> Result<T, TpmError> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(make(reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                TpmError::BadRequest("the TPM is busy; retry later".to_owned())
            }
            mpsc::error::TrySendError::Closed(_) => TpmError::Stopped,
        })?;
        rx.await.map_err(|_| TpmError::Stopped)?
    }

    /// Quotes the selection with the AK, `nonce` as qualifying data.
    ///
    /// # Errors
    /// A `TpmError`.
    pub async fn quote(
        &self,
        nonce: Nonce,
        selection: PcrSelection,
    ) -> Result<QuoteOutput, TpmError> {
        self.call(|reply| Request::Quote {
            nonce,
            selection,
            reply,
        })
        .await
    }

    /// Activates a credential made for this TPM's EK and AK.
    ///
    /// # Errors
    /// A `TpmError` (the TPM refuses credentials made for another key).
    pub async fn activate(
        &self,
        id_object: Vec<u8>,
        encrypted_secret: Vec<u8>,
    ) -> Result<Vec<u8>, TpmError> {
        self.call(|reply| Request::Activate {
            id_object,
            encrypted_secret,
            reply,
        })
        .await
    }

    /// How many transient objects the TPM holds (for leak checks).
    ///
    /// # Errors
    /// A `TpmError`.
    pub async fn transient_objects(&self) -> Result<usize, TpmError> {
        self.call(|reply| Request::TransientObjects { reply }).await
    }
}
