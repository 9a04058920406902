# The ganeti-operator package. Build from the repository root:
#   nix-build -E 'with import <nixpkgs> {}; callPackage ./nix/package.nix {}'
{ lib, rustPlatform, git, makeWrapper }:

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

  nativeBuildInputs = [ makeWrapper ];

  # The integration tests need a real Ganeti cluster (tests/run.sh brings one up).
  doCheck = false;

  # `run --git-repo` and the git hooks read commits with the git CLI.
  postInstall = ''
    wrapProgram $out/bin/ganeti-operator --prefix PATH : ${lib.makeBinPath [ git ]}
  '';

  meta = {
    description = "Keeps a Ganeti cluster matching a desired state kept as YAML in git";
    license = lib.licenses.mit;
    mainProgram = "ganeti-operator";
    platforms = lib.platforms.linux;
  };
}
