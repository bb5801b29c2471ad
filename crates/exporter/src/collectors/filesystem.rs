//! `filesystem`: size and free space of the configured mount points and of the filesystems
//! holding the model bundles. Never one series per pseudo-filesystem: only what is configured.
//!
//! Values come from `statvfs(2)`: size = `f_blocks * f_frsize`, avail = `f_bavail * f_frsize`
//! (the space an unprivileged writer can still use, as `df` shows it).

use super::{CollectError, Collector, CollectorName, MountpointLabels, Samples};
use crate::configuration::MountPoint;
use prometheus_client::registry::Unit;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub(crate) struct FilesystemCollector {
    mountpoints: Vec<MountPoint>,
    model_bundles: Vec<PathBuf>,
}

impl FilesystemCollector {
    pub(crate) fn new(mountpoints: Vec<MountPoint>, model_bundles: Vec<PathBuf>) -> Self {
        Self {
            mountpoints,
            model_bundles,
        }
    }
}

struct Usage {
    size_bytes: u64,
    avail_bytes: u64,
}

fn statvfs(path: &Path) -> Result<Usage, CollectError> {
    let s = rustix::fs::statvfs(path)
        .map_err(|e| CollectError::new(format!("statvfs {}: {e}", path.display())))?;
    Ok(Usage {
        size_bytes: s.f_blocks.saturating_mul(s.f_frsize),
        avail_bytes: s.f_bavail.saturating_mul(s.f_frsize),
    })
}

fn device_of(path: &Path) -> Result<u64, CollectError> {
    std::fs::metadata(path)
        .map(|m| m.dev())
        .map_err(|e| CollectError::new(format!("stat {}: {e}", path.display())))
}

impl Collector for FilesystemCollector {
    fn name(&self) -> CollectorName {
        CollectorName::Filesystem
    }

    fn collect(&self, out: &mut Samples) -> Result<(), CollectError> {
        let mut errors = Vec::new();
        let mut seen_devices = Vec::new();
        let mut seen_labels = Vec::new();
        let report = |out: &mut Samples, mountpoint: String, usage: Usage| {
            let labels = MountpointLabels { mountpoint };
            out.gauge(
                "system_filesystem_size",
                "Size of the filesystem",
                Some(Unit::Bytes),
                labels.clone(),
                usage.size_bytes as f64,
            );
            out.gauge(
                "system_filesystem_avail",
                "Space left on the filesystem for unprivileged users",
                Some(Unit::Bytes),
                labels,
                usage.avail_bytes as f64,
            );
        };

        for mp in &self.mountpoints {
            if seen_labels.contains(&mp.label) {
                continue;
            }
            match (statvfs(&mp.path), device_of(&mp.path)) {
                (Ok(usage), Ok(dev)) => {
                    seen_devices.push(dev);
                    seen_labels.push(mp.label.clone());
                    report(out, mp.label.clone(), usage);
                }
                (Err(e), _) | (_, Err(e)) => errors.push(e.0),
            }
        }

        // The filesystem of each model bundle, unless a configured mount point already covers
        // it. A missing bundle is the model_artifacts collector's failure, not this one's.
        for bundle in &self.model_bundles {
            let Ok(dev) = device_of(bundle) else { continue };
            if seen_devices.contains(&dev) {
                continue;
            }
            let label = mount_point_of(bundle)
                .unwrap_or_else(|| bundle.to_path_buf())
                .display()
                .to_string();
            if seen_labels.contains(&label) {
                continue;
            }
            match statvfs(bundle) {
                Ok(usage) => {
                    seen_devices.push(dev);
                    seen_labels.push(label.clone());
                    report(out, label, usage);
                }
                Err(e) => errors.push(e.0),
            }
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(CollectError::new(errors.join("; ")))
        }
    }
}

/// The mount point holding `path`: the longest mount point in `/proc/self/mountinfo` that is a
/// prefix of the canonical path (the later of equal ones, which is mounted on top).
fn mount_point_of(path: &Path) -> Option<PathBuf> {
    let canonical = std::fs::canonicalize(path).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    longest_mount_prefix(&mountinfo, &canonical)
}

