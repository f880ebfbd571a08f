//! Who a container runs as, from its security context and its image, as the kubelet
//! expects: `run_as_user`/`run_as_username` win over the image's USER, the primary
//! group comes from `run_as_group`, else the user's entry in the image's /etc/passwd,
//! and the groups the image's /etc/group lists the user in are added to the
//! supplemental groups the pod asks for. The account files are read inside the image
//! through a read-only view of its layers (berth-fs), never through a host path.

use super::{Error, Result};
use std::path::{Path, PathBuf};

/// The account files of an image (empty when it has none).
#[derive(Debug, Default, Clone)]
pub struct Accounts {
    /// /etc/passwd.
    pub passwd: String,
    /// /etc/group.
    pub group: String,
}

/// Largest account file read (as the engine's limit for these files).
const MAX_ACCOUNT_FILE: u64 = 1 << 20;

impl Accounts {
    /// Reads /etc/passwd and /etc/group of the image whose layers are `lowers` (top
    /// first), through a read-only view mounted under `scratch`.
    pub fn read(lowers: &[PathBuf], scratch: &Path) -> Result<Self> {
        let root = berth_fs::view::open_layers(lowers, scratch)
            .map_err(|e| Error::Internal(format!("reading the image's file system: {e}")))?;
        let read = |f: &str| match root.read_file(f, MAX_ACCOUNT_FILE) {
            Ok(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(None) => String::new(),
            Err(e) => {
                tracing::warn!(file = f, error = %e, "unreadable account file in the image");
                String::new()
            }
        };
        Ok(Self {
            passwd: read("/etc/passwd"),
            group: read("/etc/group"),
        })
    }

    fn passwd_by_name(&self, name: &str) -> Option<(u32, u32)> {
        self.passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    }

    fn passwd_by_uid(&self, uid: u32) -> Option<(String, u32)> {
        self.passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[2].parse::<u32>().ok() == Some(uid))
                .then(|| Some((f[0].to_string(), f[3].parse().ok()?)))?
        })
    }

    fn group_by_name(&self, name: &str) -> Option<u32> {
        self.group.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[0] == name).then(|| f[2].parse().ok())?
        })
    }

    /// The groups whose member lists name `user`.
    fn groups_of(&self, user: &str) -> Vec<u32> {
        self.group
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 3 && f[3].split(',').any(|m| m == user)).then(|| f[2].parse().ok())?
            })
            .collect()
    }
}

/// What the security context says about the user.
#[derive(Debug, Default, Clone)]
pub struct Wanted {
    /// run_as_user.
    pub uid: Option<i64>,
    /// run_as_username.
    pub username: String,
    /// run_as_group.
    pub gid: Option<i64>,
    /// supplemental_groups.
    pub supplemental: Vec<i64>,
}

fn id(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Invalid(format!("{what} {v} is out of range")))
}

