//! A private swtpm per test (swtpm serves one client at a time), with an EK certificate
//! from a private swtpm-localca, and tpm2-tools pointed at it, on a free TCP port pair.
//! Stopped and removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A running swtpm.
#[derive(Debug)]
pub struct Swtpm {
    dir: PathBuf,
    child: Child,
    port: u16,
}

/// True when swtpm, swtpm_setup and tpm2-tools are installed.
#[must_use]
pub fn available() -> bool {
    ["swtpm", "swtpm_setup", "swtpm_localca", "tpm2_createek"]
        .iter()
        .all(|tool| which(tool).is_some())
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

impl Swtpm {
    /// Provisions a TPM (EK certificates in NV from a private CA, banks sha1+sha256+sha384)
    /// and starts swtpm on a free TCP port pair.
    #[must_use]
    pub fn start() -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("trustpool-swtpm-{}-{n}", std::process::id()));
        Self::start_in(&dir)
    }

    /// Like [`Swtpm::start`], with its state, CA and scratch files in `dir` (emptied first).
    #[must_use]
    pub fn start_in(dir: &Path) -> Self {
        let dir = dir.to_path_buf();
        let _ = std::fs::remove_dir_all(&dir);
        let ca = dir.join("ca");
        std::fs::create_dir_all(ca.join("state")).expect("mkdir");
        std::fs::create_dir_all(dir.join("state")).expect("mkdir");
        let ca_s = ca.display();
        std::fs::write(
            ca.join("swtpm-localca.conf"),
            format!("statedir = {ca_s}/state\nsigningkey = {ca_s}/state/signkey.pem\nissuercert = {ca_s}/state/issuercert.pem\ncertserial = {ca_s}/state/certserial\n"),
        )
        .expect("write");
        std::fs::write(
            ca.join("swtpm-localca.options"),
            "--platform-manufacturer trustpool\n--platform-version 2.1\n--platform-model swtpm\n",
        )
        .expect("write");
        std::fs::write(
            ca.join("swtpm_setup.conf"),
            format!(
                "create_certs_tool = {}\ncreate_certs_tool_config = {ca_s}/swtpm-localca.conf\ncreate_certs_tool_options = {ca_s}/swtpm-localca.options\nactive_pcr_banks = sha1,sha256,sha384\n",
                which("swtpm_localca").expect("swtpm_localca installed").display()
            ),
        )
        .expect("write");
        let setup = Command::new("swtpm_setup")
            .args([
                "--tpm2",
                "--create-ek-cert",
                "--lock-nvram",
                "--overwrite",
                "--tpmstate",
            ])
            .arg(dir.join("state"))
            .arg("--config")
            .arg(ca.join("swtpm_setup.conf"))
            .output()
            .expect("run swtpm_setup");
        assert!(
            setup.status.success(),
            "swtpm_setup failed: {}",
            String::from_utf8_lossy(&setup.stderr)
        );
        // tss-esapi 7.7 only passes host/port to the swtpm TCTI (it drops `path=`), so the
        // TPM listens on TCP: data on a free port N, control on N+1 (the TCTI's convention).
        let mut attempt = 0u32;
        let (child, port) = loop {
            attempt += 1;
            let port = crate::ports::free_ports(2);
            let mut child = Command::new("swtpm")
                .args([
                    "socket",
                    "--tpm2",
                    "--flags",
                    "not-need-init,startup-clear",
                    "--tpmstate",
                ])
                .arg(format!("dir={}", dir.join("state").display()))
                .arg("--server")
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start swtpm");
            let deadline = Instant::now() + Duration::from_secs(10);
            let ready = loop {
                // Both channels must accept, and the process must still be ours (a port taken
                // by a parallel test makes swtpm exit, and we retry on another pair).
                let listening = std::net::TcpStream::connect(("127.0.0.1", port + 1)).is_ok()
                    && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
                if listening {
                    // swtpm exits when it cannot bind one of the ports: give it a moment.
                    std::thread::sleep(Duration::from_millis(50));
                    if child.try_wait().ok().flatten().is_none() {
                        break true;
                    }
                }
                if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if ready {
                break (child, port);
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(attempt < 10, "swtpm did not start");
        };
        Self { dir, child, port }
    }

    /// The TCTI string for tss-esapi and tpm2-tools.
    #[must_use]
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// The swtpm process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Leaves swtpm running after this handle is gone (a detached pool); returns its pid.
    #[must_use]
    pub fn detach(self) -> u32 {
        let pid = self.child.id();
        std::mem::forget(self);
        pid
    }

    /// A scratch directory owned by this TPM (removed on drop).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The local CA's root certificate (the EK certificate chains to it).
    #[must_use]
    pub fn ca_root(&self) -> PathBuf {
        self.dir.join("ca/state/swtpm-localca-rootca-cert.pem")
    }

    /// The SHA-256 (hex) of the RSA EK certificate swtpm_setup stored in NV (index
    /// 0x01c00002, TCG EK Credential Profile §2.2.1.4): what an administrator names in
    /// `trustpool host-add --ek-sha256`. Read with tpm2_nvread (the TPM must be free: before
    /// its agent starts).
    #[must_use]
    pub fn ek_certificate_sha256(&self) -> String {
        let _ = self.tpm2_ok("nvread", &["0x01c00002", "-o", "ek-cert.der"]);
        let der = std::fs::read(self.dir.join("ek-cert.der")).expect("read the EK certificate");
        trustpool_api::bytes::to_hex(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der).as_ref(),
        )
    }

    /// Runs `tpm2_<tool> args…` in [`Swtpm::dir`] against this TPM, then flushes
    /// transient objects (swtpm has no resource manager). Sessions stay: a caller that
    /// starts one flushes it.
    #[must_use]
    pub fn tpm2(&self, tool: &str, args: &[&str]) -> Output {
        let out = self.tool(&format!("tpm2_{tool}"), args);
        let _ = self.tool("tpm2_flushcontext", &["-t"]);
        out
    }

    /// Like [`Swtpm::tpm2`], asserting success.
    pub fn tpm2_ok(&self, tool: &str, args: &[&str]) -> Output {
        let out = self.tpm2(tool, args);
        assert!(
            out.status.success(),
            "tpm2_{tool} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn tool(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .current_dir(&self.dir)
            .env("TPM2TOOLS_TCTI", self.tcti())
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"))
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
