# The agent's container image: `nix build .#image`, then `docker load < result`.
# Non-root (a numeric user with a passwd entry), CA certificates for TLS to Temporal and the
# API server, the agent as the entrypoint. No `created = "now"`: the image is reproducible.
{ pkgs, agent }:
let
  uid = 65532;
  gid = 65532;
  etc = pkgs.runCommand "temporal-autoscaler-etc" { } ''
    mkdir -p $out/etc
    cat > $out/etc/passwd <<PASSWD
    root:x:0:0:root:/root:/sbin/nologin
    nonroot:x:${toString uid}:${toString gid}:nonroot:/home/nonroot:/sbin/nologin
    PASSWD
    cat > $out/etc/group <<GROUP
    root:x:0:
    nonroot:x:${toString gid}:
    GROUP
  '';
in
pkgs.dockerTools.buildLayeredImage {
  name = "temporal-autoscaler";
  tag = agent.version;
  contents = [
    agent
    pkgs.cacert
    etc
  ];
  config = {
    Entrypoint = [ "${agent}/bin/temporal-autoscaler" ];
    Cmd = [ "run" ];
    User = "${toString uid}:${toString gid}";
    Env = [ "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt" ];
    ExposedPorts = {
      "8080/tcp" = { };
    };
    Labels = {
      "org.opencontainers.image.title" = "temporal-autoscaler";
      "org.opencontainers.image.version" = agent.version;
      "org.opencontainers.image.licenses" = "Apache-2.0";
    };
  };
}
