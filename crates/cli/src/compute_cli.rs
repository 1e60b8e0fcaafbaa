//! Command-line syntax of the compute verbs: nova-style (`flavor-create`, `flavor-key`,
//! `boot`, `list`, `show`, `hypervisor-list`, `hypervisor-create` …) with openstack-style
//! aliases (`flavor create/set`, `server create/list/show/delete`, `hypervisor
//! list/show/create/rotate-token`).

use clap::{Subcommand, ValueEnum};

use crate::cli::{Output, OutputArgs};

/// `flavor-key … set|unset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyAction {
    /// Add or change keys.
    Set,
    /// Remove keys.
    Unset,
}

/// What a boot asks for.
#[derive(Debug, clap::Args)]
pub(crate) struct BootArgs {
    /// Flavor name or id.
    #[arg(long)]
    pub(crate) flavor: String,
    /// Image id (recorded).
    #[arg(long, default_value = "none")]
    pub(crate) image: String,
    /// `az`, or `az:host` to force a host (still filtered, TrustedFilter included).
    #[arg(long = "availability-zone", visible_alias = "availability_zone")]
    pub(crate) availability_zone: Option<String>,
    /// Fewest instances.
    #[arg(long = "min-count", visible_alias = "min")]
    pub(crate) min_count: Option<u32>,
    /// Most instances.
    #[arg(long = "max-count", visible_alias = "max")]
    pub(crate) max_count: Option<u32>,
    /// Wait until the servers leave BUILD; exit 1 if one ends in ERROR.
    #[arg(long)]
    pub(crate) wait: bool,
    /// Server name.
    pub(crate) name: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

/// A name or id that goes into a URL path: `.` and `..` cannot (every URL parser removes
/// them, percent-encoded or not, so the request would reach the collection above).
pub(crate) fn resource_name(text: &str) -> Result<String, String> {
    if trustpool_client::compute::addressable(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} cannot name a resource in a URL (empty, '.' and '..' are path steps)"
        ))
    }
}

