//! The local time of day (`12:00:05`) that starts each line of a watch.

/// Now, as local `HH:MM:SS` (the C library's time zone rules: TZ, /etc/localtime).
pub fn now() -> String {
    // SAFETY: time(NULL) only returns the time.
    let seconds = unsafe { libc::time(std::ptr::null_mut()) };
    // SAFETY: tm is plain data; all zero is a valid value of it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r writes only into `tm` and is thread-safe.
    if unsafe { libc::localtime_r(&seconds, &mut tm) }.is_null() {
        return "--:--:--".to_string();
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_hours_minutes_seconds() {
        let now = super::now();
        let parts: Vec<u32> = now.split(':').filter_map(|p| p.parse().ok()).collect();
        assert_eq!(parts.len(), 3, "{now}");
        assert!(parts[0] < 24 && parts[1] < 60 && parts[2] < 61, "{now}");
        assert_eq!(now.len(), 8, "{now}");
    }
}
