# Evaluates a NixOS module with nixpkgs' lib.evalModules, the NixOS options it sets
# stubbed as `types.anything`, and a stub `pkgs` whose tools live under `tools`.
# Scripts are not written to the store: `writeShellScript` returns "<name>\n<text>", so
# the test can read the script from ExecStart.
{ lib, module, settings, tools ? "/usr" }:
let
  stubs = { lib, ... }: {
    options = {
      systemd.services = lib.mkOption { type = lib.types.attrsOf lib.types.anything; default = { }; };
      systemd.timers = lib.mkOption { type = lib.types.attrsOf lib.types.anything; default = { }; };
      networking.fqdnOrHostName = lib.mkOption { type = lib.types.str; default = "navidrome.home.arpa"; };
      assertions = lib.mkOption { type = lib.types.listOf lib.types.anything; default = [ ]; };
    };
  };
  pkgs = {
    writeShellScript = name: text: "/stub/${name}\n${text}";
    writeText = name: text: "/stub/${name}\n${text}";
    curl = tools; jq = tools; coreutils = tools;
    callPackage = _: _: throw "pkgs.callPackage is not stubbed: set package";
  };
  config = (lib.evalModules { modules = [ module stubs settings ]; specialArgs = { inherit pkgs; }; }).config;
in {
  inherit (config.systemd) services timers;
  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
}
