//! `completions bash`, sourced in a real bash, completes the subcommands and a
//! subcommand's flags; `man` renders through the real `man`.

use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ganeti-operator")
}

/// What bash completes after `line` (the completion function the script registers, run
/// as bash's completion would run it).
fn complete(line: &str) -> Vec<String> {
    let script = format!(
        r#"source <("{bin}" completions bash)
line='{line}'
read -ra COMP_WORDS <<< "$line"
[[ $line == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE=$line
COMP_POINT=${{#line}}
spec=$(complete -p ganeti-operator)
func=$(sed -E 's/.* -F ([^ ]+) .*/\1/' <<< "$spec")
"$func" ganeti-operator "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        bin = bin()
    );
    let output = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_the_subcommands_and_their_flags() {
    let subcommands = complete("ganeti-operator ");
    for want in [
        "validate",
        "init",
        "reconcile",
        "run",
        "status",
        "rollout",
        "completions",
        "man",
    ] {
        assert!(
            subcommands.iter().any(|c| c == want),
            "{want} in {subcommands:?}"
        );
    }
    let flags = complete("ganeti-operator reconcile --dr");
    assert_eq!(flags, ["--dry-run"], "{flags:?}");
}

#[test]
fn man_renders_the_generated_page() {
    let page = Command::new(bin()).arg("man").output().unwrap();
    assert!(page.status.success());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ganeti-operator.1");
    std::fs::write(&file, &page.stdout).unwrap();
    let rendered = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man is installed (tests/run.sh installs man-db)");
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert!(text.contains("ganeti-operator(1)"), "{text}");
    assert!(text.contains("SYNOPSIS"), "{text}");
    for subcommand in [
        "ganeti-operator-reconcile(1)",
        "ganeti-operator-validate(1)",
    ] {
        assert!(text.contains(subcommand), "names {subcommand}: {text}");
    }
}
