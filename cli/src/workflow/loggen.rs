//! `workflow logger gen` (hidden): writes kubelet-style CRI log files for trying and measuring
//! the logger.
//!
//! ```text
//! workflow logger gen --dir /tmp/logs --app hello --files 4 --lines 100000 --rate 1000 \
//!     --rotate-every 10000 --rotation rename
//! ```

use std::time::{Duration, Instant};

use clap::ValueEnum;
use workflow_logger::loggen::{GenFile, Rng, Rotation};

/// How files are rotated.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RotationArg {
    /// Renamed away, a new file created.
    Rename,
    /// Copied away, then truncated.
    Copytruncate,
}

/// `workflow logger gen` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write `<pod>_<app>_<container>-<id>.log` files into.
    #[arg(long)]
    pub dir: std::path::PathBuf,
    /// The app (namespace).
    #[arg(long, default_value = "hello")]
    pub app: String,
    /// Number of files (pods), process types alternating web/worker.
    #[arg(long, default_value_t = 1)]
    pub files: usize,
    /// Lines per file.
    #[arg(long, default_value_t = 1000)]
    pub lines: u64,
    /// Lines per second over all files (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Bytes of text per line beyond the header.
    #[arg(long, default_value_t = 100)]
    pub line_bytes: usize,
    /// Every this many lines of a file, one line is written as 3 partial pieces (0 = never).
    #[arg(long, default_value_t = 10)]
    pub partial_every: u64,
    /// Rotate each file every this many lines (0 = never).
    #[arg(long, default_value_t = 0)]
    pub rotate_every: u64,
    /// How files are rotated.
    #[arg(long, value_enum, default_value = "rename")]
    pub rotation: RotationArg,
}

/// Writes the files `args` describes.
pub fn run(args: &Args) -> std::io::Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    let mut files = (0..args.files.max(1))
        .map(|i| {
            GenFile::create(
                &args.dir,
                i,
                &args.app,
                if i % 2 == 0 { "web" } else { "worker" },
            )
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let rotation = match args.rotation {
        RotationArg::Rename => Rotation::Rename,
        RotationArg::Copytruncate => Rotation::CopyTruncate,
    };
    let mut rng = Rng::new(42);
    let start = Instant::now();
    let mut written = 0u64;
    for _ in 0..args.lines {
        for f in &mut files {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64);
            let pieces = if args.partial_every > 0 && f.lines % args.partial_every == 0 {
                3
            } else {
                1
            };
            f.write_line(now, args.line_bytes, pieces, rng.below(10) == 0)?;
            if args.rotate_every > 0 && f.lines % args.rotate_every == 0 {
                f.rotate(rotation)?;
            }
            written += 1;
        }
        if args.rate > 0 {
            let due = Duration::from_secs_f64(written as f64 / args.rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    Ok(())
}
