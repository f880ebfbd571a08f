//! The crash-safe metadata store (redb, one file under `--root`): namespaces and
//! container records. Every change is one committed transaction.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const NAMESPACES: TableDefinition<&str, &[u8]> = TableDefinition::new("namespaces");
/// Keyed "namespace/id".
const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");

/// A stored namespace.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NamespaceRec {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A stored root filesystem mount.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MountRec {
    /// Type.
    pub kind: String,
    /// Source.
    pub source: String,
    /// Target (unused for rootfs).
    pub target: String,
    /// Options.
    pub options: Vec<String>,
}

/// A stored runtime choice.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RuntimeRec {
    /// Runtime name.
    pub name: String,
    /// OCI runtime binary.
    pub binary_name: String,
    /// Explicit shim binary.
    pub shim_binary: String,
    /// OCI runtime root.
    pub root: String,
}

/// A stored container record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ContainerRec {
    /// ID.
    pub id: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// OCI spec JSON.
    pub spec: String,
    /// Rootfs mounts.
    pub rootfs: Vec<MountRec>,
    /// Runtime.
    pub runtime: RuntimeRec,
    /// Creation time (seconds, nanos since the epoch).
    pub created_at: (i64, i32),
    /// Update time.
    pub updated_at: (i64, i32),
}

/// The store.
pub struct Store {
    db: redb::Database,
}

fn key(ns: &str, id: &str) -> String {
    format!("{ns}/{id}")
}

fn decode<T: for<'a> Deserialize<'a>>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b)
        .map_err(|e| Error::Internal(format!("metadata store: corrupt record: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// redb's own page cache for the metadata store.
const STORE_CACHE_BYTES: usize = 256 << 10;

impl Store {
    /// Open (or create) the store at `path`, with the "default" namespace.
    pub fn open(path: &Path) -> Result<Self> {
        // redb caches every page it reads, up to 1 GiB by default; the store is small
        // and the file's pages stay in the kernel's page cache anyway.
        let db = redb::Builder::new()
            .set_cache_size(STORE_CACHE_BYTES)
            .create(path)?;
        let tx = db.begin_write()?;
        {
            let mut ns = tx.open_table(NAMESPACES)?;
            tx.open_table(CONTAINERS)?;
            if ns.get(berth_proto::DEFAULT_NAMESPACE)?.is_none() {
                let rec = NamespaceRec {
                    name: berth_proto::DEFAULT_NAMESPACE.into(),
                    ..Default::default()
                };
                ns.insert(berth_proto::DEFAULT_NAMESPACE, encode(&rec).as_slice())?;
            }
        }
        tx.commit()?;
        Ok(Self { db })
    }

    /// One namespace.
    pub fn namespace(&self, name: &str) -> Result<NamespaceRec> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(NAMESPACES)?;
        let v = t
            .get(name)?
            .ok_or_else(|| Error::NotFound(format!("namespace {name}: not found")))?;
        decode(v.value())
    }

    /// Every namespace.
    pub fn namespaces(&self) -> Result<Vec<NamespaceRec>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(NAMESPACES)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Insert or replace a namespace; `create` fails if it exists.
    pub fn put_namespace(&self, rec: &NamespaceRec, create: bool) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(NAMESPACES)?;
            let exists = t.get(rec.name.as_str())?.is_some();
            if create && exists {
                return Err(Error::AlreadyExists(format!(
                    "namespace {}: already exists",
                    rec.name
                )));
            }
            if !create && !exists {
                return Err(Error::NotFound(format!(
                    "namespace {}: not found",
                    rec.name
                )));
            }
            t.insert(rec.name.as_str(), encode(rec).as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Delete an empty namespace.
    pub fn delete_namespace(&self, name: &str) -> Result<()> {
        if name == berth_proto::DEFAULT_NAMESPACE {
            return Err(Error::FailedPrecondition(
                "namespace default: cannot be deleted".into(),
            ));
        }
        let tx = self.db.begin_write()?;
        {
            let containers = tx.open_table(CONTAINERS)?;
            let prefix = format!("{name}/");
            if containers
                .range(prefix.as_str()..)?
                .next()
                .transpose()?
                .is_some_and(|(k, _)| k.value().starts_with(&prefix))
            {
                return Err(Error::FailedPrecondition(format!(
                    "namespace {name}: still has containers"
                )));
            }
            let mut t = tx.open_table(NAMESPACES)?;
            if t.remove(name)?.is_none() {
                return Err(Error::NotFound(format!("namespace {name}: not found")));
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// One container record.
    pub fn container(&self, ns: &str, id: &str) -> Result<ContainerRec> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CONTAINERS)?;
        let v = t.get(key(ns, id).as_str())?.ok_or_else(|| {
            Error::NotFound(format!("container {id}: not found in namespace {ns}"))
        })?;
        decode(v.value())
    }

    /// The records of a namespace, sorted by ID.
    pub fn containers(&self, ns: &str) -> Result<Vec<ContainerRec>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CONTAINERS)?;
        let prefix = format!("{ns}/");
        let mut out = Vec::new();
        for item in t.range(prefix.as_str()..)? {
            let (k, v) = item?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Insert (`create`: must not exist) or replace (must exist) a record.
    pub fn put_container(&self, ns: &str, rec: &ContainerRec, create: bool) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let nst = tx.open_table(NAMESPACES)?;
            if nst.get(ns)?.is_none() {
                return Err(Error::NotFound(format!("namespace {ns}: not found")));
            }
            let mut t = tx.open_table(CONTAINERS)?;
            let k = key(ns, &rec.id);
            let exists = t.get(k.as_str())?.is_some();
            if create && exists {
                return Err(Error::AlreadyExists(format!(
                    "container {}: already exists in namespace {ns}",
                    rec.id
                )));
            }
            if !create && !exists {
                return Err(Error::NotFound(format!(
                    "container {}: not found in namespace {ns}",
                    rec.id
                )));
            }
            t.insert(k.as_str(), encode(rec).as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Delete a record.
    pub fn delete_container(&self, ns: &str, id: &str) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(CONTAINERS)?;
            if t.remove(key(ns, id).as_str())?.is_none() {
                return Err(Error::NotFound(format!(
                    "container {id}: not found in namespace {ns}"
                )));
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let s = Store::open(&path).unwrap();
            let rec = ContainerRec {
                id: "a".into(),
                spec: "{}".into(),
                ..Default::default()
            };
            s.put_container("default", &rec, true).unwrap();
            assert!(matches!(
                s.put_container("default", &rec, true),
                Err(Error::AlreadyExists(_))
            ));
            assert!(matches!(
                s.put_container("nope", &rec, true),
                Err(Error::NotFound(_))
            ));
            s.put_namespace(
                &NamespaceRec {
                    name: "b".into(),
                    ..Default::default()
                },
                true,
            )
            .unwrap();
            s.put_container(
                "b",
                &ContainerRec {
                    id: "x".into(),
                    ..Default::default()
                },
                true,
            )
            .unwrap();
            assert!(matches!(
                s.delete_namespace("b"),
                Err(Error::FailedPrecondition(_))
            ));
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.containers("default").unwrap().len(), 1);
        assert_eq!(s.containers("b").unwrap()[0].id, "x");
        s.delete_container("b", "x").unwrap();
        s.delete_namespace("b").unwrap();
        assert!(matches!(
            s.container("default", "zz"),
            Err(Error::NotFound(_))
        ));
    }
}
