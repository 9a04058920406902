# The ganeti-operator package. Build from the repository root:
#   nix-build -E 'with import <nixpkgs> {}; callPackage ./nix/package.nix {}'
{ lib, stdenv, rustPlatform, git, makeWrapper, installShellFiles }:

rustPlatform.buildRustPackage {
  pname = "ganeti-operator";
  version = "0.1.0";

  src = lib.cleanSourceWith {
    src = ../.;
    filter = path: type:
      let base = baseNameOf path; in
      !(builtins.elem base [ "target" ".git" "result" ]);
  };

  cargoLock.lockFile = ../Cargo.lock;

  nativeBuildInputs = [ makeWrapper installShellFiles ];

  # The integration tests need a real Ganeti cluster (tests/run.sh brings one up).
  doCheck = false;

  # `run --git-repo` and the git hooks read commits with the git CLI.
  # Completions and the manual page come from the binary's own command-line definition.
  postInstall = ''
    wrapProgram $out/bin/ganeti-operator --prefix PATH : ${lib.makeBinPath [ git ]}
  '' + lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    installShellCompletion --cmd ganeti-operator \
      --bash <($out/bin/ganeti-operator completions bash) \
      --zsh <($out/bin/ganeti-operator completions zsh) \
      --fish <($out/bin/ganeti-operator completions fish)
    $out/bin/ganeti-operator man > ganeti-operator.1
    installManPage ganeti-operator.1
  '';

  meta = {
    description = "Keeps a Ganeti cluster matching a desired state kept as YAML in git";
    license = lib.licenses.mit;
    mainProgram = "ganeti-operator";
    platforms = lib.platforms.linux;
  };
}
