//! The process's file-descriptor limit (`ulimit -n`, systemd's `LimitNOFILE`).

/// The soft `RLIMIT_NOFILE`, or `None` when there is none to go by.
#[cfg(unix)]
pub fn open_file_limit() -> Option<u64> {
    // `None` is rustix's word for RLIM_INFINITY.
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
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
