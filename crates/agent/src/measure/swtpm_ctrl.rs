//! The two swtpm channels the emulated boot needs beyond libtss2: the control channel
//! (swtpm's `tpm_ioctl.h` protocol: big-endian u32 command, payload; u32 result) for
//! power-cycling and `_TPM_Hash_Start/Data/End` and localities, and raw TPM commands on the
//! data channel for extends at locality 2/3 (the libtss2 swtpm TCTI resets the locality to
//! 0 when it connects, and tss-esapi 7.7 cannot set it). Development TPMs only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use trustpool_evidence::{Digest, Writer};

/// `CMD_INIT`: power-cycle the TPM (PCRs reset, TPM2_Startup needed).
const CMD_INIT: u32 = 2;
/// `CMD_SET_LOCALITY`.
const CMD_SET_LOCALITY: u32 = 5;
/// `CMD_HASH_START`: `_TPM_Hash_Start` (PCR 17–22 reset, hashing begins).
const CMD_HASH_START: u32 = 6;
/// `CMD_HASH_DATA`: `_TPM_Hash_Data`, at most 4096 bytes per call.
const CMD_HASH_DATA: u32 = 7;
/// `CMD_HASH_END`: `_TPM_Hash_End` (PCR 17 extended with the hash).
const CMD_HASH_END: u32 = 8;
const HASH_DATA_MAX: usize = 4096;

/// `TPM_CC_PCR_Extend` (TPM 2.0 Library Part 2, §6.5.2).
const TPM_CC_PCR_EXTEND: u32 = 0x0000_0182;
/// `TPM_ST_SESSIONS`.
const TPM_ST_SESSIONS: u16 = 0x8002;
/// `TPM_RS_PW`: the password authorization session.
const TPM_RS_PW: u32 = 0x4000_0009;

/// One swtpm channel.
#[derive(Debug, Clone)]
enum Channel {
    Unix(PathBuf),
    Tcp(String, u16),
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// Where an swtpm listens.
#[derive(Debug, Clone)]
pub struct SwtpmAddress {
    data: Channel,
    ctrl: Channel,
}

/// A failure on an swtpm channel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwtpmError {
    /// Only `swtpm:` TCTIs are supported by the emulation.
    #[error(
        "measured-boot emulation needs an swtpm TCTI (swtpm:host=…,port=… or swtpm:path=…); got {0:?}. It never runs on a hardware TPM"
    )]
    NotSwtpm(String),
    /// I/O on a socket.
    #[error("swtpm {what}")]
    Io {
        /// Which channel and step.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// swtpm or the TPM answered with an error code.
    #[error("swtpm {what} failed with code {code:#x}")]
    Failed {
        /// The step.
        what: &'static str,
        /// The result code.
        code: u32,
    },
}

impl SwtpmAddress {
    /// From a TCTI string: `swtpm:host=H,port=N` (control channel on N+1) or
    /// `swtpm:path=/x/tpm.sock` (control channel at `/x/tpm.sock.ctrl`), the libtss2 swtpm
    /// TCTI's conventions.
    ///
    /// # Errors
    /// `NotSwtpm` for anything else.
    pub fn from_tcti(tcti: &str) -> Result<Self, SwtpmError> {
        let not = || SwtpmError::NotSwtpm(tcti.to_owned());
        let conf = tcti.strip_prefix("swtpm").ok_or_else(not)?;
        let conf = conf.strip_prefix(':').unwrap_or(conf);
        let get = |key: &str| {
            conf.split(',')
                .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        };
        if let Some(path) = get("path") {
            return Ok(Self {
                data: Channel::Unix(PathBuf::from(path)),
                ctrl: Channel::Unix(PathBuf::from(format!("{path}.ctrl"))),
            });
        }
        let host = get("host").unwrap_or("localhost").to_owned();
        let port: u16 = get("port")
            .map_or(Ok(2321), str::parse)
            .map_err(|_| not())?;
        let ctrl_port = port.checked_add(1).ok_or_else(not)?;
        Ok(Self {
            data: Channel::Tcp(host.clone(), port),
            ctrl: Channel::Tcp(host, ctrl_port),
        })
    }

