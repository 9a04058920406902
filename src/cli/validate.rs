//! `ganeti-operator validate [DIR]`: every problem at once, located; exit 1 if any.

use std::io::Write;
use std::path::Path;

use super::{OutputFormat, exit};
use crate::desired::{self, diagnostic};

pub fn run(
    dir: &Path,
    output: OutputFormat,
    store: &crate::config::Overrides,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let mut source = desired::DirSource::new(dir);
    if let Some(store) = super::image::open_store(store)? {
        source = source.with_store_images(store.image_ids()?);
    }
    let validation = desired::validate_source(&source)?;
    match output {
        OutputFormat::Json => {
            let generated: Vec<&str> = validation
                .state
                .iter()
                .flat_map(|s| s.generated_host_keys())
                .collect();
            let report = serde_json::json!({
                "valid": validation.is_valid(),
                "files": validation.files,
                "errors": diagnostic::to_json(&validation.diagnostics),
                "generatedHostKeys": generated,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        }
        OutputFormat::Text => match &validation.state {
            Some(state) => {
                writeln!(
                    out,
                    "{}: valid ({} in {} files)",
                    dir.display(),
                    state.summary(),
                    validation.files.len()
                )?;
                let generated: Vec<&str> = state.generated_host_keys().collect();
                if !generated.is_empty() {
                    writeln!(
                        out,
                        "host keys generated at create (unless the instance exists and carries \
                         one): {}",
                        generated.join(", ")
                    )?;
                }
            }
            None => {
                out.write_all(diagnostic::render_text(&validation.diagnostics).as_bytes())?;
                writeln!(
                    out,
                    "{}: {}; nothing is applied until all are fixed",
                    dir.display(),
                    validation.errors_text()
                )?;
            }
        },
    }
    let code = if validation.is_valid() {
        exit::OK
    } else {
        exit::FAILURE
    };
    // The process ends with this command. Dropping a large state is a million small
    // frees (100,000 instances) that only hand back memory the exit frees anyway.
    std::mem::forget(validation);
    Ok(code)
}
