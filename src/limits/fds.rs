//! The process's file-descriptor limit (`ulimit -n`, systemd's `LimitNOFILE`).

/// The soft `RLIMIT_NOFILE`, or `None` when there is none to go by.
#[cfg(unix)]
pub fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which lives for the whole call.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if status != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(limit.rlim_cur)
}

#[cfg(not(unix))]
pub fn open_file_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_limit_of_this_process_can_be_read() {
        let limit = super::open_file_limit();
        assert!(limit.is_none_or(|n| n > 0), "{limit:?}");
    }
}