/// One named thing and an output format.
#[derive(Debug, clap::Args)]
pub(crate) struct NamedArgs {
    /// Name or id.
    #[arg(value_parser = resource_name)]
    pub(crate) name: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub(crate) output: Output,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ComputeCommand {
    /// Create a flavor: NAME ID RAM_MB DISK_GB VCPUS (ID `auto` = a new UUID).
    #[command(name = "flavor-create")]
    FlavorCreate {
        /// Name.
        name: String,
        /// Id, or `auto`.
        id: String,
        /// RAM in MiB.
        ram: u64,
        /// Root disk in GiB.
        disk: u64,
        /// vCPUs.
        vcpus: u32,
        /// Ephemeral disk in GiB.
        #[arg(long)]
        ephemeral: Option<u64>,
        /// Swap in MiB.
        #[arg(long)]
        swap: Option<u64>,
        /// Extra spec KEY=VALUE (repeatable).
        #[arg(long = "property")]
        properties: Vec<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// List flavors.
    #[command(name = "flavor-list")]
    FlavorList {
        /// Show extra specs.
        #[arg(long)]
        extra_specs: bool,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show a flavor with its extra specs.
    #[command(name = "flavor-show")]
    FlavorShow(NamedArgs),
    /// Delete a flavor.
    #[command(name = "flavor-delete")]
    FlavorDelete(NamedArgs),
    /// Set or unset extra specs: `flavor-key m1.tiny set trust:trusted_host=trusted`
    /// (the two-word `trust:trusted_host trusted` is read the same).
    #[command(name = "flavor-key")]
    FlavorKey {
        /// Flavor name or id.
        #[arg(value_parser = resource_name)]
        flavor: String,
        /// set or unset.
        #[arg(value_enum)]
        action: KeyAction,
        /// KEY=VALUE to set, KEY to unset.
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// openstack-style flavor commands.
    #[command(subcommand)]
    Flavor(FlavorOs),
    /// Boot a server.
    Boot(BootArgs),
    /// List servers.
    List(OutputArgs),
    /// Show a server: host, zone, fault, trust alert.
    Show(NamedArgs),
    /// Delete a server (its resources are freed).
    Delete(NamedArgs),
    /// openstack-style server commands.
    #[command(subcommand)]
    Server(ServerOs),
    /// List hypervisors with their state, status and trust level.
    #[command(name = "hypervisor-list")]
    HypervisorList(OutputArgs),
    /// Show a hypervisor (id or host name).
    #[command(name = "hypervisor-show")]
    HypervisorShow(NamedArgs),
    /// Create a compute node (an administrator's step before its agent first reports)
    /// and print its compute token, once: it goes in that host's agent.toml
    /// `[scheduler] token_file` and reports for this name only.
    #[command(name = "hypervisor-create")]
    HypervisorCreate(NamedArgs),
    /// Give a compute node (id or host name) a new compute token, printed once; the old
    /// one stops working.
    #[command(name = "hypervisor-token-rotate")]
    HypervisorTokenRotate(NamedArgs),
    /// openstack-style hypervisor commands.
    #[command(subcommand)]
    Hypervisor(HypervisorOs),
    /// List nova-compute services.
    #[command(name = "service-list")]
    ServiceList(OutputArgs),
    /// Delete a compute node's nova-compute service and the node with its token (id or
    /// host name; refused while servers are on it).
    #[command(name = "service-delete")]
    ServiceDelete(NamedArgs),
    /// Enable a host's nova-compute service.
    #[command(name = "service-enable")]
    ServiceEnable {
        /// Host.
        host: String,
        /// Binary (only nova-compute exists).
        #[arg(default_value = "nova-compute")]
        binary: String,
    },
    /// Disable a host's nova-compute service.
    #[command(name = "service-disable")]
    ServiceDisable {
        /// Host.
        host: String,
        /// Binary (only nova-compute exists).
        #[arg(default_value = "nova-compute")]
        binary: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Create a host aggregate, optionally an availability zone.
    #[command(name = "aggregate-create")]
    AggregateCreate {
        /// Name.
        name: String,
        /// Availability zone.
        availability_zone: Option<String>,
    },
    /// List aggregates.
    #[command(name = "aggregate-list")]
    AggregateList(OutputArgs),
    /// Add a host to an aggregate.
    #[command(name = "aggregate-add-host")]
    AggregateAddHost {
        /// Aggregate name or id.
        aggregate: String,
        /// Host.
        host: String,
    },
    /// Remove a host from an aggregate.
    #[command(name = "aggregate-remove-host")]
    AggregateRemoveHost {
        /// Aggregate name or id.
        aggregate: String,
        /// Host.
        host: String,
    },
    /// Set (KEY=VALUE) or delete (KEY) aggregate metadata.
    #[command(name = "aggregate-set-metadata")]
    AggregateSetMetadata {
        /// Aggregate name or id.
        aggregate: String,
        /// KEY=VALUE or KEY.
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Delete an empty aggregate.
    #[command(name = "aggregate-delete")]
    AggregateDelete {
        /// Aggregate name or id.
        aggregate: String,
    },
    /// List availability zones.
    #[command(name = "availability-zone-list")]
    AvailabilityZoneList(OutputArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum FlavorOs {
    /// `openstack flavor create --ram --disk --vcpus [--id] [--property k=v] NAME`.
    Create {
        /// RAM in MiB.
        #[arg(long)]
        ram: u64,
        /// Root disk in GiB.
        #[arg(long, default_value_t = 0)]
        disk: u64,
        /// vCPUs.
        #[arg(long, default_value_t = 1)]
        vcpus: u32,
        /// Id (default: a new UUID).
        #[arg(long, default_value = "auto")]
        id: String,
        /// Ephemeral GiB.
        #[arg(long)]
        ephemeral: Option<u64>,
        /// Swap MiB.
        #[arg(long)]
        swap: Option<u64>,
        /// KEY=VALUE (repeatable).
        #[arg(long = "property")]
        properties: Vec<String>,
        /// Name.
        name: String,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// `openstack flavor list [--long]`.
    List {
        /// Show properties.
        #[arg(long)]
        long: bool,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// `openstack flavor show`.
    Show(NamedArgs),
    /// `openstack flavor set --property k=v FLAVOR`.
    Set {
        /// KEY=VALUE (repeatable).
        #[arg(long = "property", required = true)]
        properties: Vec<String>,
        /// Flavor.
        flavor: String,
    },
    /// `openstack flavor unset --property KEY FLAVOR`.
    Unset {
        /// KEY (repeatable).
        #[arg(long = "property", required = true)]
        properties: Vec<String>,
        /// Flavor.
        flavor: String,
    },
    /// `openstack flavor delete`.
    Delete(NamedArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServerOs {
    /// `openstack server create --flavor F --image I NAME`.
    Create(BootArgs),
    /// `openstack server list`.
    List(OutputArgs),
    /// `openstack server show`.
    Show(NamedArgs),
    /// `openstack server delete`.
    Delete(NamedArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum HypervisorOs {
    /// `openstack hypervisor list`.
    List(OutputArgs),
    /// `openstack hypervisor show`.
    Show(NamedArgs),
    /// `hypervisor create NAME`: the node and its compute token (shown once).
    Create(NamedArgs),
    /// `hypervisor rotate-token NAME`: a new compute token (the old one stops working).
    #[command(name = "rotate-token")]
    RotateToken(NamedArgs),
}
