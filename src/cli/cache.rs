//! `pgshadow cache list|prune`: the shadow cache (clusters and template databases kept between runs).

use std::process::ExitCode;

use super::args::CacheDirArg;
use super::fail;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum CacheCommand {
    /// List the cached sources: where, how big, when last used.
    List(CacheDirArg),
    /// Delete every cached cluster that no run is using right now.
    Prune(CacheDirArg),
}

/// Lists or prunes the cache directory.
pub(crate) fn run(command: &CacheCommand) -> ExitCode {
    let (CacheCommand::List(arg) | CacheCommand::Prune(arg)) = command;
    let Some(dir) = arg.dir() else {
        eprintln!("error: no cache directory: neither XDG_CACHE_HOME nor HOME is set\nhint: pass --cache-dir DIR");
        return ExitCode::from(2);
    };
    match command {
        CacheCommand::List(_) => {
            let templates = pgshadow::shadow::cache::list(&dir);
            println!("cache: {} ({})", dir.display(), human_size(pgshadow::shadow::cache::disk_usage(&dir)));
            if templates.is_empty() {
                println!("no cached sources");
                return ExitCode::SUCCESS;
            }
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
            table.set_header(["source", "size", "last used", "key", "cluster"]);
            for t in templates {
                let ago = t.last_used.elapsed().map_or_else(|_| "now".to_owned(), |d| format!("{}s ago", d.as_secs()));
                let key = t.key.get(..12).unwrap_or(&t.key).to_owned();
                let source = if t.source.is_empty() { "(no schema)".to_owned() } else { t.source };
                table.add_row([source, human_size(t.size_bytes), ago, key, t.cluster.display().to_string()]);
            }
            println!("{table}");
            ExitCode::SUCCESS
        }
        CacheCommand::Prune(_) => match pgshadow::shadow::cache::prune(&dir) {
            Ok((removed, busy)) => {
                println!("removed {} cached cluster(s) from {}", removed.len(), dir.display());
                for slot in busy {
                    println!("kept {} (in use by a run)", slot.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b => format!("{:.1} KiB", b as f64 / 1024.0),
    }
}
