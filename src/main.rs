use std::process::ExitCode;

use clap::Parser;
use private_media::cli::Cli;
use private_media::logging;

/// glibc raises its mmap threshold to the size of the largest block freed so far. One argon2
/// hash (19 MiB) would lift it that high, and every later argon2 run and 1 MiB download chunk
/// would then come from arenas that are never given back: ~30 MiB more RSS for good. A fixed
/// threshold keeps big blocks in mmap (returned at once on free); two arenas bound what the
/// threads keep. Fixing the mmap threshold also fixes the trim threshold at 128 KiB, which would
/// give back and fault in every 1 MiB download chunk (a third of the throughput, measured with
/// bench/download.sh), so the top 16 MiB of the heap are kept.
///
/// The one `unsafe` the crate allows (`[lints]` in Cargo.toml): glibc has no safe binding.
#[allow(unsafe_code)]
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 * 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let default_level = if cli.is_server() { "info" } else { "warn" };
    match logging::filter(default_level) {
        Ok(filter) => logging::init(filter),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