    fn connect(channel: &Channel, what: &'static str) -> Result<Box<dyn Stream>, SwtpmError> {
        let io = |source| SwtpmError::Io { what, source };
        let timeout = Some(Duration::from_secs(30));
        match channel {
            Channel::Unix(path) => {
                let stream = UnixStream::connect(path).map_err(io)?;
                stream.set_read_timeout(timeout).map_err(io)?;
                stream.set_write_timeout(timeout).map_err(io)?;
                Ok(Box::new(stream))
            }
            Channel::Tcp(host, port) => {
                let stream = TcpStream::connect((host.as_str(), *port)).map_err(io)?;
                stream.set_read_timeout(timeout).map_err(io)?;
                stream.set_write_timeout(timeout).map_err(io)?;
                Ok(Box::new(stream))
            }
        }
    }

    fn ctrl(&self, what: &'static str, cmd: u32, payload: &[u8]) -> Result<(), SwtpmError> {
        let mut stream = Self::connect(&self.ctrl, what)?;
        let mut request = cmd.to_be_bytes().to_vec();
        request.extend_from_slice(payload);
        stream
            .write_all(&request)
            .map_err(|source| SwtpmError::Io { what, source })?;
        let mut result = [0u8; 4];
        stream
            .read_exact(&mut result)
            .map_err(|source| SwtpmError::Io { what, source })?;
        match u32::from_be_bytes(result) {
            0 => Ok(()),
            code => Err(SwtpmError::Failed { what, code }),
        }
    }

    /// Power-cycles the TPM (`swtpm_ioctl -i`): PCRs reset; TPM2_Startup must follow.
    ///
    /// # Errors
    /// An `SwtpmError`.
    pub fn power_cycle(&self) -> Result<(), SwtpmError> {
        self.ctrl("CMD_INIT", CMD_INIT, &0u32.to_be_bytes())
    }

    /// Sets the locality of the following data-channel commands.
    ///
    /// # Errors
    /// An `SwtpmError`.
    pub fn set_locality(&self, locality: u8) -> Result<(), SwtpmError> {
        self.ctrl("CMD_SET_LOCALITY", CMD_SET_LOCALITY, &[locality])
    }

    /// `_TPM_Hash_Start`, `_TPM_Hash_Data(data)`, `_TPM_Hash_End`: what the CPU does in
    /// `GETSEC[SENTER]` with the SINIT ACM (`swtpm_ioctl -h`).
    ///
    /// # Errors
    /// An `SwtpmError`.
    pub fn hash_sequence(&self, data: &[u8]) -> Result<(), SwtpmError> {
        self.ctrl("CMD_HASH_START", CMD_HASH_START, &[])?;
        for chunk in data.chunks(HASH_DATA_MAX) {
            let mut payload = u32::try_from(chunk.len())
                .unwrap_or(0)
                .to_be_bytes()
                .to_vec();
            payload.extend_from_slice(chunk);
            self.ctrl("CMD_HASH_DATA", CMD_HASH_DATA, &payload)?;
        }
        self.ctrl("CMD_HASH_END", CMD_HASH_END, &[])
    }

    /// `TPM2_PCR_Extend(pcr, digests)` sent raw on the data channel (password session,
    /// empty auth), at whatever locality was set.
    ///
    /// # Errors
    /// An `SwtpmError` with the TPM's response code.
    pub fn pcr_extend(&self, pcr: u8, digests: &[Digest]) -> Result<(), SwtpmError> {
        let mut auth = Writer::new();
        auth.u32_be(TPM_RS_PW).u16_be(0).u8(0).u16_be(0);
        let auth = auth.into_bytes();
        let mut body = Writer::new();
        body.u32_be(u32::from(pcr));
        body.u32_be(u32::try_from(auth.len()).unwrap_or(0))
            .bytes(&auth);
        body.u32_be(u32::try_from(digests.len()).unwrap_or(0));
        for d in digests {
            body.u16_be(d.alg().tpm_id()).bytes(d.as_bytes());
        }
        let body = body.into_bytes();
        let mut command = Writer::new();
        command
            .u16_be(TPM_ST_SESSIONS)
            .u32_be(u32::try_from(body.len().saturating_add(10)).unwrap_or(0))
            .u32_be(TPM_CC_PCR_EXTEND)
            .bytes(&body);
        let what = "TPM2_PCR_Extend (raw)";
        let mut stream = Self::connect(&self.data, what)?;
        stream
            .write_all(&command.into_bytes())
            .map_err(|source| SwtpmError::Io { what, source })?;
        let mut header = [0u8; 10];
        stream
            .read_exact(&mut header)
            .map_err(|source| SwtpmError::Io { what, source })?;
        let [_, _, _, _, _, _, r0, r1, r2, r3] = header;
        match u32::from_be_bytes([r0, r1, r2, r3]) {
            0 => Ok(()),
            code => Err(SwtpmError::Failed { what, code }),
        }
    }
}