/// The uid, gid and additional groups the container runs as. `image_user` is the
/// image's USER (`uid`, `name`, `uid:gid`, `name:group`).
pub fn resolve(want: &Wanted, image_user: &str, acc: &Accounts) -> Result<(u32, u32, Vec<u32>)> {
    if want.gid.is_some() && want.uid.is_none() && want.username.is_empty() {
        return Err(Error::Invalid(
            "user group is specified without user: run_as_group needs run_as_user or run_as_username"
                .into(),
        ));
    }
    let (img_u, img_g) = match image_user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (image_user, None),
    };
    // The user part: the security context's, else the image's.
    let (uid, name, passwd_gid) = if let Some(u) = want.uid {
        let uid = id(u, "run_as_user")?;
        let (name, gid) = acc
            .passwd_by_uid(uid)
            .map(|(n, g)| (Some(n), Some(g)))
            .unwrap_or((None, None));
        (uid, name, gid)
    } else if !want.username.is_empty() {
        let (uid, gid) = acc.passwd_by_name(&want.username).ok_or_else(|| {
            Error::Invalid(format!(
                "no user {:?} found in the image's /etc/passwd",
                want.username
            ))
        })?;
        (uid, Some(want.username.clone()), Some(gid))
    } else if img_u.is_empty() {
        (0, Some("root".into()), Some(0))
    } else if let Ok(uid) = img_u.parse::<u32>() {
        let (name, gid) = acc
            .passwd_by_uid(uid)
            .map(|(n, g)| (Some(n), Some(g)))
            .unwrap_or((None, None));
        (uid, name, gid)
    } else {
        let (uid, gid) = acc.passwd_by_name(img_u).ok_or_else(|| {
            Error::Invalid(format!(
                "no user {img_u:?} found in the image's /etc/passwd"
            ))
        })?;
        (uid, Some(img_u.to_string()), Some(gid))
    };
    // The group: run_as_group, else the image's group when the image's user is used,
    // else the user's primary group.
    let uses_image_user = want.uid.is_none() && want.username.is_empty();
    let gid = if let Some(g) = want.gid {
        id(g, "run_as_group")?
    } else if let (true, Some(g)) = (uses_image_user, img_g.filter(|g| !g.is_empty())) {
        match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => acc.group_by_name(g).ok_or_else(|| {
                Error::Invalid(format!("no group {g:?} found in the image's /etc/group"))
            })?,
        }
    } else {
        passwd_gid.unwrap_or(0)
    };
    let mut groups: Vec<u32> = Vec::new();
    if let Some(n) = &name {
        groups.extend(acc.groups_of(n));
    }
    for g in &want.supplemental {
        groups.push(id(*g, "supplemental group")?);
    }
    groups.retain(|g| *g != gid);
    groups.sort_unstable();
    groups.dedup();
    Ok((uid, gid, groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc() -> Accounts {
        Accounts {
            passwd: "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/bin/false\ndefault-user:x:1000:1000::/home:/bin/sh\n".into(),
            group: "root:x:0:\nwww-data:x:33:\ngroup-defined-in-image:x:50000:default-user\n".into(),
        }
    }

    #[test]
    fn image_users_and_overrides() {
        let a = acc();
        let w = Wanted::default();
        assert_eq!(resolve(&w, "", &a).unwrap(), (0, 0, vec![]));
        assert_eq!(resolve(&w, "1002", &a).unwrap(), (1002, 0, vec![]));
        assert_eq!(resolve(&w, "www-data", &a).unwrap(), (33, 33, vec![]));
        assert_eq!(resolve(&w, "1003:1004", &a).unwrap(), (1003, 1004, vec![]));
        assert_eq!(
            resolve(&w, "www-data:1004", &a).unwrap(),
            (33, 1004, vec![])
        );
        // The image's user is in a group of its /etc/group, and the pod adds one.
        let w = Wanted {
            supplemental: vec![1234],
            ..Default::default()
        };
        assert_eq!(
            resolve(&w, "1000", &a).unwrap(),
            (1000, 1000, vec![1234, 50000])
        );
        let w = Wanted {
            uid: Some(1001),
            gid: Some(1002),
            ..Default::default()
        };
        assert_eq!(resolve(&w, "www-data", &a).unwrap(), (1001, 1002, vec![]));
        let w = Wanted {
            username: "www-data".into(),
            ..Default::default()
        };
        assert_eq!(resolve(&w, "", &a).unwrap(), (33, 33, vec![]));
    }

    #[test]
    fn bad_users_are_refused() {
        let a = acc();
        let w = Wanted {
            gid: Some(5),
            ..Default::default()
        };
        assert!(matches!(resolve(&w, "", &a), Err(Error::Invalid(_))));
        assert!(matches!(
            resolve(&Wanted::default(), "nobody-here", &a),
            Err(Error::Invalid(_))
        ));
        let w = Wanted {
            uid: Some(-1),
            ..Default::default()
        };
        assert!(matches!(resolve(&w, "", &a), Err(Error::Invalid(_))));
        let w = Wanted {
            username: "ghost".into(),
            ..Default::default()
        };
        assert!(matches!(resolve(&w, "", &a), Err(Error::Invalid(_))));
    }
}
