# The agent built with crane: dependencies once (buildDepsOnly), then the crate, and `checks`
# (clippy, rustfmt, tests) that reuse the same dependency artifacts.
{ pkgs, crane }:
let
  inherit (pkgs) lib;
  craneLib = crane.mkLib pkgs;
  root = ../.;

  src = lib.cleanSourceWith {
    src = root;
    name = "temporal-autoscaler-source";
    filter = path: type: (craneLib.filterCargoSources path type) || (import ./source-filter.nix root path type);
  };

  # The Temporal protos are compiled by prost-build in temporalio-protos' build script: with
  # protoc from nixpkgs (not the `vendored-protoc` feature).
  protoc = "${pkgs.protobuf}/bin/protoc";

  commonArgs = {
    inherit src;
    strictDeps = true;
    nativeBuildInputs = [ pkgs.protobuf ];
    buildInputs = lib.optionals pkgs.stdenv.isDarwin [ pkgs.libiconv ];
    PROTOC = protoc;
  };

  cargoArtifacts = craneLib.buildDepsOnly commonArgs;

  agent = craneLib.buildPackage (
    commonArgs
    // {
      inherit cargoArtifacts;
      # The tests run once, in checks.tests.
      doCheck = false;
      meta = {
        description = "Scales Kubernetes workloads on Temporal task-queue backlog";
        license = lib.licenses.asl20;
        mainProgram = "temporal-autoscaler";
      };
    }
  );

  checks = {
    inherit agent;

    clippy = craneLib.cargoClippy (
      commonArgs
      // {
        inherit cargoArtifacts;
        cargoClippyExtraArgs = "--all-targets -- --deny warnings";
      }
    );

    fmt = craneLib.cargoFmt { inherit src; };

    # The tests that run in the build sandbox, which has loopback but no network: unit tests
    # (lib and bin), and the integration tests whose only outside need is a Temporal dev server
    # (nixpkgs' temporal CLI, on 127.0.0.1): tests/it/cli.rs, kube_flow.rs, crd_flow.rs. The others
    # need PyPI packages (tests/it/pipeline.rs: the Temporal Python SDK for a real worker;
    # tests/it/chart.rs: helm-sdkpy), nix-instantiate (tests/it/nix.rs) or a cluster
    # (tests/it/cluster.rs): they run in ./scripts/test.
    tests = craneLib.cargoTest (
      commonArgs
      // {
        inherit cargoArtifacts;
        nativeBuildInputs = commonArgs.nativeBuildInputs ++ [ pkgs.temporal-cli ];
        TEMPORAL_CLI = "${pkgs.temporal-cli}/bin/temporal";
        # The dev server and the tests' temp files want a writable home.
        preBuild = ''
          export HOME=$(mktemp -d)
        '';
        # The library's tests (every one sits in a `tests` module: the filter `tests::`) and,
        # of the integration tests (one binary, tests/it), the files that need nothing
        # outside the sandbox but the temporal CLI.
        cargoTestExtraArgs = "--lib --bins --test it -- tests:: cli:: kube_flow:: crd_flow::";
      }
    );
  };

  devShell = craneLib.devShell {
    # The checks' inputs (protobuf, ...); cargo, clippy, rustc and rustfmt come with craneLib.
    inherit checks;
    packages = [
      pkgs.temporal-cli
      pkgs.kubectl
      pkgs.kubernetes-helm
      pkgs.kind
      (pkgs.python3.withPackages (ps: [ ps.pip ]))
    ];
    PROTOC = protoc;
  };
in
{
  inherit agent checks devShell;
}
