# NixOS module for the *hosts*: fetch this host's secrets, as the operator published them
# (`secrets/<host>/*.age`, encrypted to this host's SSH host key), from the artifact
# store into a runtime directory, so agenix can decrypt them:
#
#   imports = [ ./ganeti-operator/nix/host-secrets.nix ];
#   services.ganeti-operator-secrets = {
#     enable = true;
#     storeUrl = "http://10.0.0.1:8080";      # cluster.store.baseUrl
#   };
#   age.secrets.navidrome-env.file = "/run/ganeti-operator-secrets/navidrome-env.age";
#
# `ganeti-operator-secrets.service` (a oneshot) fetches `manifest.json` first. When it is
# the same as the copy already fetched, nothing else happens: no download, no
# re-activation. Otherwise every file it lists is fetched, checked against its SHA-256 in
# the manifest, and the directory is replaced whole (a rename); then `onChange` runs
# (by default the system's activation script, which re-runs agenix). The unit runs at
# boot once the network is up, on a timer, and on demand:
# `systemctl start ganeti-operator-secrets.service` (what the operator's
# `secrets.notify.command` would run over ssh).
{ config, lib, pkgs, ... }:

let
  cfg = config.services.ganeti-operator-secrets;
  inherit (lib) mkEnableOption mkOption mkIf types;
  fetch = pkgs.writeShellScript "ganeti-operator-secrets-fetch" ''
    set -euo pipefail
    PATH=${pkgs.curl}/bin:${pkgs.jq}/bin:${pkgs.coreutils}/bin
    base=${lib.escapeShellArg cfg.storeUrl}
    host=${lib.escapeShellArg cfg.hostName}
    dir=${lib.escapeShellArg cfg.directory}
    get() { curl --fail --silent --show-error --max-time ${toString cfg.fetchTimeout} --output "$2" "$base/secrets/$host/$1"; }
    tmp="$(mktemp -d "$dir.new.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    get manifest.json "$tmp/manifest.json"
    if [ -f "$dir/manifest.json" ] && cmp -s "$tmp/manifest.json" "$dir/manifest.json"; then
      echo "manifest unchanged; nothing to do"
      exit 0
    fi
    for name in $(jq -r '.files | keys[]' "$tmp/manifest.json"); do
      case "$name" in
        *[!A-Za-z0-9._-]* | .* | "") echo "refusing the name $name" >&2; exit 1 ;;
      esac
      get "$name.age" "$tmp/$name.age"
      want="$(jq -r --arg n "$name" '.files[$n].published' "$tmp/manifest.json")"
      echo "$want  $tmp/$name.age" | sha256sum --check --quiet
    done
    chmod 0700 "$tmp"
    if [ -d "$dir" ]; then mv "$dir" "$tmp.old"; fi
    mv "$tmp" "$dir"
    rm -rf "$tmp.old"
    echo "secrets changed; running ${cfg.onChange}"
    ${cfg.onChange}
  '';
in
{
  options.services.ganeti-operator-secrets = {
    enable = mkEnableOption "fetching this host's secrets from the ganeti-operator artifact store";

    storeUrl = mkOption {
      type = types.strMatching "https?://.+";
      example = "http://10.0.0.1:8080";
      description = "The artifact store's base URL (the desired state's cluster.store.baseUrl).";
    };

    hostName = mkOption {
      type = types.strMatching "[a-z0-9.-]+";
      default = config.networking.fqdnOrHostName;
      defaultText = "config.networking.fqdnOrHostName";
      description = "This host's name in the desired state: its secrets are under secrets/<hostName>/.";
    };

    directory = mkOption {
      type = types.strMatching "/.+";
      default = "/run/ganeti-operator-secrets";
      description = "Where the .age files are kept; point age.secrets.<name>.file here.";
    };

    interval = mkOption {
      type = types.str;
      default = "5min";
      description = "How often the timer fetches again (systemd time span).";
    };

    fetchTimeout = mkOption {
      type = types.ints.positive;
      default = 30;
      description = "Seconds one download may take.";
    };

    onChange = mkOption {
      type = types.str;
      default = "/run/current-system/activate";
      description = "Run once the files changed (not when the manifest is unchanged): re-activation re-runs agenix.";
    };
  };

  config = mkIf cfg.enable {
    systemd.services.ganeti-operator-secrets = {
      description = "Fetch this host's secrets from the ganeti-operator store";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${fetch}";
        UMask = "0077";
        PrivateTmp = true;
        NoNewPrivileges = true;
      };
    };
    systemd.timers.ganeti-operator-secrets = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnBootSec = "1min";
        OnUnitActiveSec = cfg.interval;
        RandomizedDelaySec = "30s";
      };
    };
  };
}
