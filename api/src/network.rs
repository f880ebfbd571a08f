//! Networks: what a container asks for (`NetworkingConfig`, `EndpointSettings`), the
//! network resources and the create/connect/disconnect bodies of `/networks`.

use crate::json::{Ty, INT, STRINGS, STR_MAP};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

go_struct! {
    /// `network.EndpointIPAMConfig`: addresses asked for on one network.
    pub struct EndpointIpamConfig = "network.EndpointIPAMConfig" {
        /// IPv4 address.
        #[serde(skip_serializing_if = "String::is_empty")]
        ipv4_address: String = "IPv4Address": Ty::Str,
        /// IPv6 address.
        #[serde(skip_serializing_if = "String::is_empty")]
        ipv6_address: String = "IPv6Address": Ty::Str,
        /// Link-local addresses.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        link_local_ips: Vec<String> = "LinkLocalIPs": STRINGS,
    }
}

go_struct! {
    /// `network.EndpointSettings`: a container on one network (asked for in create and
    /// connect, shown in inspect).
    pub struct EndpointSettings = "network.EndpointSettings" {
        /// Static addresses.
        ipam_config: Option<EndpointIpamConfig> = "IPAMConfig": Ty::Struct(&EndpointIpamConfig::SCHEMA),
        /// Legacy links.
        links: Option<Vec<String>> = "Links": STRINGS,
        /// DNS aliases on this network.
        aliases: Option<Vec<String>> = "Aliases": STRINGS,
        /// Network ID.
        network_id: String = "NetworkID": Ty::Str,
        /// Endpoint ID.
        endpoint_id: String = "EndpointID": Ty::Str,
        /// Gateway.
        gateway: String = "Gateway": Ty::Str,
        /// IPv4 address.
        ip_address: String = "IPAddress": Ty::Str,
        /// Its prefix length.
        ip_prefix_len: i64 = "IPPrefixLen": INT,
        /// IPv6 gateway.
        ipv6_gateway: String = "IPv6Gateway": Ty::Str,
        /// Global IPv6 address.
        global_ipv6_address: String = "GlobalIPv6Address": Ty::Str,
        /// Its prefix length.
        global_ipv6_prefix_len: i64 = "GlobalIPv6PrefixLen": INT,
        /// MAC address.
        mac_address: String = "MacAddress": Ty::Str,
        /// Driver options.
        driver_opts: Option<BTreeMap<String, String>> = "DriverOpts": STR_MAP,
    }
}

go_struct! {
    /// `network.NetworkingConfig`: the networks a new container joins.
    pub struct NetworkingConfig = "network.NetworkingConfig" {
        /// Network name → endpoint settings.
        endpoints_config: Option<BTreeMap<String, EndpointSettings>> = "EndpointsConfig":
            Ty::Map("map[string]*network.EndpointSettings", &Ty::Struct(&EndpointSettings::SCHEMA)),
    }
}

go_struct! {
    /// `network.IPAMConfig`: one subnet.
    pub struct IpamConfig = "network.IPAMConfig" {
        /// Subnet (CIDR).
        #[serde(skip_serializing_if = "String::is_empty")]
        subnet: String = "Subnet": Ty::Str,
        /// Range to allocate from (CIDR).
        #[serde(skip_serializing_if = "String::is_empty")]
        ip_range: String = "IPRange": Ty::Str,
        /// Gateway.
        #[serde(skip_serializing_if = "String::is_empty")]
        gateway: String = "Gateway": Ty::Str,
        /// Reserved addresses by name.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        auxiliary_addresses: BTreeMap<String, String> = "AuxiliaryAddresses": STR_MAP,
    }
}

go_struct! {
    /// `network.IPAM`.
    pub struct Ipam = "network.IPAM" {
        /// IPAM driver (`default`).
        driver: String = "Driver": Ty::Str,
        /// Driver options.
        options: Option<BTreeMap<String, String>> = "Options": STR_MAP,
        /// Subnets.
        config: Option<Vec<IpamConfig>> = "Config":
            Ty::List("[]network.IPAMConfig", &Ty::Struct(&IpamConfig::SCHEMA)),
    }
}