fn longest_mount_prefix(mountinfo: &str, canonical: &Path) -> Option<PathBuf> {
    mountinfo
        .lines()
        .filter_map(parse_mountinfo_line)
        .filter(|mp| canonical.starts_with(mp))
        .fold(None, |best: Option<PathBuf>, mp| match best {
            Some(b) if b.components().count() > mp.components().count() => Some(b),
            _ => Some(mp),
        })
}

/// The mount point (5th field, octal escapes such as `\040` undone) of a `/proc/self/mountinfo`
/// line: `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`.
fn parse_mountinfo_line(line: &str) -> Option<PathBuf> {
    let field = line.split(' ').nth(4)?;
    if !field.starts_with('/') {
        return None;
    }
    let bytes = field.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                decoded.push(u8::try_from(value).ok()?);
                i += 4;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    Some(PathBuf::from(
        String::from_utf8_lossy(&decoded).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mountpoint(label: &str) -> MountpointLabels {
        MountpointLabels {
            mountpoint: label.into(),
        }
    }

    const MOUNTINFO: &str = "\
22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /proc rw,nosuid - proc proc rw
24 22 0:22 / /sys rw,nosuid - sysfs sysfs rw
40 22 253:16 / /srv/models rw,relatime shared:20 - ext4 /dev/vdb rw
41 22 253:17 / /srv/my\\040models rw,relatime - ext4 /dev/vdc rw
";

    #[test]
    fn parses_mount_points_with_escapes() {
        let lines: Vec<_> = MOUNTINFO.lines().filter_map(parse_mountinfo_line).collect();
        assert_eq!(lines[0], PathBuf::from("/"));
        assert_eq!(lines[3], PathBuf::from("/srv/models"));
        assert_eq!(lines[4], PathBuf::from("/srv/my models"));
        assert_eq!(parse_mountinfo_line("garbage"), None);
    }

    #[test]
    fn finds_the_innermost_mount_of_a_path() {
        let at = |p: &str| longest_mount_prefix(MOUNTINFO, Path::new(p));
        assert_eq!(
            at("/srv/models/breast-cancer"),
            Some(PathBuf::from("/srv/models"))
        );
        assert_eq!(at("/srv/modelsx/a"), Some(PathBuf::from("/")));
        assert_eq!(
            at("/srv/my models/a"),
            Some(PathBuf::from("/srv/my models"))
        );
        assert_eq!(at("/home/user"), Some(PathBuf::from("/")));
    }

    #[test]
    fn a_bundle_on_a_configured_filesystem_is_not_reported_twice() {
        let bundle = tempfile::tempdir().expect("tempdir");
        let collector = FilesystemCollector::new(
            vec![MountPoint {
                path: bundle.path().to_path_buf(),
                label: "bundle-fs".into(),
            }],
            vec![bundle.path().to_path_buf()],
        );
        let mut out = Samples::default();
        collector.collect(&mut out).expect("statvfs of a temp dir");
        assert_eq!(out.families()[0].samples.len(), 1);
        assert!(
            out.value("system_filesystem_size", mountpoint("bundle-fs"))
                .is_some_and(|v| v > 0.0)
        );
    }

    #[test]
    fn a_missing_mount_point_fails_the_collector_but_keeps_the_others() {
        let collector = FilesystemCollector::new(
            vec![
                MountPoint {
                    path: "/definitely/not/here".into(),
                    label: "gone".into(),
                },
                MountPoint {
                    path: "/".into(),
                    label: "/".into(),
                },
            ],
            vec![],
        );
        let mut out = Samples::default();
        let err = collector.collect(&mut out).expect_err("missing path");
        assert!(err.0.contains("/definitely/not/here"), "{err}");
        assert!(
            out.value("system_filesystem_avail", mountpoint("/"))
                .is_some()
        );
        assert!(
            out.value("system_filesystem_avail", mountpoint("gone"))
                .is_none()
        );
    }
}
