//! The checkpointer's high-water marks: per organization, the largest checkpoint (size and root)
//! this node has seen signed. The database must never show less, or the node would sign a
//! checkpoint over rewritten history. The marks are kept in a file outside the database
//! (`MANDATE_STATE_DIR`, `audit-high-water.json`) so they survive restarts: someone who rewrites
//! the log and its checkpoints while the node is down is still caught when it comes back.
//!
//! The file is written after the checkpoints it records have committed (a crash in between
//! leaves it behind the database, which is safe) and replaced atomically (write, sync, rename).

use crate::model::audit::Checkpoint;
use crate::server::domain::DomainError;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use uuid::Uuid;

/// The file's name inside the state directory.
pub const FILE_NAME: &str = "audit-high-water.json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    size: i64,
    root_hash: String,
}

#[derive(Default, Serialize, Deserialize)]
struct Marks {
    /// The file's format, so a later version can read it.
    version: u32,
    organizations: BTreeMap<Uuid, Mark>,
}

/// The marks, and the file that keeps them (none: in memory only, for tests and one-off tools).
#[derive(Default)]
pub struct HighWaterMarks {
    file: Option<PathBuf>,
    marks: Mutex<(Marks, bool)>,
}

impl std::fmt::Debug for HighWaterMarks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HighWaterMarks").field("file", &self.file).finish_non_exhaustive()
    }
}

impl HighWaterMarks {
    /// Reads the marks from `file` (none yet: an empty set), then adds the newest stored
    /// checkpoint of every organization the file does not name, so rewriting history after
    /// this start is caught even on a node that never signed for that organization. A file
    /// that exists but cannot be read is an error: silently starting empty would forget
    /// exactly what the file is for.
    pub async fn load(pool: &PgPool, file: Option<&Path>) -> Result<HighWaterMarks, DomainError> {
        let mut marks = match file {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => serde_json::from_slice::<Marks>(&bytes).map_err(|err| {
                    DomainError::Internal(format!(
                        "{} is damaged ({err}); restore it from a backup, or move it away to trust the database's \
                         checkpoints as they are now",
                        path.display()
                    ))
                })?,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Marks::default(),
                Err(err) => return Err(DomainError::Internal(format!("could not read {}: {err}", path.display()))),
            },
            None => Marks::default(),
        };
        // language=PostgreSQL
        let newest = sqlx::query!(
            "select distinct on (org_id) org_id, size, root_hash from audit_checkpoints order by org_id, size desc"
        )
        .fetch_all(pool)
        .await?;
        for row in newest {
            marks
                .organizations
                .entry(row.org_id)
                .or_insert(Mark { size: row.size, root_hash: hex::encode(row.root_hash) });
        }
        Ok(HighWaterMarks { file: file.map(Path::to_path_buf), marks: Mutex::new((marks, true)) })
    }

    /// Whether the newest stored checkpoint still carries the mark: larger, or the same size
    /// with the same root.
    pub fn allows(&self, org_id: Uuid, latest: Option<&Checkpoint>) -> bool {
        let guard = self.marks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match (guard.0.organizations.get(&org_id), latest) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mark), Some(latest)) => {
                latest.size > mark.size || (latest.size == mark.size && latest.root_hash == mark.root_hash)
            }
        }
    }

    /// Raises the mark of an organization to a checkpoint that has committed.
    pub fn raise(&self, org_id: Uuid, size: i64, root: &[u8]) {
        let mut guard = self.marks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (marks, dirty) = &mut *guard;
        if marks.organizations.get(&org_id).is_none_or(|mark| mark.size < size) {
            marks.organizations.insert(org_id, Mark { size, root_hash: hex::encode(root) });
            *dirty = true;
        }
    }

    /// Writes the marks to the file when they changed since the last write, merged with what
    /// the file holds now (another process on this node, a CLI command, may have raised a mark).
    pub fn save(&self) -> Result<(), DomainError> {
        let Some(path) = &self.file else { return Ok(()) };
        let on_disk: Option<Marks> = std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let bytes = {
            let mut guard = self.marks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if !guard.1 {
                return Ok(());
            }
            for (org_id, mark) in on_disk.map(|marks| marks.organizations).unwrap_or_default() {
                if guard.0.organizations.get(&org_id).is_none_or(|ours| ours.size < mark.size) {
                    guard.0.organizations.insert(org_id, mark);
                }
            }
            guard.1 = false;
            guard.0.version = 1;
            serde_json::to_vec_pretty(&guard.0).map_err(|err| DomainError::Internal(err.to_string()))?
        };
        write_atomically(path, &bytes).map_err(|err| {
            // Try again on the next pass.
            self.marks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).1 = true;
            DomainError::Internal(format!("could not write {}: {err}", path.display()))
        })
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // A name of its own per write: two processes writing at once never share a temporary file.
    let temporary = path.with_extension(format!("json.{}.{}.tmp", std::process::id(), uuid::Uuid::new_v4().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&temporary)?;
    out.write_all(bytes)?;
    out.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn checkpoint(org_id: Uuid, size: i64, root: &str) -> Checkpoint {
        Checkpoint {
            org_id,
            size,
            root_hash: root.to_string(),
            signed_at: OffsetDateTime::UNIX_EPOCH,
            key_id: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn the_database_may_grow_past_a_mark_but_never_fall_behind_or_fork() {
        let marks = HighWaterMarks::default();
        let org = Uuid::new_v4();
        assert!(marks.allows(org, None), "nothing known yet");
        marks.raise(org, 5, &[1; 32]);
        let root = hex::encode([1u8; 32]);
        assert!(marks.allows(org, Some(&checkpoint(org, 5, &root))));
        assert!(marks.allows(org, Some(&checkpoint(org, 9, "other"))));
        assert!(!marks.allows(org, Some(&checkpoint(org, 5, "forked"))));
        assert!(!marks.allows(org, Some(&checkpoint(org, 4, &root))));
        assert!(!marks.allows(org, None), "deleted checkpoints");
        marks.raise(org, 3, &[2; 32]);
        assert!(marks.allows(org, Some(&checkpoint(org, 5, &root))), "a mark never moves down");
    }

    #[test]
    fn marks_are_written_atomically_and_read_back() {
        let dir = std::env::temp_dir().join(format!("mandate-high-water-{}", Uuid::new_v4()));
        let path = dir.join(FILE_NAME);
        let marks = HighWaterMarks { file: Some(path.clone()), marks: Default::default() };
        let org = Uuid::new_v4();
        marks.raise(org, 7, &[3; 32]);
        marks.save().unwrap();
        let read: Marks = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(read.organizations[&org], Mark { size: 7, root_hash: hex::encode([3u8; 32]) });
        let leftovers = std::fs::read_dir(&dir).unwrap().filter(|e| e.as_ref().unwrap().path() != path).count();
        assert_eq!(leftovers, 0, "the temporary file was renamed into place");
        // Another writer's higher mark in the file survives our next write.
        let other = Uuid::new_v4();
        let mut on_disk: Marks = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        on_disk.organizations.insert(other, Mark { size: 9, root_hash: "ab".into() });
        std::fs::write(&path, serde_json::to_vec(&on_disk).unwrap()).unwrap();
        marks.raise(org, 8, &[4; 32]);
        marks.save().unwrap();
        let read: Marks = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!((read.organizations[&org].size, read.organizations[&other].size), (8, 9));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
