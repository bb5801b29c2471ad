//! One collector per concern, listed in one place ([`all`]).
//!
//! A collector only produces samples: it knows nothing about HTTP, the registry or the
//! `exporter_collector_*` self-metrics, which [`crate::scrape`] adds around every call.
//! Reading and parsing are split: the pure parsing functions next to each collector are unit
//! tested on fixtures, the reading is exercised by the integration tests against the real machine.

mod cpu;
mod filesystem;
mod memory;
mod model_artifacts;

pub(crate) use cpu::{CpuCollector, CpuSampler};
pub(crate) use filesystem::FilesystemCollector;
pub(crate) use memory::MemoryCollector;
pub(crate) use model_artifacts::ModelArtifactsCollector;

use crate::configuration::CollectorSettings;
use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, LabelSetEncoder, LabelValueEncoder,
};
use prometheus_client::registry::Unit;
use std::fmt::Write;

/// One concern of the machine or of the deployed models.
pub(crate) trait Collector: Send + Sync + 'static {
    /// The `collector` label value.
    fn name(&self) -> CollectorName;

    /// Adds this collector's samples to `out`. On `Err` the collector is reported unsuccessful;
    /// whatever it added before failing is still exported, so a collector must only add values it
    /// has just read (never a value remembered from an earlier scrape).
    fn collect(&self, out: &mut Samples) -> Result<(), CollectError>;
}

/// Why a collector could not report everything.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct CollectError(pub(crate) String);

impl CollectError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Every collector, in exposition order. The CPU sampler is shared with the background task
/// that refreshes it (see [`crate::startup`]).
pub(crate) fn all(settings: &CollectorSettings, cpu: CpuSampler) -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(CpuCollector::new(cpu)),
        Box::new(MemoryCollector::new()),
        Box::new(FilesystemCollector::new(
            settings.mountpoints.clone(),
            if settings.watch_model_filesystems {
                let repositories = settings.model_repositories.iter();
                repositories
                    .chain(&settings.model_bundles)
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            },
        )),
        Box::new(
            ModelArtifactsCollector::new(settings.model_bundles.clone(), settings.max_file_bytes)
                .with_repositories(settings.model_repositories.clone()),
        ),
    ]
}

/// The collectors, as the `collector` label of `exporter_collector_*` names them.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) enum CollectorName {
    Cpu,
    Memory,
    Filesystem,
    ModelArtifacts,
}

impl CollectorName {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Filesystem => "filesystem",
            Self::ModelArtifacts => "model_artifacts",
        }
    }
}

impl EncodeLabelValue for CollectorName {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// `system_filesystem_*{mountpoint}`: the configured label of a mount point, or the mount point
/// holding a model bundle.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MountpointLabels {
    pub(crate) mountpoint: String,
}

/// `model_artifact_*{model, artifact}`: one file of a model bundle.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelArtifactLabels {
    pub(crate) model: String,
    pub(crate) artifact: String,
}

/// `model_version_artifact_*{model, version, artifact}`: one file of one version of a model.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct VersionArtifactLabels {
    pub(crate) model: String,
    pub(crate) version: String,
    pub(crate) artifact: String,
}

/// `model_trained_timestamp_seconds{model}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelLabels {
    pub(crate) model: String,
}

/// `model_info{model, version}`, `model_version_trained_timestamp_seconds{model, version}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelInfoLabels {
    pub(crate) model: String,
    pub(crate) version: String,
}

/// The label set of one sample: one variant per label shape above. A scrape gathers families of
/// different shapes into one [`Samples`], hence one type for all of them.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) enum Labels {
    /// No labels: `system_load1 0.3`.
    Empty,
    Mountpoint(MountpointLabels),
    ModelArtifact(ModelArtifactLabels),
    VersionArtifact(VersionArtifactLabels),
    Model(ModelLabels),
    ModelInfo(ModelInfoLabels),
}

