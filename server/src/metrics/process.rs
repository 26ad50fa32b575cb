//! The process metrics every Prometheus client library exports under the same
//! names (`process_resident_memory_bytes`, `process_cpu_seconds_total`, ...),
//! read from `/proc/self` at each scrape, as the Go client's process
//! collector does. So an operator (or the room-churn leak check) reads the
//! server's RSS from `/metrics` without `ps`. Linux only: elsewhere the
//! collector exports nothing (no zeros that would pass for figures).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The `process_*` families, read at each scrape.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// One reading of the process's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, in bytes.
    pub virtual_bytes: u64,
    /// Start time since the Unix epoch, in seconds.
    pub start_time_seconds: f64,
    /// Open file descriptors (sockets included).
    pub open_fds: u64,
    /// The soft limit on open file descriptors (`None`: unlimited).
    pub max_fds: Option<u64>,
}

impl ProcessStats {
    /// This process's figures now; `None` where `/proc` cannot be read (not
    /// Linux, or a sandbox without procfs).
    pub fn read() -> Option<ProcessStats> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let system = std::fs::read_to_string("/proc/stat").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let units = SysUnits::of_this_system()?;
        ProcessStats::parse(&stat, &system, &limits, open_fds, units)
    }

    /// The figures in the text of `/proc/self/stat`, `/proc/stat` (for the
    /// boot time) and `/proc/self/limits`.
    pub fn parse(
        stat: &str,
        system: &str,
        limits: &str,
        open_fds: u64,
        units: SysUnits,
    ) -> Option<ProcessStats> {
        // The command name (field 2) is in parentheses and may hold spaces or
        // parentheses itself: the fields that follow start after the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // proc(5) numbers the fields from 1; `rest` starts at field 3.
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        let ticks = units.clock_ticks as f64;
        let boot_time: u64 = system
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let max_fds = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok());
        Some(ProcessStats {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
            virtual_bytes: field(23)?,
            resident_bytes: field(24)?.saturating_mul(units.page_size),
            start_time_seconds: boot_time as f64 + field(22)? as f64 / ticks,
            open_fds,
            max_fds,
        })
    }
}

/// The units `/proc` counts in on this system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysUnits {
    /// Clock ticks per second (`_SC_CLK_TCK`).
    pub clock_ticks: u64,
    /// Bytes per memory page (`_SC_PAGESIZE`).
    pub page_size: u64,
}

impl SysUnits {
    fn of_this_system() -> Option<SysUnits> {
        // SAFETY: sysconf reads a constant of the system; it has no
        // preconditions and touches no memory of ours.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        Some(SysUnits {
            clock_ticks: u64::try_from(ticks).ok().filter(|&t| t > 0)?,
            page_size: u64::try_from(page).ok().filter(|&p| p > 0)?,
        })
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = ProcessStats::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let mut gauge = |name: &str, help: &str, value: f64| {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
        };
        gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            s.resident_bytes as f64,
        )?;
        gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            s.virtual_bytes as f64,
        )?;
        gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            s.start_time_seconds,
        )?;
        gauge(
            "process_open_fds",
            "Number of open file descriptors",
            s.open_fds as f64,
        )?;
        if let Some(max) = s.max_fds {
            gauge(
                "process_max_fds",
                "Maximum number of open file descriptors",
                max as f64,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNITS: SysUnits = SysUnits {
        clock_ticks: 100,
        page_size: 4096,
    };

    #[test]
    fn reads_proc_self_stat_with_a_command_name_holding_spaces_and_parens() {
        // Fields 1-24 of proc(5); utime 250, stime 50, starttime 1234 ticks,
        // vsize 987654321, rss 2560 pages.
        let stat = "4242 (tick sync (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 50 0 0 20 0 7 0 1234 987654321 2560 18446744073709551615";
        let system = "cpu  1 2 3\nbtime 1764547200\nprocesses 9\n";
        let limits = "Limit Soft Limit Hard Limit Units\n\
                      Max open files            1024                 524288               files\n";
        let s = ProcessStats::parse(stat, system, limits, 17, UNITS).expect("parses");
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.virtual_bytes, 987_654_321);
        assert_eq!(s.resident_bytes, 2560 * 4096);
        assert!(
            (s.start_time_seconds - 1_764_547_212.34).abs() < 1e-3,
            "{s:?}"
        );
        assert_eq!(s.open_fds, 17);
        assert_eq!(s.max_fds, Some(1024));
        // "unlimited" is no number: the family is left out.
        let s = ProcessStats::parse(stat, system, "Max open files unlimited unlimited", 1, UNITS);
        assert_eq!(s.map(|s| s.max_fds), Some(None));
        // A truncated line is no reading, not zeros.
        assert_eq!(
            ProcessStats::parse("4242 (x) S 1 2", system, "", 1, UNITS),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_set_and_open_files() {
        let s = ProcessStats::read().expect("procfs on Linux");
        assert!(s.resident_bytes > 1 << 20, "{s:?}");
        assert!(s.virtual_bytes >= s.resident_bytes, "{s:?}");
        assert!(s.open_fds >= 3, "{s:?}");
    }
}
