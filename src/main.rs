//! The `temporal-autoscaler` command line: `run` the agent, `check` spec files offline.

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use temporal_autoscaler::settings::{LogFormat, Overrides, Settings};

/// See Cargo.toml: jemalloc keeps the resident size of 10,000 scalers near their heap size.
#[cfg(all(unix, feature = "jemalloc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options (its `malloc_conf`, under the crate's `_rjem_` prefix): freed pages go
/// back to the OS within about a second, by a background thread, instead of after ten seconds
/// of further allocations in the same arena; so a 10 MB `/scalers` listing or the start-up
/// burst does not stay resident. One arena: the agent's few threads do not contend, and each
/// further arena kept pages of its own (about 2 MB at 10,000 scalers, ./scripts/bench).
/// `_RJEM_MALLOC_CONF` in the environment still overrides it.
#[cfg(all(unix, feature = "jemalloc"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &u8 =
    &b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:1\0"[0];

#[derive(Parser)]
#[command(
    name = "temporal-autoscaler",
    version,
    about = "Scales Kubernetes workloads on Temporal task-queue backlog"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent. Every flag can also be set in the settings file or as TEMPORAL_AUTOSCALER_<NAME>.
    Run {
        /// Directory of TemporalScaler files (*.yaml, *.yml, *.json), hot-reloaded.
        #[arg(long)]
        config_dir: Option<PathBuf>,
        /// Compute and report, never write to Kubernetes; without a cluster, targets are simulated.
        #[arg(long)]
        dry_run: bool,
        /// HTTP listen address [default: 0.0.0.0:8080].
        #[arg(long)]
        http_addr: Option<String>,
        /// Name of the leader Lease [default: temporal-autoscaler].
        #[arg(long)]
        lease_name: Option<String>,
        /// Namespace of the Lease [default: the pod's namespace, else default].
        #[arg(long)]
        lease_namespace: Option<String>,
        /// Lease duration in seconds [default: 15].
        #[arg(long)]
        lease_duration: Option<u64>,
        /// Deadline of every Kubernetes request, in seconds (fractions allowed): a silent API
        /// server fails the call after it; at most lease_duration / 3 [default: 5].
        #[arg(long, value_name = "SECONDS")]
        kube_timeout: Option<f64>,
        /// Log format [default: text].
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
        /// Lease identity of this replica [default: hostname plus a random suffix].
        #[arg(long)]
        identity: Option<String>,
        /// Watch TemporalScalers only in these namespaces (comma-separated) [default: all].
        #[arg(long, value_delimiter = ',')]
        watch_namespaces: Option<Vec<String>>,
        /// Do not watch TemporalScaler custom resources.
        #[arg(long)]
        no_crds: bool,
        /// Most Temporal RPCs per second per endpoint, and the burst [default: 300].
        #[arg(long)]
        temporal_rps: Option<u32>,
        /// The status page at / and the history it charts: --ui=false turns both off [default: true].
        #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        ui: Option<bool>,
        /// Idle pods first: deletion costs on the target's pods before a scale-down, from the
        /// worker heartbeats; --idle-first=false never reads or writes pods [default: true].
        #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        idle_first: Option<bool>,
        /// A remote cluster: NAME=KUBECONFIG (repeatable); a changed file is used within a second.
        #[arg(long = "cluster", value_name = "NAME=KUBECONFIG")]
        clusters: Vec<String>,
        /// Settings file (YAML, or TOML by extension); also TEMPORAL_AUTOSCALER_SETTINGS.
        #[arg(long, env = "TEMPORAL_AUTOSCALER_SETTINGS")]
        settings: Option<PathBuf>,
    },
    /// Print the TemporalScaler CustomResourceDefinition (YAML).
    Crd,
    /// Query Temporal once per trigger and print the decision walk, rule by rule. No writes.
    Explain {
        file: PathBuf,
        /// Only the scaler with this name.
        #[arg(long)]
        name: Option<String>,
        /// Current replicas to decide from [default: from /scale, else minReplicaCount].
        #[arg(long)]
        current: Option<u32>,
        /// A remote cluster to read a placement's counts from: NAME=KUBECONFIG (repeatable);
        /// also from --settings and TEMPORAL_AUTOSCALER_CLUSTERS.
        #[arg(long = "cluster", value_name = "NAME=KUBECONFIG")]
        clusters: Vec<String>,
        /// The agent's settings file, for its clusters; also TEMPORAL_AUTOSCALER_SETTINGS.
        #[arg(long, env = "TEMPORAL_AUTOSCALER_SETTINGS")]
        settings: Option<PathBuf>,
    },
    /// Print TemporalScalers equivalent to the KEDA ScaledObjects (temporal triggers) in FILE;
    /// what has no equivalent is listed on stderr, never dropped silently. Exits 1 if a
    /// ScaledObject was refused (it would not read what KEDA read) or nothing was converted.
    Convert { file: PathBuf },
    /// Validate TemporalScaler files or directories offline: exit 0 if all are valid, else 1
    /// with one line per problem. WorkerResourceTemplates (Temporal's worker controller) in
    /// them are rendered for a version as the controller renders them, then validated.
    Check {
        #[arg(required_unless_present = "worker_resource_template")]
        paths: Vec<PathBuf>,
        /// A file of WorkerResourceTemplates: print each template as the controller renders it
        /// for --build-id and --temporal-namespace, and validate it.
        #[arg(long, value_name = "FILE")]
        worker_resource_template: Option<PathBuf>,
        /// The build ID to render WorkerResourceTemplates for.
        #[arg(long, default_value = "check")]
        build_id: String,
        /// The Temporal namespace of the WorkerDeployment (its
        /// spec.workerOptions.temporalNamespace), filled in for `namespace: ""`.
        #[arg(long, default_value = "default")]
        temporal_namespace: String,
        /// The clusters the agent knows (NAME=KUBECONFIG, repeatable): a placement or
        /// scaleTargetRef naming another cluster is an error. Also from --settings and
        /// TEMPORAL_AUTOSCALER_CLUSTERS.
        #[arg(long = "cluster", value_name = "NAME=KUBECONFIG")]
        clusters: Vec<String>,
        /// The agent's settings file, for its clusters; also TEMPORAL_AUTOSCALER_SETTINGS.
        #[arg(long, env = "TEMPORAL_AUTOSCALER_SETTINGS")]
        settings: Option<PathBuf>,
    },
}

