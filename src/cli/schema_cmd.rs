//! `ganeti-operator schema`: the JSON schema that editors and CI validate YAML against.

use std::io::Write;

use crate::desired::schema::desired_state_schema_text;

pub fn run(out: &mut dyn Write) -> anyhow::Result<u8> {
    out.write_all(desired_state_schema_text().as_bytes())?;
    Ok(super::exit::OK)
}
