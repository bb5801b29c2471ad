//! `memory`: RAM and swap of the machine from `/proc/meminfo` (through sysinfo), and the cgroup
//! memory limit of this process where one applies (containers, systemd units with `MemoryMax`).

use super::{CollectError, Collector, CollectorName, Labels, Samples};
use prometheus_client::registry::Unit;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use sysinfo::{MemoryRefreshKind, RefreshKind, System};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Limits at or above this mean "no limit" (cgroup v1 writes `PAGE_COUNTER_MAX` pages, about 2^63).
const UNLIMITED_THRESHOLD: u64 = 1 << 62;

pub(crate) struct MemoryCollector {
    system: Mutex<System>,
}

impl MemoryCollector {
    pub(crate) fn new() -> Self {
        Self {
            system: Mutex::new(System::new_with_specifics(RefreshKind::nothing())),
        }
    }
}

impl Collector for MemoryCollector {
    fn name(&self) -> CollectorName {
        CollectorName::Memory
    }

    fn collect(&self, out: &mut Samples) -> Result<(), CollectError> {
        let mut system = self.system.lock().unwrap_or_else(PoisonError::into_inner);
        system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        let total = system.total_memory();
        if total == 0 {
            return Err(CollectError::new("cannot read /proc/meminfo"));
        }
        let available = system.available_memory();
        let bytes = Some(Unit::Bytes);
        out.gauge(
            "system_memory_total",
            "Physical memory of the machine",
            bytes.clone(),
            Labels::Empty,
            total as f64,
        );
        out.gauge(
            "system_memory_available",
            "Memory available for starting new applications without swapping (MemAvailable)",
            bytes.clone(),
            Labels::Empty,
            available as f64,
        );
        out.gauge(
            "system_memory_used",
            "Physical memory minus available memory",
            bytes.clone(),
            Labels::Empty,
            total.saturating_sub(available) as f64,
        );
        out.gauge(
            "system_swap_total",
            "Swap space of the machine",
            bytes.clone(),
            Labels::Empty,
            system.total_swap() as f64,
        );
        out.gauge(
            "system_swap_used",
            "Swap space in use",
            bytes.clone(),
            Labels::Empty,
            system.used_swap() as f64,
        );
        drop(system);

        let own_cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        if let Some(limit) = cgroup_memory_limit(&own_cgroups, Path::new(CGROUP_ROOT)) {
            out.gauge(
                "system_memory_limit",
                "Memory limit of this process's cgroup (container), when one is set",
                bytes,
                Labels::Empty,
                limit as f64,
            );
        }
        Ok(())
    }
}

/// The tightest memory limit of the cgroups in `proc_self_cgroup` and their ancestors, if any.
fn cgroup_memory_limit(proc_self_cgroup: &str, cgroup_root: &Path) -> Option<u64> {
    cgroup_memory_limit_files(proc_self_cgroup, cgroup_root)
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .filter_map(|text| parse_cgroup_limit(&text))
        .min()
}

/// The files that may hold a memory limit for the cgroups listed in `/proc/self/cgroup`, from
/// the process's own cgroup up to the root of the hierarchy: cgroup v2 `memory.max` in the
/// unified hierarchy, cgroup v1 `memory.limit_in_bytes` under the `memory` controller.
/// In a container with its own cgroup namespace the paths are `/`, so the container's
/// limit is read from the root of its view.
fn cgroup_memory_limit_files(proc_self_cgroup: &str, cgroup_root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (base, file) = if id == "0" && controllers.is_empty() {
            (cgroup_root.to_path_buf(), "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            (cgroup_root.join("memory"), "memory.limit_in_bytes")
        } else {
            continue;
        };
        let mut dir = Some(Path::new(path));
        while let Some(d) = dir {
            let relative = d.strip_prefix("/").unwrap_or(d);
            files.push(base.join(relative).join(file));
            dir = d.parent();
        }
    }
    files
}

/// A limit file's content: bytes, or `None` for `max` and for values meaning "unlimited".
fn parse_cgroup_limit(text: &str) -> Option<u64> {
    let value: u64 = text.trim().parse().ok()?;
    (value < UNLIMITED_THRESHOLD).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_limits_and_unlimited_markers() {
        assert_eq!(parse_cgroup_limit("536870912\n"), Some(536_870_912));
        assert_eq!(parse_cgroup_limit("max\n"), None);
        assert_eq!(parse_cgroup_limit("9223372036854771712\n"), None);
        assert_eq!(parse_cgroup_limit(""), None);
    }

    #[test]
    fn v2_container_reads_the_root_of_its_namespace() {
        let files = cgroup_memory_limit_files("0::/\n", Path::new("/sys/fs/cgroup"));
        assert_eq!(files, vec![PathBuf::from("/sys/fs/cgroup/memory.max")]);
    }

    #[test]
    fn v2_host_service_walks_up_to_the_root() {
        let files = cgroup_memory_limit_files(
            "0::/system.slice/exporter.service\n",
            Path::new("/sys/fs/cgroup"),
        );
        assert_eq!(
            files,
            vec![
                PathBuf::from("/sys/fs/cgroup/system.slice/exporter.service/memory.max"),
                PathBuf::from("/sys/fs/cgroup/system.slice/memory.max"),
                PathBuf::from("/sys/fs/cgroup/memory.max"),
            ]
        );
    }

    #[test]
    fn v1_uses_the_memory_controller_only() {
        let fixture = "9:name=systemd:/\n8:pids:/\n4:memory:/docker/abc\n2:cpu,cpuacct:/\n0::/\n";
        let files = cgroup_memory_limit_files(fixture, Path::new("/sys/fs/cgroup"));
        assert_eq!(
            files,
            vec![
                PathBuf::from("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"),
                PathBuf::from("/sys/fs/cgroup/memory/docker/memory.limit_in_bytes"),
                PathBuf::from("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
                PathBuf::from("/sys/fs/cgroup/memory.max"),
            ]
        );
    }

    #[test]
    fn the_tightest_limit_wins() {
        let root = tempfile::tempdir().expect("tempdir");
        let svc = root.path().join("a/b");
        std::fs::create_dir_all(&svc).expect("mkdir");
        std::fs::write(svc.join("memory.max"), "max\n").expect("write");
        std::fs::write(root.path().join("a/memory.max"), "1048576\n").expect("write");
        assert_eq!(
            cgroup_memory_limit("0::/a/b\n", root.path()),
            Some(1_048_576)
        );
        assert_eq!(cgroup_memory_limit("0::/\n", root.path()), None);
    }
}
