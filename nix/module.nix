# NixOS module: services.ganeti-operator runs `ganeti-operator run` as a hardened unit.
#
#   imports = [ ./nix/module.nix ];
#   services.ganeti-operator = {
#     enable = true;
#     settings.rapiUrl = "https://cluster.example.org:5080";
#     settings.rapiUser = "ganeti-operator";
#     rapiPasswordFile = "/run/agenix/ganeti-rapi-password";
#     rapiFingerprint = "3f9a…";   # or rapiCaFile
#     git = { repo = "/srv/git/desired-state.git"; branch = "main"; path = "desired-state"; };
#     webhookSecretFile = "/run/agenix/ganeti-operator-webhook";
#   };
{ config, lib, pkgs, ... }:

let
  cfg = config.services.ganeti-operator;
  inherit (lib) mkEnableOption mkOption mkIf types optional optionals concatStringsSep escapeShellArgs;
  configFile = pkgs.writeText "ganeti-operator.yaml" (builtins.toJSON (
    lib.filterAttrs (_: v: v != null) {
      inherit (cfg.settings) rapiUrl rapiUser;
      rapiFingerprint = cfg.rapiFingerprint;
      # Credentials come from systemd's credential directory, never from the store.
      rapiPasswordFile = "/run/credentials/ganeti-operator.service/rapi-password";
      rapiCaFile = if cfg.rapiCaFile != null then "/run/credentials/ganeti-operator.service/rapi-ca" else null;
      stateDir = "/var/lib/ganeti-operator";
      secretsIdentityFile = if cfg.secretsIdentityFile != null then "/run/credentials/ganeti-operator.service/secrets-identity" else null;
      inherit (cfg) store secretsNotify;
    }));
  sourceArgs =
    if cfg.git != null then
      [ "--git-repo" cfg.git.repo "--git-branch" cfg.git.branch "--git-path" cfg.git.path ]
    else
      [ "--dir" cfg.desiredStateDir ];
in
{
  options.services.ganeti-operator = {
    enable = mkEnableOption "ganeti-operator, the reconciling operator for Ganeti clusters";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      description = "The ganeti-operator package.";
    };

    settings = {
      rapiUrl = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://cluster.example.org:5080";
        description = "The RAPI URL; defaults to cluster.rapiUrl in the desired state.";
      };
      rapiUser = mkOption {
        type = types.str;
        example = "ganeti-operator";
        description = "The RAPI user (needs write access).";
      };
    };

    rapiPasswordFile = mkOption {
      type = types.path;
      description = "A file with the RAPI password, passed to the unit with LoadCredential.";
    };

    rapiCaFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "The CA that signed the RAPI certificate. Set this or rapiFingerprint.";
    };

    rapiFingerprint = mkOption {
      type = types.nullOr (types.strMatching "[0-9a-fA-F:]{64,95}");
      default = null;
      description = "SHA-256 fingerprint of the RAPI certificate (stock Ganeti certificates).";
    };

    desiredStateDir = mkOption {
      type = types.str;
      default = "/var/lib/ganeti-operator/desired-state";
      description = "The desired-state directory, when git is not used.";
    };

    git = mkOption {
      default = null;
      description = "Read the desired state from a git repository (bare is fine) instead of a directory.";
      type = types.nullOr (types.submodule {
        options = {
          repo = mkOption { type = types.str; description = "Path of the repository."; };
          branch = mkOption { type = types.str; default = "main"; description = "The branch to follow."; };
          path = mkOption { type = types.str; default = "desired-state"; description = "The desired-state directory inside the repository."; };
        };
      });
    };

    listen = mkOption {
      type = types.str;
      default = "127.0.0.1:9090";
      description = "Where /metrics, /healthz, /readyz, /status, /events and /hooks/git are served.";
    };

    logFormat = mkOption {
      type = types.enum [ "text" "json" ];
      default = "text";
      description = "The log in the journal: text for people, or json for one JSON object a line, the event trail's events among them (run --log-format).";
    };

    webhookSecretFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "The webhook's HMAC secret, passed with LoadCredential. Without it webhooks are refused.";
    };

    secretsIdentityFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "The operator's age identity or SSH private key, which opens the desired state's secrets; passed with LoadCredential.";
    };

    store = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/var/lib/ganeti-store";
      description = "The artifact store's directory (images, boot pointers, secrets), needed when the desired state sets cluster.store. The unit may write there and nowhere else outside its state directory.";
    };

    serveStore = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "0.0.0.0:8480";
      description = "Serve the store read-only over HTTP on this address (run --serve-store), for hosts that netboot from it.";
    };

    secretsNotify = mkOption {
      type = types.nullOr (types.submodule {
        options = {
          command = mkOption { type = types.listOf types.str; description = "Run after a host's secrets changed; {host} is the host's name."; };
          timeoutSeconds = mkOption { type = types.nullOr types.ints.positive; default = null; description = "How long one run may take (at most 600)."; };
        };
      });
      default = null;
      description = "A command that tells a host its secrets changed (the config file's secretsNotify).";
    };

    resyncInterval = mkOption {
      type = types.nullOr (types.strMatching "[0-9]+(s|m|h)");
      default = null;
      example = "5m";
      description = "Overrides policy.resyncInterval.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [{
      assertion = (cfg.rapiCaFile == null) != (cfg.rapiFingerprint == null);
      message = "services.ganeti-operator: set exactly one of rapiCaFile and rapiFingerprint.";
    } {
      assertion = cfg.serveStore == null || cfg.store != null;
      message = "services.ganeti-operator: serveStore needs store.";
    }];

    systemd.services.ganeti-operator = {
      description = "ganeti-operator: keeps the Ganeti cluster matching its desired state";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      environment.GANETI_OPERATOR_CONFIG = "${configFile}";
      serviceConfig = {
        ExecStart = escapeShellArgs ([ "${cfg.package}/bin/ganeti-operator" "run" "--listen" cfg.listen ]
          ++ sourceArgs
          ++ optionals (cfg.webhookSecretFile != null) [ "--webhook-secret-file" "/run/credentials/ganeti-operator.service/webhook-secret" ]
          ++ optionals (cfg.resyncInterval != null) [ "--resync-interval" cfg.resyncInterval ]
          ++ optionals (cfg.serveStore != null) [ "--serve-store" cfg.serveStore ]
          ++ optionals (cfg.logFormat != "text") [ "--log-format" cfg.logFormat ]);
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        LoadCredential = [ "rapi-password:${cfg.rapiPasswordFile}" ]
          ++ optional (cfg.rapiCaFile != null) "rapi-ca:${cfg.rapiCaFile}"
          ++ optional (cfg.webhookSecretFile != null) "webhook-secret:${cfg.webhookSecretFile}"
          ++ optional (cfg.secretsIdentityFile != null) "secrets-identity:${cfg.secretsIdentityFile}";
        Restart = "on-failure";
        RestartSec = 5;
        TimeoutStopSec = 90;
        DynamicUser = true;
        StateDirectory = "ganeti-operator";
        ReadOnlyPaths = optional (cfg.git != null) cfg.git.repo;
        ReadWritePaths = optional (cfg.store != null) cfg.store;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        NoNewPrivileges = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ];
        CapabilityBoundingSet = "";
        UMask = "0077";
      };
    };
  };
}
