//! Shared by the benchmarks: memory readings of this process.

#![allow(dead_code)]

/// A `/proc/self/status` memory field in MiB: `VmRSS` (now) or `VmHWM` (peak).
pub fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_string))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}
