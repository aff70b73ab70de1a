//! Dropping root after the capture is open.

use super::RunAs;
use nix::unistd::{self, Gid, Uid, User};
use std::path::Path;

/// The account to run as: `--user`, else the sudo caller (SUDO_UID/SUDO_GID, when not
/// root), else `nobody`.
pub fn target(
    user: Option<&str>,
    sudo_uid: Option<&str>,
    sudo_gid: Option<&str>,
) -> Result<RunAs, String> {
    if let Some(name) = user {
        let u = User::from_name(name)
            .map_err(|e| format!("--user {name}: {e}"))?
            .ok_or_else(|| format!("--user {name}: no such user"))?;
        return Ok(RunAs {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            user: u.name,
        });
    }
    if let (Some(uid), Some(gid)) = (sudo_uid, sudo_gid) {
        let uid: u32 = uid
            .trim()
            .parse()
            .map_err(|_| format!("SUDO_UID={uid:?} is not a number"))?;
        let gid: u32 = gid
            .trim()
            .parse()
            .map_err(|_| format!("SUDO_GID={gid:?} is not a number"))?;
        if uid != 0 {
            let name = User::from_uid(Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| format!("uid {uid}"));
            return Ok(RunAs {
                uid,
                gid,
                user: name,
            });
        }
    }
    let u = User::from_name("nobody")
        .map_err(|e| format!("looking up nobody: {e}"))?
        .ok_or("there is no user nobody here; pass --user NAME")?;
    Ok(RunAs {
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        user: u.name,
    })
}

/// Drops root (or, started unprivileged with file capabilities, the capabilities) and
/// checks the result. `written` (the -w and --keylog-out files) is handed to the new owner
/// first.
pub fn drop(user: Option<&str>, written: &[&Path]) -> Result<RunAs, String> {
    if unistd::geteuid().is_root() {
        let sudo_uid = std::env::var("SUDO_UID").ok();
        let sudo_gid = std::env::var("SUDO_GID").ok();
        let to = target(user, sudo_uid.as_deref(), sudo_gid.as_deref())?;
        if to.uid == 0 {
            return Err(format!("user {} is root", to.user));
        }
        let (uid, gid) = (Uid::from_raw(to.uid), Gid::from_raw(to.gid));
        for p in written {
            unistd::chown(*p, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", p.display()))?;
        }
        // While CAP_SETPCAP is still held: empty the bounding set, so nothing this process
        // runs later (`go env` for --go-env auto) can gain capabilities back.
        caps::clear(None, caps::CapSet::Bounding)
            .map_err(|e| format!("clearing the capability bounding set: {e}"))?;
        unistd::setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
        unistd::setresgid(gid, gid, gid).map_err(|e| format!("setresgid: {e}"))?;
        unistd::setresuid(uid, uid, uid).map_err(|e| format!("setresuid: {e}"))?;
        clear_capabilities()?;
        check(&to, true)?;
        Ok(to)
    } else {
        if let Some(u) = user {
            return Err(format!(
                "--user {u}: switching users needs root (run with sudo)"
            ));
        }
        // Started by a user with file capabilities (setcap): keep the user, drop the
        // capabilities now that the handle is open.
        clear_capabilities()?;
        let uid = unistd::getuid().as_raw();
        let to = RunAs {
            uid,
            gid: unistd::getgid().as_raw(),
            user: User::from_uid(Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| format!("uid {uid}")),
        };
        check(&to, false)?;
        Ok(to)
    }
}

fn clear_capabilities() -> Result<(), String> {
    use caps::CapSet;
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        caps::clear(None, set).map_err(|e| format!("clearing {set:?} capabilities: {e}"))?;
    }
    Ok(())
}

/// Verifies the drop took: ids, groups, capabilities, and that root cannot be regained.
fn check(to: &RunAs, was_root: bool) -> Result<(), String> {
    let uid = unistd::getresuid().map_err(|e| format!("getresuid: {e}"))?;
    let gid = unistd::getresgid().map_err(|e| format!("getresgid: {e}"))?;
    let ids = [uid.real, uid.effective, uid.saved];
    if ids.iter().any(|u| u.as_raw() != to.uid || u.is_root()) {
        return Err(format!("still running with uids {ids:?}"));
    }
    let gids = [gid.real, gid.effective, gid.saved];
    if was_root && gids.iter().any(|g| g.as_raw() != to.gid) {
        return Err(format!("still running with gids {gids:?}"));
    }
    if was_root {
        let groups = unistd::getgroups().map_err(|e| format!("getgroups: {e}"))?;
        if groups.iter().any(|g| g.as_raw() != to.gid) {
            return Err(format!("supplementary groups left: {groups:?}"));
        }
        if unistd::setuid(Uid::from_raw(0)).is_ok() {
            return Err("setuid(0) still succeeds".into());
        }
    }
    for set in [caps::CapSet::Effective, caps::CapSet::Permitted] {
        let left = caps::read(None, set).map_err(|e| format!("reading {set:?}: {e}"))?;
        if !left.is_empty() {
            return Err(format!("{set:?} capabilities left: {left:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_caller_then_nobody() {
        let t = target(None, Some("1234"), Some("99")).unwrap();
        assert_eq!((t.uid, t.gid), (1234, 99));
        // sudo run by root names root: not a user to drop to, so nobody.
        let n = target(None, Some("0"), Some("0")).unwrap();
        assert_ne!(n.uid, 0);
        assert_eq!(n.user, "nobody");
        let n = target(None, None, None).unwrap();
        assert_eq!(n.user, "nobody");
        assert!(target(None, Some("x"), Some("1")).is_err());
    }

    #[test]
    fn explicit_user_wins_and_must_exist() {
        let t = target(Some("nobody"), Some("1234"), Some("99")).unwrap();
        assert_eq!(t.user, "nobody");
        assert_ne!(t.uid, 1234);
        let e = target(Some("modtrace-no-such-user"), None, None).unwrap_err();
        assert!(e.contains("no such user"), "{e}");
    }
}
