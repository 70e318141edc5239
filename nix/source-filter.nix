# The files besides crane's Cargo sources (*.rs, *.toml, Cargo.lock: craneLib.filterCargoSources)
# that the build and the tests in `checks` read. Only builtins, so tests/it/chart.rs can evaluate it
# with a bare `nix-instantiate`, without nixpkgs.
#
#   root: the repository root; path: a file or directory under it; type: as in cleanSourceWith.
root: path: _type:
let
  prefix = toString root + "/";
  p = toString path;
  under = builtins.substring 0 (builtins.stringLength prefix) p == prefix;
  rel = builtins.substring (builtins.stringLength prefix) (builtins.stringLength p) p;
  matches = re: builtins.match re rel != null;
in
under
&& (
  # The committed CRD (src/spec's test compares it with the generated one) and the example
  # scalers (tests/it/cli.rs checks them).
  matches "config/.*\\.(yaml|yml|json)"
  # The Python worker used by the tests' support module.
  || matches "tests/support/[^/]+\\.py"
  # proptest's saved failure cases (src/decide/tests.rs).
  || matches "proptest-regressions/.*\\.txt"
  # Protobuf sources of a build script, should the crate ever have its own (the Temporal
  # protos come vendored with the temporalio-protos crate).
  || matches ".*\\.proto"
)
