//! The Nix modules, evaluated (not only parsed) with nixpkgs' `lib.evalModules`: from
//! `<nixpkgs/lib>` where NIX_PATH has it, else ../shared/nixpkgs-lib. The host module's
//! fetch script is then run against the real store server: the first fetch downloads
//! and verifies the files and runs `onChange`, a second with the manifest unchanged
//! neither downloads nor re-activates.

use crate::common;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

const TEST: &str = "nix_modules";

fn nixpkgs_lib() -> Option<String> {
    let found = Command::new("nix-instantiate")
        .args(["--eval", "-E", "<nixpkgs/lib>"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("<nixpkgs/lib>".into());
    }
    let shared = common::project_root().join("../shared/nixpkgs-lib/lib");
    if shared.join("default.nix").exists() {
        return Some(format!(
            "(import {})",
            shared.canonicalize().unwrap().display()
        ));
    }
    common::skip::unavailable(
        TEST,
        "no nixpkgs lib",
        "put nixpkgs on NIX_PATH or ../shared/nixpkgs-lib",
    );
    None
}

/// `eval.nix` over `module` with `settings` (a Nix expression), as JSON.
fn evaluate(module: &str, settings: &str, tools: &str) -> Result<Value, String> {
    let lib = nixpkgs_lib().ok_or("no lib")?;
    let lib = if lib.starts_with('<') {
        format!("import {lib}")
    } else {
        lib
    };
    let root = common::project_root();
    let expr = format!(
        "import {eval} {{ lib = {lib}; module = {module}; settings = {settings}; tools = \"{tools}\"; }}",
        eval = root.join("tests/nix/eval.nix").display(),
        module = root.join(module).display(),
    );
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", &expr])
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

fn ready() -> bool {
    common::skip::tool("nix-instantiate", TEST)
}

#[test]
fn the_host_module_makes_a_oneshot_a_timer_and_a_fetch_that_skips_unchanged_manifests() {
    if !ready() || !common::skip::tool("curl", TEST) || !common::skip::tool("jq", TEST) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("run/secrets");
    let marker = work.path().join("activated");
    let settings = format!(
        "{{ services.ganeti-operator-secrets = {{ enable = true; storeUrl = \"http://127.0.0.1:{port}\"; directory = \"{dir}\"; onChange = \"echo again >> {marker}\"; }}; }}",
        port = PORT,
        dir = dir.display(),
        marker = marker.display(),
    );
    let unit = evaluate("nix/host-secrets.nix", &settings, "/usr").unwrap();
    let service = &unit["services"]["ganeti-operator-secrets"];
    assert_eq!(service["serviceConfig"]["Type"], "oneshot");
    assert_eq!(
        service["after"],
        serde_json::json!(["network-online.target"])
    );
    assert_eq!(
        service["wantedBy"],
        serde_json::json!(["multi-user.target"])
    );
    let timer = &unit["timers"]["ganeti-operator-secrets"];
    assert_eq!(timer["timerConfig"]["OnUnitActiveSec"], "5min");
    assert_eq!(timer["wantedBy"], serde_json::json!(["timers.target"]));
    let exec = service["serviceConfig"]["ExecStart"].as_str().unwrap();
    let (name, script) = exec.split_once('\n').unwrap();
    assert_eq!(name, "/stub/ganeti-operator-secrets-fetch");
    assert!(script.contains("host=navidrome.home.arpa"), "{script}");

    // A bad option is a type error, located by the module system.
    let bad = evaluate(
        "nix/host-secrets.nix",
        "{ services.ganeti-operator-secrets = { enable = true; storeUrl = \"ftp://x\"; }; }",
        "/usr",
    )
    .unwrap_err();
    assert!(bad.contains("storeUrl"), "{bad}");

    // Run the script against the real store server.
    let store = work.path().join("store");
    let host_dir = store.join("secrets/navidrome.home.arpa");
    std::fs::create_dir_all(&host_dir).unwrap();
    let body = b"age-encryption.org/v1\n(ciphertext stand-in)\n";
    std::fs::write(host_dir.join("navidrome-env.age"), body).unwrap();
    let digest = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(body))
    };
    let manifest = format!(
        "{{\"version\":1,\"files\":{{\"navidrome-env\":{{\"source\":\"00\",\"recipients\":[],\"published\":\"{digest}\"}}}}}}\n"
    );
    std::fs::write(host_dir.join("manifest.json"), &manifest).unwrap();
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
        .args([
            "store",
            "serve",
            "--listen",
            &format!("127.0.0.1:{PORT}"),
            "--store",
        ])
        .arg(&store)
        .spawn()
        .unwrap();
    let fetch = |script: &str| Command::new("bash").arg("-c").arg(script).output().unwrap();
    let mut first = fetch(script);
    for _ in 0..50 {
        if first.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        first = fetch(script);
    }
    assert!(first.status.success(), "{first:?}");
    assert_eq!(std::fs::read(dir.join("navidrome-env.age")).unwrap(), body);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "again\n");
    let second = fetch(script);
    assert!(second.status.success(), "{second:?}");
    assert!(String::from_utf8_lossy(&second.stdout).contains("manifest unchanged"));
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "again\n",
        "no re-activation"
    );
    // A file that does not match its manifest is refused, and the old copy stays.
    std::fs::write(host_dir.join("navidrome-env.age"), b"tampered").unwrap();
    std::fs::write(
        host_dir.join("manifest.json"),
        manifest.replace("\"00\"", "\"01\""),
    )
    .unwrap();
    let third = fetch(script);
    assert!(!third.status.success(), "{third:?}");
    assert_eq!(std::fs::read(dir.join("navidrome-env.age")).unwrap(), body);
    let _ = server.kill();
    let _ = server.wait();
}

