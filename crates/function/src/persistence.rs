//! Whether the configured store outlives a function instance. A function's local disk (and
//! memory) goes with its instance: with such a store a `failure_threshold: 2` monitor never
//! alerts and a `failure_threshold: 1` monitor alerts on every cold start. PostgreSQL and a
//! SQLite file on a mounted network file system (Tencent CFS, Amazon EFS, Alibaba NAS: NFS or
//! SMB mounts) keep state; anything else gets one loud warning per cold start.

use std::path::{Path, PathBuf};

/// Where state lives, as far as a function is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persistence {
    /// A PostgreSQL server.
    Postgres,
    /// A SQLite file on a network file system of this type (`nfs4`, `cifs`, …).
    NetworkFile { fs_type: String },
    /// Lost with the instance: `sqlite::memory:`, or a SQLite file on local disk.
    Ephemeral { what: String },
}

/// File systems that are mounted from elsewhere and outlive an instance.
const NETWORK_FS: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "glusterfs",
    "lustre",
    "efs",
];

/// Judge the store URL `storage` (as in the config) against the mounts listed in
/// `mountinfo` (the text of `/proc/self/mountinfo`; empty when unknown).
pub fn judge(storage: &str, mountinfo: &str) -> Persistence {
    if storage.starts_with("postgres://") || storage.starts_with("postgresql://") {
        return Persistence::Postgres;
    }
    let path = storage
        .strip_prefix("sqlite:")
        .map(|p| p.strip_prefix("//").unwrap_or(p))
        .unwrap_or(storage);
    if path == ":memory:" {
        return Persistence::Ephemeral {
            what: "the store is sqlite::memory:".into(),
        };
    }
    let path = absolute(Path::new(path));
    match fs_type_of(&path, mountinfo) {
        Some(fs) if NETWORK_FS.contains(&fs.as_str()) || fs.starts_with("nfs") => {
            Persistence::NetworkFile { fs_type: fs }
        }
        Some(fs) => Persistence::Ephemeral {
            what: format!(
                "the store is the SQLite file {} on a local {fs} file system",
                path.display()
            ),
        },
        None => Persistence::Ephemeral {
            what: format!(
                "the store is the SQLite file {} on a file system watchpost can't identify",
                path.display()
            ),
        },
    }
}

/// Judge the store with this process's mounts.
pub fn check(storage: &str) -> Persistence {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    judge(storage, &mountinfo)
}

impl Persistence {
    /// The cold-start warning, or `None` when state persists.
    pub fn warning(&self) -> Option<String> {
        match self {
            Persistence::Ephemeral { what } => Some(format!(
                "STATE WILL NOT PERSIST between invocations: {what}, which goes away with this \
                 function instance. Alert state (failure thresholds, open incidents, reminders, \
                 queued notifications) is lost on every cold start, so a monitor may never \
                 alert or alert again each time. Fix: set `storage:` to a PostgreSQL URL \
                 (storage: postgres://USER:${{PGPASSWORD}}@HOST/DB, e.g. TencentDB or RDS), or \
                 to a SQLite file on a mounted persistent file system (Tencent CFS, Amazon EFS, \
                 Alibaba NAS), e.g. storage: sqlite:///mnt/cfs/watchpost.db."
            )),
            _ => None,
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// The type of the file system the longest mount point containing `path` has, from
/// `/proc/self/mountinfo` lines (`ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] - TYPE SRC
/// SUPEROPTS`).
fn fs_type_of(path: &Path, mountinfo: &str) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mount), Some(fs)) = (fields.get(4), fields.get(dash + 1)) else {
            continue;
        };
        let mount = unescape(mount);
        if path.starts_with(&mount) {
            let depth = Path::new(&mount).components().count();
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                best = Some((depth, fs.to_string()));
            }
        }
    }
    best.map(|(_, fs)| fs)
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
22 1 0:21 / / rw,relatime - overlay overlay rw
30 22 0:40 / /tmp rw,nosuid - tmpfs tmpfs rw
41 22 0:52 / /mnt/cfs rw,relatime - nfs4 10.0.0.8:/ rw,vers=4.0
42 22 0:53 / /mnt/my\\040share rw - cifs //nas/share rw
";

    #[test]
    fn postgres_and_network_files_persist() {
        assert_eq!(
            judge("postgres://u:p@db/watchpost", MOUNTS),
            Persistence::Postgres
        );
        assert_eq!(
            judge("sqlite:///mnt/cfs/state/watchpost.db", MOUNTS),
            Persistence::NetworkFile {
                fs_type: "nfs4".into()
            }
        );
        assert_eq!(
            judge("sqlite:///mnt/my share/w.db", MOUNTS),
            Persistence::NetworkFile {
                fs_type: "cifs".into()
            }
        );
        assert!(judge("postgres://db/w", MOUNTS).warning().is_none());
    }

    #[test]
    fn memory_and_local_files_get_the_warning() {
        let w = judge("sqlite::memory:", MOUNTS).warning().unwrap();
        assert!(
            w.contains("sqlite::memory:") && w.contains("postgres://"),
            "{w}"
        );
        let w = judge("sqlite:///tmp/watchpost.db", MOUNTS)
            .warning()
            .unwrap();
        assert!(
            w.contains("/tmp/watchpost.db") && w.contains("tmpfs"),
            "{w}"
        );
        assert!(
            judge("sqlite:///var/x.db", MOUNTS)
                .warning()
                .unwrap()
                .contains("overlay")
        );
        assert!(judge("sqlite:///var/x.db", "").warning().is_some());
    }
}