/// `check --worker-resource-template FILE`: each WRT of FILE as the controller renders it for
/// `version`, as YAML documents on stdout (the check's lines follow).
fn print_rendered(file: &Path, version: &temporal_autoscaler::wrt::Version) -> Result<(), String> {
    let content = temporal_autoscaler::source::dir::read_text(file)
        .map_err(|(_, m)| format!("{}: {m}", file.display()))?;
    let checked = temporal_autoscaler::check::wrt::check_file(file, &content, version)
        .ok_or_else(|| format!("{}: no WorkerResourceTemplate in it", file.display()))?;
    for r in &checked.rendered {
        let yaml =
            serde_saphyr::to_string(&r.value).map_err(|e| format!("cannot write YAML: {e}"))?;
        println!("---\n{}", yaml.trim_end());
    }
    Ok(())
}

/// The log filter without `RUST_LOG`. kube's HTTP trace layer logs every failed request as an
/// ERROR (`kube_client::client::builder`: "failed with error ..."), a line per retry in an API
/// server outage; the agent logs those failures itself, with context and without a flood
/// (`report::outage`), so that target is off. `RUST_LOG` overrides all of it.
const DEFAULT_LOG_FILTER: &str = "info,temporalio_client=warn,kube_client::client::builder=off";

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not in `kubectl logs` or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// The clusters of the settings (file, environment, `--cluster` flags), for `check` and
/// `explain`.
fn cluster_settings(
    file: Option<&std::path::Path>,
    flags: Vec<String>,
) -> Result<Vec<temporal_autoscaler::clusters::ClusterSpec>, temporal_autoscaler::Error> {
    let overrides = Overrides {
        clusters: (!flags.is_empty()).then_some(flags),
        ..Overrides::default()
    };
    Settings::load(file, &overrides).map(|s| s.clusters)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Explain {
            file,
            name,
            current,
            clusters,
            settings,
        } => {
            let clusters = match cluster_settings(settings.as_deref(), clusters) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::from(2);
                }
            };
            match rt.block_on(temporal_autoscaler::explain::explain(
                &file,
                name.as_deref(),
                current,
                &clusters,
            )) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Convert { file } => {
            let content = match std::fs::read_to_string(&file) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{}: cannot read: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            match temporal_autoscaler::convert::convert(&file, &content) {
                Ok(report) => {
                    print!("{}", report.output);
                    for n in &report.notes {
                        eprintln!("note: {n}");
                    }
                    for e in &report.errors {
                        eprintln!("error: {e}");
                    }
                    // A refused ScaledObject fails the command even when others converted.
                    if report.converted == 0 || !report.errors.is_empty() {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Crd => {
            print!("{}", temporal_autoscaler::spec::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Check {
            mut paths,
            worker_resource_template,
            build_id,
            temporal_namespace,
            clusters,
            settings,
        } => {
            let version = temporal_autoscaler::wrt::Version {
                build_id,
                temporal_namespace,
            };
            if let Some(file) = worker_resource_template {
                if let Err(e) = print_rendered(&file, &version) {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
                paths.push(file);
            }
            let known: Vec<String> = match cluster_settings(settings.as_deref(), clusters) {
                Ok(c) => c.into_iter().map(|c| c.name).collect(),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let report = temporal_autoscaler::check::check_paths_for(&paths, &known, &version);
            for line in &report.errors {
                println!("{line}");
            }
            if report.errors.is_empty() {
                println!(
                    "ok: {} scaler(s) in {} file(s)",
                    report.scalers, report.files
                );
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Run {
            config_dir,
            dry_run,
            http_addr,
            lease_name,
            lease_namespace,
            lease_duration,
            kube_timeout,
            log_format,
            identity,
            watch_namespaces,
            no_crds,
            temporal_rps,
            ui,
            idle_first,
            clusters,
            settings,
        } => {
            let overrides = Overrides {
                config_dir,
                dry_run: dry_run.then_some(true),
                http_addr,
                lease_name,
                lease_namespace,
                lease_duration,
                kube_timeout,
                log_format,
                identity,
                watch_namespaces,
                no_crds: no_crds.then_some(true),
                temporal_rps,
                ui,
                idle_first,
                clusters: (!clusters.is_empty()).then_some(clusters),
            };
            let settings = match Settings::load(settings.as_deref(), &overrides) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(settings.log_format);
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::from(2);
                }
            };
            match rt.block_on(temporal_autoscaler::agent::run(settings)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "agent stopped");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
