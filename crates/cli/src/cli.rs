//! Command-line syntax (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// trustpool: trusted compute pools — attestation, trusted scheduling, evidence tools.
#[derive(Debug, Parser)]
#[command(name = "trustpool", version, about)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
    /// The attestation server (`https://host:8443`).
    #[arg(
        long,
        global = true,
        env = "TRUSTPOOL_ATTESTATION_URL",
        value_name = "URL"
    )]
    pub(crate) attestation_url: Option<String>,
    /// CA certificate of the servers (PEM).
    #[arg(long, global = true, env = "TRUSTPOOL_CA_FILE", value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// The scheduler's compute API (`https://host:8774`).
    #[arg(long, global = true, env = "TRUSTPOOL_COMPUTE_URL", value_name = "URL")]
    pub(crate) compute_url: Option<String>,
    /// Token for the compute API (default: --token).
    #[arg(
        long,
        global = true,
        env = "TRUSTPOOL_COMPUTE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub(crate) compute_token: Option<String>,
    /// Bearer token (admin for changes, read for listings).
    #[arg(
        long,
        global = true,
        env = "TRUSTPOOL_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub(crate) token: Option<String>,
}

impl Cli {
    /// TLS for talking to the servers: their CA from `--ca-file` / `TRUSTPOOL_CA_FILE`.
    pub(crate) fn server_tls(&self) -> anyhow::Result<trustpool_client::TlsOptions> {
        use anyhow::Context as _;
        let ca = self.ca_file.as_ref().ok_or_else(|| {
            anyhow::anyhow!("no CA certificate: set --ca-file or TRUSTPOOL_CA_FILE")
        })?;
        let ca_pem =
            std::fs::read_to_string(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        Ok(trustpool_client::TlsOptions {
            ca_pem: Some(ca_pem),
            identity: None,
        })
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum Output {
    /// Human-readable text.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The compute verbs (flavors, boot, servers, hypervisors, services, aggregates).
    #[command(flatten)]
    Compute(crate::compute_cli::ComputeCommand),
    /// A whole trusted pool on this machine (`dev up`, `dev down`, `dev tamper`).
    #[command(subcommand)]
    Dev(DevCommand),
    /// TPM quotes made by tpm2-tools or an agent.
    #[command(subcommand)]
    Quote(QuoteCommand),
    /// TCG event logs.
    #[command(subcommand, visible_alias = "event-log")]
    Eventlog(EventlogCommand),
    /// List attested hosts with their trust level (openstack: `host list`).
    #[command(name = "host-list", visible_alias = "hosts")]
    HostList(OutputArgs),
    /// Show one host: trust level, reasons, policies.
    #[command(name = "host-show")]
    HostShow(HostArgs),
    /// A host's latest verified evidence: PCRs next to each accepted policy, and the
    /// decoded event log.
    #[command(name = "host-evidence")]
    HostEvidence(HostArgs),
    /// A host's verdict history.
    #[command(name = "host-verdicts")]
    HostVerdicts(HostArgs),
    /// Set the policies a host accepts (any-of).
    #[command(name = "host-policy-set")]
    HostPolicySet {
        /// The host.
        host: String,
        /// Policy names.
        #[arg(required = true)]
        policies: Vec<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Let a new host enroll under a name: prints its single-use enrollment token (the
    /// agent's `[server] enrollment_token_file`). With `--ek-sha256`, only that TPM may take
    /// the name, and it needs no token.
    #[command(name = "host-add", visible_alias = "host-create")]
    HostAdd {
        /// The host name (as Nova knows it).
        host: String,
        /// Another name PollHosts may ask by (repeatable, at most 16).
        #[arg(long = "alias")]
        aliases: Vec<String>,
        #[command(flatten)]
        grant: GrantArgs,
    },
    /// Let an enrolled host enroll again: with another TPM (replaced TPM or motherboard,
    /// named by `--ek-sha256`), or with the same TPM and a new AK, agent URL or agent
    /// certificate. Prints the token; policies, aliases and approval carry over.
    #[command(name = "host-reenroll")]
    HostReenroll {
        /// The host.
        host: String,
        #[command(flatten)]
        grant: GrantArgs,
    },
    /// Accept that a host's TPM clock or counters went backwards (after a TPM2_Clear): its
    /// next quote becomes the baseline.
    #[command(name = "host-clock-reset")]
    HostClockReset(HostArgs),
    /// Revoke the enrollment credential of a name (host-add or host-reenroll).
    #[command(name = "host-grant-revoke")]
    HostGrantRevoke(HostArgs),
    /// Set a host's other names (replacing them; none: clears them).
    #[command(name = "host-alias-set")]
    HostAliasSet {
        /// The host.
        host: String,
        /// Its aliases (DNS names, at most 16, unique across the fleet).
        aliases: Vec<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Approve a host waiting for approval.
    #[command(name = "host-approve")]
    HostApprove(HostArgs),
    /// Forget a host (it may then re-enroll, e.g. with a new TPM).
    #[command(name = "host-delete")]
    HostDelete(HostArgs),
    /// Attest a host now.
    Attest(HostArgs),
    /// List known-good policies (latest versions).
    #[command(name = "policy-list")]
    PolicyList(OutputArgs),
    /// Store a policy document (JSON file) as the next version of its name.
    #[command(name = "policy-create")]
    PolicyCreate {
        /// The document.
        file: PathBuf,
    },
    /// Draft a policy from a golden host's latest verified evidence (printed as JSON for
    /// review; `--apply` stores it at once).
    #[command(name = "policy-import-from-host")]
    PolicyImport {
        /// The golden host.
        host: String,
        /// The new policy's name.
        name: String,
        /// BIOS PCRs.
        #[arg(long, value_delimiter = ',', default_value = "0")]
        bios_pcrs: Vec<u8>,
        /// VMM/OS PCRs.
        #[arg(long, value_delimiter = ',', default_value = "17,18,19")]
        vmm_pcrs: Vec<u8>,
        /// Match VMM PCRs event by event (allows adding kernels later).
        #[arg(long)]
        vmm_events: bool,
        /// Store the draft as a policy.
        #[arg(long)]
        apply: bool,
        /// Import even from a host that has policies and is not trusted now.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GrantArgs {
    /// SHA-256 of the TPM's EK certificate (DER; `openssl x509 -outform der | sha256sum`,
    /// colons allowed): only that TPM may enroll.
    #[arg(long = "ek-sha256", value_name = "HEX")]
    pub(crate) ek_sha256: Option<String>,
    /// How long the credential is usable (default: 24 h for a new host, 1 h to re-enroll).
    #[arg(long)]
    pub(crate) valid_hours: Option<u32>,
    /// Write the token to this file (mode 0600) instead of printing it.
    #[arg(long, value_name = "PATH")]
    pub(crate) token_file: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

#[derive(Debug, clap::Args)]
pub(crate) struct HostArgs {
    /// The host name (or alias).
    pub(crate) host: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

#[derive(Debug, Subcommand)]
pub(crate) enum QuoteCommand {
    /// Verify a quote: the files `tpm2_checkquote` takes.
    Verify(QuoteVerifyArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct QuoteVerifyArgs {
    /// The AK public key: TPM2B_PUBLIC (`tpm2_createak -u`), TPMT_PUBLIC, or PEM/DER SubjectPublicKeyInfo.
    #[arg(short = 'u', long = "public", value_name = "AK.pub")]
    pub(crate) public: PathBuf,
    /// The quote message (TPMS_ATTEST, `tpm2_quote -m`).
    #[arg(short = 'm', long = "message", value_name = "QUOTE.msg")]
    pub(crate) message: PathBuf,
    /// The signature (TPMT_SIGNATURE, `tpm2_quote -s`).
    #[arg(short = 's', long = "signature", value_name = "QUOTE.sig")]
    pub(crate) signature: PathBuf,
    /// The PCR values (`tpm2_quote -o`, serialized or values format).
    #[arg(short = 'f', long = "pcrs", value_name = "PCRS.out")]
    pub(crate) pcrs: PathBuf,
    /// The nonce the quote must carry, in hex (`tpm2_quote -q`).
    #[arg(short = 'q', long = "nonce", value_name = "HEX")]
    pub(crate) nonce: String,
    /// The PCR selection that was asked for (`sha256:0,1,2+sha384:0`); default: what the quote covers.
    #[arg(short = 'l', long = "pcr-list", value_name = "LIST")]
    pub(crate) pcr_list: Option<String>,
    /// A TCG event log to replay against the quoted PCRs.
    #[arg(short = 'e', long = "eventlog", value_name = "LOG.bin")]
    pub(crate) eventlog: Option<PathBuf>,
    /// Accept SHA-1 signatures (off by default).
    #[arg(long)]
    pub(crate) allow_sha1: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventlogCommand {
    /// Decode a binary event log and replay it into PCR values.
    Show(EventlogShowArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct EventlogShowArgs {
    /// The log (`/sys/kernel/security/tpm0/binary_bios_measurements`).
    #[arg(value_name = "LOG.bin")]
    pub(crate) file: PathBuf,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DevCommand {
    /// Start a local trusted compute pool: test PKI, attestation server, scheduler, and
    /// HOSTS agents on their own swtpm (TAMPERED of them with a changed BIOS); the golden
    /// policy comes from a good host. Stays in the foreground until Ctrl-C / SIGTERM.
    Up {
        /// Compute hosts.
        #[arg(long, default_value_t = 3)]
        hosts: usize,
        /// How many boot a tampered BIOS.
        #[arg(long, default_value_t = 1)]
        tampered: usize,
        /// Where configs, nova.conf, the CA, tokens, databases and logs go (emptied).
        #[arg(long, default_value = "trustpool-dev")]
        dir: PathBuf,
        /// PostgreSQL for both servers instead of SQLite files.
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
        /// Attestation interval in seconds.
        #[arg(long, default_value_t = 3)]
        interval: u64,
        /// Return once the pool is up and leave it running (`dev down` stops it).
        #[arg(long)]
        detach: bool,
        /// Where the trustpool binaries are (default: next to this one).
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
    },
    /// Stop a detached pool.
    Down {
        /// The pool's directory.
        #[arg(long, default_value = "trustpool-dev")]
        dir: PathBuf,
    },
    /// Tamper a host live: its BIOS digest changes and it reboots.
    Tamper {
        /// The host (`compute-N`).
        host: String,
        /// The pool's directory.
        #[arg(long, default_value = "trustpool-dev")]
        dir: PathBuf,
        /// Where the trustpool binaries are (default: next to this one).
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
    },
}