const PORT: u16 = 18731;

#[test]
fn the_operator_module_evaluates_to_a_hardened_unit_with_credentials() {
    if !ready() {
        return;
    }
    let settings = r#"{ services.ganeti-operator = {
        enable = true;
        package = "/nix/store/00000000000000000000000000000000-ganeti-operator";
        settings.rapiUser = "ganeti-operator";
        rapiPasswordFile = "/run/agenix/rapi-password";
        rapiFingerprint = "3f9a000000000000000000000000000000000000000000000000000000000000";
        secretsIdentityFile = "/run/agenix/operator-identity";
        git = { repo = "/srv/git/desired-state.git"; };
      }; }"#;
    let unit = evaluate("nix/module.nix", settings, "/usr").unwrap();
    assert_eq!(unit["failedAssertions"], serde_json::json!([]));
    let service = &unit["services"]["ganeti-operator"]["serviceConfig"];
    assert_eq!(
        service["LoadCredential"],
        serde_json::json!([
            "rapi-password:/run/agenix/rapi-password",
            "secrets-identity:/run/agenix/operator-identity"
        ])
    );
    let exec = service["ExecStart"].as_str().unwrap();
    assert!(
        exec.starts_with(
            "/nix/store/00000000000000000000000000000000-ganeti-operator/bin/ganeti-operator run"
        ),
        "{exec}"
    );
    assert!(
        exec.contains("--git-repo /srv/git/desired-state.git"),
        "{exec}"
    );
    assert!(
        !exec.contains("/run/agenix"),
        "no credential path on argv: {exec}"
    );
    assert!(
        !exec.contains("--log-format"),
        "text is the default: {exec}"
    );
    for (key, want) in [
        ("DynamicUser", Value::Bool(true)),
        ("ProtectSystem", "strict".into()),
        ("NoNewPrivileges", Value::Bool(true)),
        ("CapabilityBoundingSet", "".into()),
    ] {
        assert_eq!(service[key], want, "{key}");
    }
    let config = unit["services"]["ganeti-operator"]["environment"]["GANETI_OPERATOR_CONFIG"]
        .as_str()
        .unwrap();
    let (_, json) = config.split_once('\n').unwrap();
    let config: Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        config["secretsIdentityFile"],
        "/run/credentials/ganeti-operator.service/secrets-identity"
    );
    assert_eq!(
        config["rapiPasswordFile"],
        "/run/credentials/ganeti-operator.service/rapi-password"
    );

    // The store, served, and a secrets notify command (issue 25, problem 6).
    let with_store = settings.replace(
        "git = {",
        "store = \"/var/lib/ganeti-store\"; serveStore = \"0.0.0.0:8480\"; \
         secretsNotify = { command = [ \"notify\" \"{host}\" ]; timeoutSeconds = 30; }; \
         logFormat = \"json\"; git = {",
    );
    let unit = evaluate("nix/module.nix", &with_store, "/usr").unwrap();
    assert_eq!(unit["failedAssertions"], serde_json::json!([]));
    let service = &unit["services"]["ganeti-operator"]["serviceConfig"];
    let exec = service["ExecStart"].as_str().unwrap();
    assert!(exec.contains("--serve-store 0.0.0.0:8480"), "{exec}");
    assert!(exec.contains("--log-format json"), "{exec}");
    assert_eq!(
        service["ReadWritePaths"],
        serde_json::json!(["/var/lib/ganeti-store"])
    );
    let config = unit["services"]["ganeti-operator"]["environment"]["GANETI_OPERATOR_CONFIG"]
        .as_str()
        .unwrap();
    let (_, json) = config.split_once('\n').unwrap();
    let config: Value = serde_json::from_str(json).unwrap();
    assert_eq!(config["store"], "/var/lib/ganeti-store");
    assert_eq!(
        config["secretsNotify"],
        serde_json::json!({"command": ["notify", "{host}"], "timeoutSeconds": 30})
    );
    let unserved = settings.replace("git = {", "serveStore = \"0.0.0.0:8480\"; git = {");
    let unit = evaluate("nix/module.nix", &unserved, "/usr").unwrap();
    assert!(
        unit["failedAssertions"][0]
            .as_str()
            .unwrap()
            .contains("serveStore needs store"),
        "{unit}"
    );

    // Both trust settings: the module's own assertion says so.
    let both = settings.replace("git = {", "rapiCaFile = \"/etc/ca.pem\"; git = {");
    let unit = evaluate("nix/module.nix", &both, "/usr").unwrap();
    assert!(
        unit["failedAssertions"][0]
            .as_str()
            .unwrap()
            .contains("exactly one")
    );
}
