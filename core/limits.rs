//! The open-file limit: each host holds a few descriptors for its whole run (the ssh client's
//! pipes, its sockets), so 200 hosts do not fit the usual soft limit of 1024.

/// Descriptors one host needs, with room to spare (`bench/load` measured about 25 per host
/// with the ssh master and the shells over it).
const PER_HOST: u64 = 32;
/// Descriptors the process needs besides hosts (runtime, state, logs, plugins).
const BASE: u64 = 128;

/// Raises the soft open-file limit to the hard one (what any process may do, and what
/// ssh-heavy tools do), then says so if `hosts` may still not fit.
pub fn raise_for(hosts: usize) -> Option<String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct passed, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    let needed = BASE + PER_HOST * hosts as u64;
    (limit.rlim_cur < needed).then(|| {
        format!(
            "{hosts} hosts may need {needed} open files but the limit is {} (`ulimit -Hn`): \
             raise the hard limit (e.g. LimitNOFILE in a systemd unit, nofile in \
             /etc/security/limits.conf) or run fewer hosts at a time with --limit",
            limit.rlim_cur
        )
    })
}
