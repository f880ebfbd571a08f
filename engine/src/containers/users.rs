//! Users and groups as a container sees them: `-u name`, `uid`, `name:group`,
//! `uid:gid`, and `--group-add`, looked up in the container's own `/etc/passwd` and
//! `/etc/group`, read through a root resolved inside it (an image's `/etc/passwd` that
//! is a symlink to a host file names the image's own file).

use super::{Error, Result};

/// Longest passwd or group file read from an image (a hostile one could be endless).
const MAX_ACCOUNT_FILE: u64 = 16 << 20;

/// Who a process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary gids: the user's groups, then `--group-add`'s.
    pub additional_gids: Vec<u32>,
    /// Its home directory from passwd (`/` when it has no entry, as runc).
    pub home: String,
}

/// The account files of a container: `/etc/passwd` and `/etc/group` as text.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    passwd: String,
    group: String,
}

fn fields(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
}

impl Accounts {
    /// Reads them through `root` (missing files are empty).
    pub fn read(root: &berth_fs::Root) -> Self {
        let read = |f: &str| -> String {
            match root.read_file(f, MAX_ACCOUNT_FILE) {
                Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                Ok(None) => String::new(),
                Err(e) => {
                    tracing::warn!(file = f, error = %e, "unreadable account file in the image");
                    String::new()
                }
            }
        };
        Self {
            passwd: read("/etc/passwd"),
            group: read("/etc/group"),
        }
    }

    /// From the files' text.
    pub fn from_text(passwd: &str, group: &str) -> Self {
        Self {
            passwd: passwd.into(),
            group: group.into(),
        }
    }

    fn group_id(&self, g: &str) -> Option<u32> {
        match g.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => fields(&self.group)
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok()),
        }
    }

    /// Resolves `user` (empty: root) and adds the groups of `group_add` (names or
    /// numbers), with dockerd's words for what is not there.
    pub fn user(&self, user: &str, group_add: &[String]) -> Result<User> {
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        let u = if u.is_empty() { "0" } else { u };
        let entry = match u.parse::<u32>() {
            Ok(n) => fields(&self.passwd).find(|f| f.len() > 3 && f[2].parse() == Ok(n)),
            Err(_) => Some(
                fields(&self.passwd)
                    .find(|f| f.len() > 3 && f[0] == u)
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "unable to find user {u}: no matching entries in passwd file"
                        ))
                    })?,
            ),
        };
        let uid = match u.parse::<u32>() {
            Ok(n) => n,
            Err(_) => entry.as_ref().and_then(|f| f[2].parse().ok()).unwrap_or(0),
        };
        let mut gid = entry.as_ref().and_then(|f| f[3].parse().ok()).unwrap_or(0);
        let home = entry
            .as_ref()
            .and_then(|f| f.get(5))
            .filter(|h| !h.is_empty())
            .map(|h| h.to_string())
            .unwrap_or_else(|| "/".into());
        if let Some(g) = g {
            gid = self.group_id(g).ok_or_else(|| {
                Error::Invalid(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?;
        }
        let mut gids = Vec::new();
        if let Some(name) = entry.as_ref().map(|f| f[0]) {
            for f in fields(&self.group) {
                if f.len() > 3 && f[3].split(',').any(|m| m == name) {
                    if let Ok(n) = f[2].parse::<u32>() {
                        if n != gid && !gids.contains(&n) {
                            gids.push(n);
                        }
                    }
                }
            }
        }
        for g in group_add {
            let n = self.group_id(g).ok_or_else(|| {
                Error::Invalid(format!(
                    "Unable to find group {g}: no matching entries in group file"
                ))
            })?;
            if !gids.contains(&n) {
                gids.push(n);
            }
        }
        Ok(User {
            uid,
            gid,
            additional_gids: gids,
            home,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        Accounts::from_text(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\nu:x:1000:1000::/home/u:/bin/sh\n",
            "root:x:0:\nwheel:x:10:nobody,u\nextra:x:2000:\n",
        )
    }

    #[test]
    fn users_groups_and_homes() {
        let a = accounts();
        let root = a.user("", &[]).unwrap();
        assert_eq!((root.uid, root.gid, root.home.as_str()), (0, 0, "/root"));
        let u = a.user("u", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/u"));
        assert_eq!(u.additional_gids, vec![10]);
        // By number: the entry's home and groups; an unknown uid gets `/`.
        assert_eq!(a.user("1000", &[]).unwrap().home, "/home/u");
        let stranger = a.user("4242:wheel", &[]).unwrap();
        assert_eq!(
            (stranger.uid, stranger.gid, stranger.home.as_str()),
            (4242, 10, "/")
        );
        assert_eq!(
            a.user("ghost", &[]).unwrap_err().to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert!(a.user("u:nogroup", &[]).is_err());
    }

    #[test]
    fn group_add() {
        let a = accounts();
        let r = a
            .user("", &["extra".into(), "4000".into(), "10".into()])
            .unwrap();
        assert_eq!(r.additional_gids, vec![2000, 4000, 10]);
        assert_eq!(
            a.user("", &["nope".into()]).unwrap_err().to_string(),
            "Unable to find group nope: no matching entries in group file"
        );
    }
}
