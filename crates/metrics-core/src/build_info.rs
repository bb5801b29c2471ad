//! `<prefix>_build_info{service, version} 1`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    service: &'static str,
    version: &'static str,
}

/// Registers `build_info` (an OpenMetrics info metric) in `registry`, under its prefix.
pub fn register(registry: &mut Registry, service: &'static str, version: &'static str) {
    registry.register(
        "build",
        "Build information of this service",
        Info::new(BuildLabels { service, version }),
    );
}
