{
  description = "temporal-autoscaler: scales Kubernetes workloads on Temporal task-queue backlog";

  # `nix flake lock` (or `nix flake update`) refreshes the pins in flake.lock.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";
    crane.url = "github:ipetkov/crane";
  };

  outputs =
    {
      self,
      nixpkgs,
      crane,
    }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # The crate, its checks and the dev shell (nix/package.nix), per system.
      build = pkgs: import ./nix/package.nix { inherit pkgs crane; };
    in
    {
      packages = forAllSystems (
        pkgs:
        let
          agent = (build pkgs).agent;
        in
        {
          default = agent;
          temporal-autoscaler = agent;
        }
        # A container image holds Linux binaries: build it on (or for) Linux.
        // lib.optionalAttrs pkgs.stdenv.isLinux {
          image = import ./nix/image.nix { inherit pkgs agent; };
        }
      );

      checks = forAllSystems (pkgs: (build pkgs).checks);

      devShells = forAllSystems (pkgs: {
        default = (build pkgs).devShell;
      });
    };
}
