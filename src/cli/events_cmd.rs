//! `ganeti-operator events`: the daemon's event trail from its `/events`, once or, with
//! `--follow`, polled until interrupted.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;

use crate::daemon::events::EventPage;

/// How often `--follow` asks again: often enough to see a reboot's job as it ends, and
/// cheap for the daemon (one small JSON answer).
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

pub struct EventsArgs {
    pub url: String,
    pub follow: bool,
    pub since: u64,
    pub json: bool,
}

pub fn run(args: EventsArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let url = super::local_http::endpoint(&args.url, "/events");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = super::local_http::client()?;
    let mut since = args.since;
    // The daemon start the cursor belongs to, once a page said it.
    let mut boot: Option<String> = None;
    let mut first = true;
    loop {
        let page = match runtime.block_on(fetch(&client, &url, since, boot.as_deref())) {
            Ok(page) => page,
            // Following, a daemon that restarts is waited for; the first ask must answer.
            Err(e) if args.follow && !first => {
                eprintln!("events: {e:#}; asking again");
                std::thread::sleep(FOLLOW_INTERVAL);
                continue;
            }
            Err(e) => return Err(e),
        };
        first = false;
        eprint!("{}", notes(&page, since));
        write!(out, "{}", lines(&page, args.json))?;
        out.flush()?;
        since = page.latest;
        boot = Some(page.boot.clone());
        if !args.follow {
            return Ok(super::exit::OK);
        }
        std::thread::sleep(FOLLOW_INTERVAL);
    }
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    since: u64,
    boot: Option<&str>,
) -> anyhow::Result<EventPage> {
    let mut request = client.get(url).query(&[("since", since)]);
    if let Some(boot) = boot {
        request = request.query(&[("boot", boot)]);
    }
    let text = request
        .send()
        .await
        .with_context(|| format!("asking the daemon at {url} (is `ganeti-operator run` up?)"))?
        .error_for_status()?
        .text()
        .await?;
    serde_json::from_str(&text).context("the daemon's events")
}

/// What a poll could not show, for stderr: events lost to the ring or to a restart.
fn notes(page: &EventPage, since: u64) -> String {
    let mut text = String::new();
    if page.restarted {
        text.push_str(&format!(
            "# the daemon started again (it numbers from 1 anew; asked after {since})\n"
        ));
    }
    if page.missed > 0 {
        text.push_str(&format!(
            "# {} event(s) fell out of the daemon's ring; its log has them\n",
            page.missed
        ));
    }
    text
}

/// One line per event, for stdout: human, or the JSON `/events` serves.
fn lines(page: &EventPage, json: bool) -> String {
    let mut text = String::new();
    for event in &page.events {
        let line = if json {
            serde_json::to_string(event).unwrap_or_default()
        } else {
            event.to_string()
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// Compares `text` with `tests/golden/events/<name>`; `UPDATE_GOLDEN=1` rewrites it.
#[cfg(test)]
pub(super) fn golden(name: &str, text: &str) {
    crate::golden::assert_golden(&format!("events/{name}"), text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Category, Event, Outcome};

    fn page() -> EventPage {
        let event = |seq, category, action: &str, job, outcome, reason: &str| Event {
            seq,
            time: "2026-11-23T08:04:12Z".into(),
            category,
            object: "instance/web1.gnt.test".into(),
            action: action.into(),
            reason: reason.into(),
            revision: Some("3f2a9c0d1e2f3a4b5c6d".into()),
            job,
            outcome,
            run: "1795421052-0a1b2c3d".into(),
        };
        EventPage {
            events: vec![
                event(
                    5,
                    Category::Decision,
                    "rotate",
                    None,
                    Outcome::Planned,
                    "image sha256-ab",
                ),
                event(
                    6,
                    Category::Doing,
                    "instance_reboot",
                    Some(42),
                    Outcome::Succeeded,
                    "image sha256-ab",
                ),
                event(
                    7,
                    Category::Doing,
                    "tags_add",
                    Some(43),
                    Outcome::Failed,
                    "job 43 failed: no such tag",
                ),
            ],
            latest: 7,
            missed: 2,
            restarted: false,
            boot: "19ab-2a".into(),
        }
    }

    #[test]
    fn human_and_json_output_are_pinned() {
        let stderr = notes(&page(), 2);
        golden("cli.txt", &format!("{stderr}{}", lines(&page(), false)));
        golden("cli.jsonl", &lines(&page(), true));
        let restarted = EventPage {
            restarted: true,
            missed: 0,
            ..page()
        };
        assert!(notes(&restarted, 90).starts_with("# the daemon started again"));
    }
}
