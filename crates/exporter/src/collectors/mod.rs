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

pub use cpu::{CpuCollector, CpuSampler};
pub use filesystem::{FilesystemCollector, parse_mountinfo_line};
pub use memory::{
    MemoryCollector, cgroup_memory_limit, cgroup_memory_limit_files, parse_cgroup_limit,
};
pub use model_artifacts::{Manifest, ModelArtifactsCollector};

use crate::configuration::CollectorSettings;
use prometheus_client::registry::Unit;

/// One concern of the machine or of the deployed models.
pub trait Collector: Send + Sync + 'static {
    /// The `collector` label value.
    fn name(&self) -> &'static str;

    /// Adds this collector's samples to `out`. On `Err` the collector is reported unsuccessful;
    /// whatever it added before failing is still exported, so a collector must only add values it
    /// has just read (never a value remembered from an earlier scrape).
    fn collect(&self, out: &mut Samples) -> Result<(), CollectError>;
}

/// Why a collector could not report everything.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CollectError(pub String);

impl CollectError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Every collector, in exposition order. The CPU sampler is shared with the background task
/// that refreshes it (see [`crate::startup`]).
pub fn all(settings: &CollectorSettings, cpu: CpuSampler) -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(CpuCollector::new(cpu)),
        Box::new(MemoryCollector::new()),
        Box::new(FilesystemCollector::new(
            settings.mountpoints.clone(),
            if settings.watch_model_filesystems {
                settings.model_bundles.clone()
            } else {
                Vec::new()
            },
        )),
        Box::new(ModelArtifactsCollector::new(
            settings.model_bundles.clone(),
            settings.max_file_bytes,
        )),
    ]
}

/// Label pairs of one sample: `[("model", "breast-cancer"), ("artifact", "model.onnx")]`.
pub type Labels = Vec<(&'static str, String)>;

/// The OpenMetrics type of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// `<name>_info{...} 1`; the family name has no `_info` suffix.
    Info,
}

/// One metric family as gathered during a scrape.
#[derive(Debug)]
pub struct Family {
    /// Without the unit suffix, which the encoder appends (`system_memory_total` + bytes).
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Option<Unit>,
    pub kind: Kind,
    pub samples: Vec<(Labels, f64)>,
}

/// The families gathered during one scrape, in first-seen order.
#[derive(Debug, Default)]
pub struct Samples {
    families: Vec<Family>,
}

impl Samples {
    /// Adds a gauge sample (creating its family on first use).
    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        unit: Option<Unit>,
        labels: Labels,
        value: f64,
    ) {
        self.family(name, help, unit, Kind::Gauge)
            .samples
            .push((labels, value));
    }

    /// Adds an info sample (`<name>_info{labels} 1`).
    pub fn info(&mut self, name: &'static str, help: &'static str, labels: Labels) {
        self.family(name, help, None, Kind::Info)
            .samples
            .push((labels, 1.0));
    }

    /// Moves every sample of `other` into `self`.
    pub fn append(&mut self, other: Samples) {
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

    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// The value of the sample `name` (as registered, without unit) with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let family = self.families.iter().find(|f| f.name == name)?;
        family.samples.iter().find_map(|(l, v)| {
            let same = l.len() == labels.len()
                && l.iter()
                    .zip(labels)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && v1 == v2);
            same.then_some(*v)
        })
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

    #[test]
    fn samples_of_one_name_land_in_one_family() {
        let mut s = Samples::default();
        s.gauge("a", "A", None, vec![("x", "1".into())], 1.0);
        s.gauge("b", "B", None, vec![], 2.0);
        let mut more = Samples::default();
        more.gauge("a", "A", None, vec![("x", "2".into())], 3.0);
        s.append(more);
        assert_eq!(s.families().len(), 2);
        assert_eq!(s.families()[0].samples.len(), 2);
        assert_eq!(s.value("a", &[("x", "2")]), Some(3.0));
        assert_eq!(s.value("a", &[("x", "3")]), None);
        assert_eq!(s.value("b", &[]), Some(2.0));
    }
}