go_struct! {
    /// `network.ConfigReference`.
    pub struct ConfigReference = "network.ConfigReference" {
        /// The config-only network.
        network: String = "Network": Ty::Str,
    }
}

go_struct! {
    /// `types.NetworkCreate`: the options of a new network.
    pub struct NetworkCreate = "types.NetworkCreate" {
        /// Refuse a name already in use (dockerd always does since API 1.44).
        check_duplicate: bool = "CheckDuplicate": Ty::Bool,
        /// Driver (`bridge`).
        driver: String = "Driver": Ty::Str,
        /// `local`.
        scope: String = "Scope": Ty::Str,
        /// IPv6.
        enable_ipv6: bool = "EnableIPv6": Ty::Bool,
        /// Address management.
        ipam: Option<Ipam> = "IPAM": Ty::Struct(&Ipam::SCHEMA),
        /// No outside access.
        internal: bool = "Internal": Ty::Bool,
        /// Swarm.
        attachable: bool = "Attachable": Ty::Bool,
        /// Swarm.
        ingress: bool = "Ingress": Ty::Bool,
        /// A config-only network.
        config_only: bool = "ConfigOnly": Ty::Bool,
        /// The network whose config to use.
        config_from: Option<ConfigReference> = "ConfigFrom": Ty::Struct(&ConfigReference::SCHEMA),
        /// Driver options.
        options: Option<BTreeMap<String, String>> = "Options": STR_MAP,
        /// Labels.
        labels: Option<BTreeMap<String, String>> = "Labels": STR_MAP,
    }
}

go_struct! {
    /// `POST /networks/create`'s body.
    pub struct NetworkCreateRequest = "types.NetworkCreateRequest" embeds {
        /// The options.
        create: NetworkCreate,
    } {
        /// Name.
        name: String = "Name": Ty::Str,
    }
}

/// `POST /networks/create`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkCreateResponse {
    /// ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// Warning.
    #[serde(rename = "Warning", default)]
    pub warning: String,
}

go_struct! {
    /// `POST /networks/{id}/connect`'s body.
    pub struct NetworkConnect = "types.NetworkConnect" {
        /// Container.
        container: String = "Container": Ty::Str,
        /// Settings on this network.
        #[serde(skip_serializing_if = "Option::is_none")]
        endpoint_config: Option<EndpointSettings> = "EndpointConfig": Ty::Struct(&EndpointSettings::SCHEMA),
    }
}

go_struct! {
    /// `POST /networks/{id}/disconnect`'s body.
    pub struct NetworkDisconnect = "types.NetworkDisconnect" {
        /// Container.
        container: String = "Container": Ty::Str,
        /// Even if it is not running.
        force: bool = "Force": Ty::Bool,
    }
}

/// A container on a network, as network inspect lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointResource {
    /// Container name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Endpoint ID.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// MAC address.
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// IPv4 address with prefix.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// IPv6 address with prefix.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// `GET /networks/{id}` and the list's entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkResource {
    /// Name.
    #[serde(rename = "Name")]
    pub name: String,
    /// ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339.
    #[serde(rename = "Created")]
    pub created: String,
    /// `local`.
    #[serde(rename = "Scope")]
    pub scope: String,
    /// Driver.
    #[serde(rename = "Driver")]
    pub driver: String,
    /// IPv6.
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// Address management.
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    /// No outside access.
    #[serde(rename = "Internal")]
    pub internal: bool,
    /// Swarm.
    #[serde(rename = "Attachable")]
    pub attachable: bool,
    /// Swarm.
    #[serde(rename = "Ingress")]
    pub ingress: bool,
    /// Config source.
    #[serde(rename = "ConfigFrom")]
    pub config_from: ConfigReference,
    /// Config-only.
    #[serde(rename = "ConfigOnly")]
    pub config_only: bool,
    /// Containers on it, by container ID.
    #[serde(rename = "Containers")]
    pub containers: BTreeMap<String, EndpointResource>,
    /// Driver options.
    #[serde(rename = "Options")]
    pub options: BTreeMap<String, String>,
    /// Labels.
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
}

/// `POST /networks/prune`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworksPruneReport {
    /// Names removed.
    #[serde(rename = "NetworksDeleted")]
    pub networks_deleted: Option<Vec<String>>,
}