impl EncodeLabelSet for Labels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        match self {
            Self::Empty => Ok(()),
            Self::Mountpoint(l) => l.encode(encoder),
            Self::ModelArtifact(l) => l.encode(encoder),
            Self::VersionArtifact(l) => l.encode(encoder),
            Self::Model(l) => l.encode(encoder),
            Self::ModelInfo(l) => l.encode(encoder),
        }
    }
}

impl From<MountpointLabels> for Labels {
    fn from(l: MountpointLabels) -> Self {
        Self::Mountpoint(l)
    }
}

impl From<ModelArtifactLabels> for Labels {
    fn from(l: ModelArtifactLabels) -> Self {
        Self::ModelArtifact(l)
    }
}

impl From<VersionArtifactLabels> for Labels {
    fn from(l: VersionArtifactLabels) -> Self {
        Self::VersionArtifact(l)
    }
}

impl From<ModelLabels> for Labels {
    fn from(l: ModelLabels) -> Self {
        Self::Model(l)
    }
}

impl From<ModelInfoLabels> for Labels {
    fn from(l: ModelInfoLabels) -> Self {
        Self::ModelInfo(l)
    }
}

/// The OpenMetrics type of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    /// `<name>_info{...} 1`; the family name has no `_info` suffix.
    Info,
}

/// One metric family as gathered during a scrape.
#[derive(Debug)]
pub(crate) struct Family {
    /// Without the unit suffix, which the encoder appends (`system_memory_total` + bytes).
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) unit: Option<Unit>,
    pub(crate) kind: Kind,
    pub(crate) samples: Vec<(Labels, f64)>,
}

/// The families gathered during one scrape, in first-seen order.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    families: Vec<Family>,
}

impl Samples {
    /// Adds a gauge sample (creating its family on first use).
    pub(crate) fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        unit: Option<Unit>,
        labels: impl Into<Labels>,
        value: f64,
    ) {
        self.family(name, help, unit, Kind::Gauge)
            .samples
            .push((labels.into(), value));
    }

    /// Adds an info sample (`<name>_info{labels} 1`).
    pub(crate) fn info(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: impl Into<Labels>,
    ) {
        self.family(name, help, None, Kind::Info)
            .samples
            .push((labels.into(), 1.0));
    }

    /// Moves every sample of `other` into `self`.
    pub(crate) fn append(&mut self, other: Samples) {
        for f in other.families {
            let Family {
                name,
                help,
                unit,
                kind,
                samples,
            } = f;
            self.family(name, help, unit, kind).samples.extend(samples);
        }
    }

    pub(crate) fn families(&self) -> &[Family] {
        &self.families
    }

    /// The value of the sample `name` (as registered, without unit) with exactly `labels`.
    #[cfg(test)]
    pub(crate) fn value(&self, name: &str, labels: impl Into<Labels>) -> Option<f64> {
        let labels = labels.into();
        let family = self.families.iter().find(|f| f.name == name)?;
        family
            .samples
            .iter()
            .find_map(|(l, v)| (*l == labels).then_some(*v))
    }

    fn family(
        &mut self,
        name: &'static str,
        help: &'static str,
        unit: Option<Unit>,
        kind: Kind,
    ) -> &mut Family {
        let index = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    help,
                    unit,
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str) -> ModelLabels {
        ModelLabels { model: name.into() }
    }

    #[test]
    fn samples_of_one_name_land_in_one_family() {
        let mut s = Samples::default();
        s.gauge("a", "A", None, model("1"), 1.0);
        s.gauge("b", "B", None, Labels::Empty, 2.0);
        let mut more = Samples::default();
        more.gauge("a", "A", None, model("2"), 3.0);
        s.append(more);
        assert_eq!(s.families().len(), 2);
        assert_eq!(s.families()[0].samples.len(), 2);
        assert_eq!(s.value("a", model("2")), Some(3.0));
        assert_eq!(s.value("a", model("3")), None);
        assert_eq!(s.value("b", Labels::Empty), Some(2.0));
    }
}
