# `nix-build nix` builds the package with the nixpkgs on NIX_PATH.
{ pkgs ? import <nixpkgs> { } }:
pkgs.callPackage ./package.nix { }
