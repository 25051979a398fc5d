//! Provisioning (`mpay network init`): everything a two-region SEMOPS network needs in one
//! directory — the scheme root, each bank's and service's keys and
//! certificate, the directory file, one configuration file per process,
//! and the operators' tokens.
//!
//! The default topology (DESIGN §3.1):
//!
//! | region | banks | DC | CPP (home bank) | MPP (home bank) |
//! |---|---|---|---|---|
//! | `eu` | `bank1`, `bank2` | `dc1` | `cpp1` (`bank1`) | `mpp1` (`bank2`) |
//! | `us` | `bank3` | `dc2` | `cpp2` (`bank3`) | `mpp2` (`bank3`) |
//!
//! TLS by default: a private CA (`tls-ca.pem`, named by the directory's
//! `tls_ca`) and, per bank and service, a certificate for `127.0.0.1` and
//! `localhost` (`<name>-tls.pem`) with its key (`<name>-tls.key`, 0600);
//! every URL is `https://`. `--plaintext` provisions plain `http://` with
//! tokens allowed on loopback, for debugging only.
//!
//! Every bank peers with every other. Each CPP and MPP gets a token at every
//! bank for its own account only (`cpp:<name>`, `mpp:<name>`); it reaches a
//! customer's or merchant's account only under the mandate granted when
//! that customer or merchant enrols ([`grant_enrolment_mandate`]; the
//! authorization model is in `mpay_bank::mandate`).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use mpay_identity::{
    Certificate, CertificateBody, PartyId, Role, SecretKeys, Suite, Timestamp, hex_string,
};
use mpay_wire::Encode;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::bank_file::{BankFile, TokenEntry};
use crate::config::{ConfigError, read_text, write_keys, write_pin_keys};
use crate::{BankEntry, Directory, ServiceConfig, ServiceEntry, ServiceRole, Timing};

/// Why a network could not be provisioned, or a provisioned folder used.
/// Never carries a token or a key.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A configuration, key or directory file is missing or wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file or folder could not be made, read or written.
    #[error("{what}: {error}")]
    Io {
        /// What was being done, and to which path.
        what: String,
        /// What the OS said.
        error: std::io::Error,
    },
    /// What was asked cannot be done (a folder that holds a network, a URL
    /// that is not PostgreSQL's, a name the directory does not know).
    #[error("{0}")]
    Refused(String),
    /// A step failed: the TLS CA, randomness, the database server, a bank.
    #[error("{what}: {message}")]
    Failed {
        /// The step.
        what: String,
        /// What went wrong.
        message: String,
    },
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> ProvisionError {
    move |error| ProvisionError::Io { what, error }
}

fn failed<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> ProvisionError {
    let what = what.into();
    move |e| ProvisionError::Failed {
        what,
        message: e.to_string(),
    }
}

/// The directory file's name inside a network folder.
pub const DIRECTORY_FILE: &str = "network.toml";
/// The operators' tokens (service or bank name → token).
pub const OPERATORS_FILE: &str = "operators.toml";
/// The scheme root's secret keys.
const ROOT_KEYS_FILE: &str = "scheme-root.keys";
/// Validity of every certificate provisioning issues.
const CERTIFICATE_VALIDITY_MS: u64 = 365 * mpay_identity::MILLIS_PER_DAY;
/// Backdating of issued certificates, for clocks a little behind.
const CERTIFICATE_BACKDATE_MS: u64 = 60 * 60 * 1_000;
/// The TLS CA's certificate file inside a network folder.
pub const TLS_CA_FILE: &str = "tls-ca.pem";
/// Validity of the TLS certificates, seconds.
const TLS_VALIDITY_S: i64 = 365 * 24 * 60 * 60;
/// The network's one currency.
pub const CURRENCY: &str = "EUR";

/// A bank of the topology.
struct BankSpec {
    name: &'static str,
}

/// A service of the topology.
struct ServiceSpec {
    name: &'static str,
    role: ServiceRole,
    region: &'static str,
    home_bank: Option<&'static str>,
}

const BANKS: [BankSpec; 3] = [
    BankSpec { name: "bank1" },
    BankSpec { name: "bank2" },
    BankSpec { name: "bank3" },
];

const SERVICES: [ServiceSpec; 6] = [
    ServiceSpec {
        name: "dc1",
        role: ServiceRole::Dc,
        region: "eu",
        home_bank: None,
    },
    ServiceSpec {
        name: "dc2",
        role: ServiceRole::Dc,
        region: "us",
        home_bank: None,
    },
    ServiceSpec {
        name: "cpp1",
        role: ServiceRole::Cpp,
        region: "eu",
        home_bank: Some("bank1"),
    },
    ServiceSpec {
        name: "cpp2",
        role: ServiceRole::Cpp,
        region: "us",
        home_bank: Some("bank3"),
    },
    ServiceSpec {
        name: "mpp1",
        role: ServiceRole::Mpp,
        region: "eu",
        home_bank: Some("bank2"),
    },
    ServiceSpec {
        name: "mpp2",
        role: ServiceRole::Mpp,
        region: "us",
        home_bank: Some("bank3"),
    },
];

/// How to provision.
#[derive(Clone, Debug)]
pub struct Options {
    /// The folder; created if missing, must not hold a network already.
    pub dir: PathBuf,
    /// PostgreSQL server URL (`postgres://user@host:port/db`): each process
    /// gets a database of its own there. None: a SQLite file each.
    pub postgres: Option<String>,
    /// First port of a fixed layout (banks +1.., DCs +11.., CPPs +21..,
    /// MPPs +31..); None: free ports chosen now.
    pub base_port: Option<u16>,
    /// Cheap Argon2id PIN hashes (tests and benchmarks only).
    /// Overrides of the services' timing.
    pub timing: Timing,
    /// Micropayments at the CPPs and MPPs (mode `none`: every payment macro).
    pub micro: crate::MicroConfig,
    /// Seed of the keys (None: OS randomness).
    pub seed: Option<[u8; 32]>,
    /// Plain `http://` with tokens allowed on loopback instead of TLS.
    pub plaintext: bool,
}

/// What `init` made: each process's role, name and configuration file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Process {
    /// `bank`, `dc`, `cpp` or `mpp`.
    pub role: String,
    /// Its name in the directory.
    pub name: String,
    /// Its configuration file.
    pub config: PathBuf,
    /// Where it answers.
    pub url: String,
}

/// Operators' tokens, by service or bank name.
#[derive(Clone, Serialize, Deserialize, Default)]
pub struct Operators {
    /// Service or bank name → its operator's token.
    pub tokens: BTreeMap<String, String>,
}

impl std::fmt::Debug for Operators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operators")
            .field("names", &self.tokens.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Operators {
    /// The operators' tokens of the network folder `dir`.
    pub fn load(dir: &Path) -> Result<Operators, ProvisionError> {
        let path = dir.join(OPERATORS_FILE);
        let text = read_text(&path)?;
        toml::from_str(&text).map_err(|e| {
            ConfigError::Parse {
                path,
                message: e.to_string(),
            }
            .into()
        })
    }

    /// The operator's token of bank or service `name`.
    pub fn token(&self, name: &str) -> Result<&str, ProvisionError> {
        self.tokens
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ProvisionError::Refused(format!("no operator token for `{name}`")))
    }
}

/// Writes `text` to `path`, readable by the owner only from the start
/// ([`mpay_fs::write_atomic`]).
pub fn write_private(path: &Path, text: &str) -> Result<(), ProvisionError> {
    mpay_fs::write_atomic(path, text.as_bytes()).map_err(io(format!("writing {}", path.display())))
}

/// The cap of an enrolment mandate: the most one hold or one debit of a
/// processor on a customer's or merchant's account may be.
pub const ENROLMENT_MANDATE_CAP: &str = "10000.00 EUR";

/// What an enrolment mandate allows: a CPP holds (payments), debits
/// (micropayment totals to its own account) and reads its customer's
/// account; an MPP debits (refunds to the CPP) and reads its merchant's.
pub fn enrolment_operations(role: ServiceRole) -> Vec<mpay_bank::Operation> {
    use mpay_bank::Operation;
    match role {
        ServiceRole::Cpp => vec![Operation::Hold, Operation::Debit, Operation::Read],
        ServiceRole::Mpp => vec![Operation::Debit, Operation::Read],
        ServiceRole::Dc => Vec::new(),
    }
}

/// Grants `processor` its enrolment mandate on `account` at `bank`, as
/// that bank's operator acting on the holder's instruction (the operators'
/// tokens of the network folder `dir`). Granting again replaces it.
pub async fn grant_enrolment_mandate(
    dir: &Path,
    bank: &str,
    account: &str,
    processor: &str,
) -> Result<(), ProvisionError> {
    let directory = Directory::load(dir.join(DIRECTORY_FILE))?;
    let operators = Operators::load(dir)?;
    let entry = directory
        .bank(bank)
        .ok_or_else(|| ProvisionError::Refused(format!("no bank `{bank}` in the directory")))?;
    let role = directory
        .service(processor)
        .ok_or_else(|| ProvisionError::Refused(format!("no `{processor}` in the directory")))?
        .role;
    let what = format!("granting {processor} its mandate on {account} at {bank}");
    let mandate = mpay_bank::Mandate {
        account: mpay_bank::AccountId::parse(account).map_err(failed(&what))?,
        processor: processor.to_owned(),
        operations: enrolment_operations(role),
        cap: mpay_money::Amount::parse(ENROLMENT_MANDATE_CAP).map_err(failed(&what))?,
        revoked: false,
    };
    mpay_bank::BankClient::new(&entry.url)
        .map_err(failed(&what))?
        .with_token(operators.token(bank)?)
        .grant_mandate(&mandate)
        .await
        .map_err(failed(what))
}

fn token(rng: &mut ChaCha20Rng) -> String {
    let mut bytes = [0u8; 24];
    rand_core::Rng::fill_bytes(rng, &mut bytes);
    hex_string(&bytes)
}

/// A certificate for `subject` with `role` and the public half of `keys`,
/// issued by `root` (its keys `root_keys`): valid from a minute before
/// `now` (clocks differ a little) for a year. Provisioning issues every
/// certificate of a network with it; tests build their networks with it.
pub fn issue_certificate(
    root_keys: &SecretKeys,
    root: PartyId,
    subject: PartyId,
    role: Role,
    keys: &SecretKeys,
    now: Timestamp,
) -> Certificate {
    Certificate::issue(
        CertificateBody {
            subject,
            role,
            keys: keys.public(),
            limits: None,
            issued_at: now.saturating_sub_ms(CERTIFICATE_BACKDATE_MS),
            expires_at: now.saturating_add_ms(CERTIFICATE_VALIDITY_MS),
            issuer: root,
        },
        root_keys,
    )
}

/// Free loopback ports for one network's processes. Each port's listener
/// is held until the network is provisioned, so the system cannot hand the
/// same port out twice (a port bound and let go at once can come back at
/// the next pick, and then one service answers for another).
#[derive(Default)]
struct FreePorts(Vec<TcpListener>);

impl FreePorts {
    fn pick(&mut self) -> Result<u16, ProvisionError> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port".into()))?;
        let port = listener
            .local_addr()
            .map_err(io("finding a free port".into()))?
            .port();
        self.0.push(listener);
        Ok(port)
    }
}

/// A PostgreSQL URL naming database `name` on the same server.
pub fn postgres_database_url(server: &str, name: &str) -> Result<String, ProvisionError> {
    let Some(scheme_end) = server.find("://") else {
        return Err(ProvisionError::Refused(format!(
            "`{}` is not a postgres:// URL",
            crate::config::redact_url(server)
        )));
    };
    let (path_part, query) = match server.find('?') {
        Some(q) => (&server[..q], &server[q..]),
        None => (server, ""),
    };
    let host_start = scheme_end + 3;
    let base = match path_part[host_start..].find('/') {
        Some(slash) => &path_part[..host_start + slash],
        None => path_part,
    };
    Ok(format!("{base}/{name}{query}"))
}

/// Creates database `name` on the server (dropping an older one).
pub async fn create_database(server: &str, name: &str) -> Result<(), ProvisionError> {
    let db = mpay_sql::Db::connect(server).await.map_err(failed(format!(
        "connecting to {}",
        crate::config::redact_url(server)
    )))?;
    sqlx_execute(&db, &format!("DROP DATABASE IF EXISTS {name}")).await?;
    sqlx_execute(&db, &format!("CREATE DATABASE {name}")).await?;
    db.close().await;
    Ok(())
}

async fn sqlx_execute(db: &mpay_sql::Db, sql: &str) -> Result<(), ProvisionError> {
    // Names made here from a random hex prefix and fixed process names.
    mpay_sql::sqlx::raw_sql(mpay_sql::sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(db.pool())
        .await
        .map(|_| ())
        .map_err(failed(format!("`{sql}`")))
}

/// Provisions a network in `options.dir`; returns its processes in start
/// order (banks, DCs, MPPs, CPPs).
pub async fn provision(options: &Options) -> Result<Vec<Process>, ProvisionError> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let dir = dir
        .canonicalize()
        .map_err(io(format!("resolving {}", dir.display())))?;
    if dir.join(DIRECTORY_FILE).exists() {
        return Err(ProvisionError::Refused(format!(
            "{} already holds a network ({DIRECTORY_FILE}); use another folder",
            dir.display()
        )));
    }
    let seed = match options.seed {
        Some(seed) => seed,
        None => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(failed("OS randomness"))?;
            seed
        }
    };
    let mut rng = ChaCha20Rng::from_seed(seed);
    let now = crate::wall_clock();
    let root_keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
    let root_id = PartyId::random(&mut rng);
    let root_cert = Certificate::issue(
        CertificateBody {
            subject: root_id,
            role: Role::SchemeRoot,
            keys: root_keys.public(),
            limits: None,
            issued_at: now.saturating_sub_ms(CERTIFICATE_BACKDATE_MS),
            expires_at: now.saturating_add_ms(10 * CERTIFICATE_VALIDITY_MS),
            issuer: root_id,
        },
        &root_keys,
    );
    write_keys(&dir.join(ROOT_KEYS_FILE), &root_keys)?;

    let db_prefix = format!("mpay_{}", &token(&mut rng)[..8]);
    let path_of = |file: String| dir.join(file);
    let mut free_ports = FreePorts::default();
    let mut port_of = |index: usize, offset: u16| -> Result<u16, ProvisionError> {
        match options.base_port {
            Some(base) => Ok(base + offset + u16::try_from(index).unwrap_or(0)),
            None => free_ports.pick(),
        }
    };
    let mut db_url = Vec::new();
    let mut db_of = |name: &str| -> Result<String, ProvisionError> {
        match &options.postgres {
            Some(server) => {
                let database = format!("{db_prefix}_{name}");
                db_url.push((server.clone(), database.clone()));
                postgres_database_url(server, &database)
            }
            None => Ok(format!(
                "sqlite://{}",
                path_of(format!("{name}.db")).display()
            )),
        }
    };

    let ca = if options.plaintext {
        None
    } else {
        let ca = mpay_tls::Ca::generate("mpay network CA", 10 * TLS_VALIDITY_S)
            .map_err(failed("making the TLS CA"))?;
        let ca_path = path_of(TLS_CA_FILE.to_owned());
        std::fs::write(&ca_path, ca.cert_pem())
            .map_err(io(format!("writing {}", ca_path.display())))?;
        Some(ca)
    };
    let scheme = if ca.is_some() { "https" } else { "http" };
    // A certificate and key for `name`'s listener: (cert path, key path).
    let tls_files = |name: &str| -> Result<Option<(String, String)>, ProvisionError> {
        let Some(ca) = &ca else {
            return Ok(None);
        };
        let issued = ca
            .issue(&["127.0.0.1", "localhost"], TLS_VALIDITY_S)
            .map_err(failed(format!("issuing {name}'s TLS certificate")))?;
        let cert = path_of(format!("{name}-tls.pem"));
        let key = path_of(format!("{name}-tls.key"));
        std::fs::write(&cert, &issued.cert_pem)
            .map_err(io(format!("writing {}", cert.display())))?;
        write_private(&key, &issued.key_pem)?;
        Ok(Some((
            cert.display().to_string(),
            key.display().to_string(),
        )))
    };
    // The money office's listener (`mpay demo` serves it over TLS too).
    tls_files("office")?;
    let mut operators = Operators::default();
    let mut directory = Directory {
        currency: CURRENCY.to_owned(),
        scheme_root: hex_string(&root_cert.to_wire()),
        banks: Vec::new(),
        services: Vec::new(),
        tls_ca: ca
            .as_ref()
            .map(|_| path_of(TLS_CA_FILE.to_owned()).display().to_string()),
    };
    let mut processes = Vec::new();
    let mut bank_files = Vec::new();
    for (i, spec) in BANKS.iter().enumerate() {
        let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let id = PartyId::random(&mut rng);
        let cert = issue_certificate(&root_keys, root_id, id, Role::Bank, &keys, now);
        let keys_path = path_of(format!("{}.keys", spec.name));
        write_keys(&keys_path, &keys)?;
        let port = port_of(i, 1)?;
        let url = format!("{scheme}://127.0.0.1:{port}");
        let tls = tls_files(spec.name)?;
        directory.banks.push(BankEntry {
            name: spec.name.to_owned(),
            id: id.to_hex(),
            url: url.clone(),
            certificate: hex_string(&cert.to_wire()),
        });
        let operator = token(&mut rng);
        operators
            .tokens
            .insert(spec.name.to_owned(), operator.clone());
        bank_files.push(BankFile {
            name: spec.name.to_owned(),
            listen: format!("127.0.0.1:{port}"),
            db: db_of(spec.name)?,
            keys: keys_path.display().to_string(),
            certificate: hex_string(&cert.to_wire()),
            tls_cert: tls.as_ref().map(|(cert, _)| cert.clone()),
            tls_key: tls.as_ref().map(|(_, key)| key.clone()),
            directory: path_of(DIRECTORY_FILE.to_owned()).display().to_string(),
            accounts: SERVICES
                .iter()
                .filter(|s| s.home_bank == Some(spec.name))
                .map(|s| format!("{}:{}", s.role.as_str(), s.name))
                .collect(),
            tokens: vec![TokenEntry {
                token: operator,
                caller: "operator".to_owned(),
                accounts: Vec::new(),
                operator: true,
            }],
        });
    }

    let mut service_configs = Vec::new();
    let mut counts = BTreeMap::<&str, usize>::new();
    for spec in &SERVICES {
        let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let id = PartyId::random(&mut rng);
        let cert = issue_certificate(
            &root_keys,
            root_id,
            id,
            spec.role.certificate_role(),
            &keys,
            now,
        );
        let keys_path = path_of(format!("{}.keys", spec.name));
        write_keys(&keys_path, &keys)?;
        let role = spec.role.as_str();
        let index = counts.entry(role).or_default();
        let offset = match spec.role {
            ServiceRole::Dc => 11,
            ServiceRole::Cpp => 21,
            ServiceRole::Mpp => 31,
        };
        let port = port_of(*index, offset)?;
        let url = format!("{scheme}://127.0.0.1:{port}");
        let tls = tls_files(spec.name)?;
        *index += 1;
        let account = spec.home_bank.map(|_| format!("{role}:{}", spec.name));
        directory.services.push(ServiceEntry {
            name: spec.name.to_owned(),
            id: id.to_hex(),
            role: spec.role,
            region: spec.region.to_owned(),
            url: url.clone(),
            certificate: hex_string(&cert.to_wire()),
            bank: spec.home_bank.map(str::to_owned),
            account,
        });
        let mut bank_tokens = BTreeMap::new();
        if spec.role != ServiceRole::Dc {
            let own = format!("{role}:{}", spec.name);
            for bank in &mut bank_files {
                let secret = token(&mut rng);
                bank.tokens.push(TokenEntry {
                    token: secret.clone(),
                    caller: spec.name.to_owned(),
                    accounts: vec![own.clone()],
                    operator: false,
                });
                bank_tokens.insert(bank.name.clone(), secret);
            }
        }
        // A CPP's PIN verification key, in a file of its own (DESIGN §3.2).
        let pin_keys = if spec.role == ServiceRole::Cpp {
            let path = path_of(format!("{}.pin-keys", spec.name));
            let mut secret = [0u8; 32];
            rand_core::Rng::fill_bytes(&mut rng, &mut secret);
            let keys = mpay_semops::PinKeys::new(vec![mpay_semops::PinKey::new(secret)])
                .map_err(failed("PIN keys"))?;
            write_pin_keys(&path, &keys)?;
            Some(path.display().to_string())
        } else {
            None
        };
        let operator = token(&mut rng);
        operators
            .tokens
            .insert(spec.name.to_owned(), operator.clone());
        let config = ServiceConfig {
            name: spec.name.to_owned(),
            listen: format!("127.0.0.1:{port}"),
            db: db_of(spec.name)?,
            keys: keys_path.display().to_string(),
            directory: path_of(DIRECTORY_FILE.to_owned()).display().to_string(),
            operator_token: operator,
            bank_tokens,
            timing: options.timing.clone(),
            pin_failures_max: None,
            pin_keys,
            pin_cost: None,
            micro: if spec.role == ServiceRole::Dc {
                crate::MicroConfig::default()
            } else {
                options.micro.clone()
            },
            tls_cert: tls.as_ref().map(|(cert, _)| cert.clone()),
            tls_key: tls.as_ref().map(|(_, key)| key.clone()),
            allow_plaintext_loopback: options.plaintext,
        };
        config.check()?;
        service_configs.push((spec.role, config, url));
    }

    directory.save(path_of(DIRECTORY_FILE.to_owned()))?;
    for bank in &bank_files {
        let config = path_of(format!("{}.toml", bank.name));
        bank.save(&config)?;
        processes.push(Process {
            role: "bank".to_owned(),
            name: bank.name.clone(),
            config,
            url: format!("{scheme}://{}", bank.listen),
        });
    }
    for wanted in [ServiceRole::Dc, ServiceRole::Mpp, ServiceRole::Cpp] {
        for (role, config, url) in &service_configs {
            if *role != wanted {
                continue;
            }
            let path = path_of(format!("{}.toml", config.name));
            config.save(&path)?;
            processes.push(Process {
                role: role.as_str().to_owned(),
                name: config.name.clone(),
                config: path,
                url: url.clone(),
            });
        }
    }
    write_private(
        &path_of(OPERATORS_FILE.to_owned()),
        &toml::to_string(&operators).map_err(failed("encoding the operators' tokens"))?,
    )?;
    for (server, database) in db_url {
        create_database(&server, &database).await?;
    }
    Ok(processes)
}

/// Drops the PostgreSQL databases of the network provisioned in `dir` on
/// `server` (each process's `db`, when it names a database there): what a
/// temporary network (`bench`, `chaos`, the demo on PostgreSQL) does when
/// it is done, so that runs leave nothing behind on the server. A process
/// on SQLite has nothing to drop.
pub async fn drop_databases(server: &str, dir: &Path) -> Result<(), ProvisionError> {
    let mut names = Vec::new();
    for process in processes(dir)? {
        let text = read_text(&process.config)?;
        let config: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: process.config.clone(),
            message: e.to_string(),
        })?;
        if let Some(name) = config
            .get("db")
            .and_then(|db| db.as_str())
            .and_then(database_name)
        {
            names.push(name);
        }
    }
    let db = mpay_sql::Db::connect(server).await.map_err(failed(format!(
        "connecting to {}",
        crate::config::redact_url(server)
    )))?;
    for name in names {
        sqlx_execute(&db, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
    }
    db.close().await;
    Ok(())
}

/// The database a `postgres://…/name?…` URL names, if it is one this
/// module made (letters, digits and `_` only: safe to name in SQL).
fn database_name(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let path = rest.split('?').next()?;
    let (_, name) = path.split_once('/')?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| name.to_owned())
}

/// The processes of a provisioned folder, in start order.
pub fn processes(dir: &Path) -> Result<Vec<Process>, ProvisionError> {
    let directory = Directory::load(dir.join(DIRECTORY_FILE))?;
    let mut out = Vec::new();
    for bank in &directory.banks {
        out.push(Process {
            role: "bank".to_owned(),
            name: bank.name.clone(),
            config: dir.join(format!("{}.toml", bank.name)),
            url: bank.url.clone(),
        });
    }
    for wanted in [ServiceRole::Dc, ServiceRole::Mpp, ServiceRole::Cpp] {
        for service in directory.services.iter().filter(|s| s.role == wanted) {
            out.push(Process {
                role: wanted.as_str().to_owned(),
                name: service.name.clone(),
                config: dir.join(format!("{}.toml", service.name)),
                url: service.url.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A network's processes need distinct ports. Picking each by binding
    /// port 0 and letting it go can be handed the same port twice (seen:
    /// 2 repeats in 300 picks), and then one service answers for another.
    #[test]
    fn the_free_ports_of_one_network_are_distinct() {
        let mut ports = FreePorts::default();
        let picked = (0..500)
            .map(|_| ports.pick().expect("a free port"))
            .collect::<Vec<u16>>();
        let distinct = picked.iter().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(distinct.len(), picked.len(), "a port handed out twice");
    }

    /// True if a provisioned file holds a secret: keys, or a token.
    fn holds_secret(path: &Path) -> bool {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        path.extension().is_some_and(|e| e == "keys")
            || text.contains("token")
            || path.file_name().is_some_and(|n| n == OPERATORS_FILE)
    }

    #[test]
    fn processor_tokens_reach_only_their_own_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            dir: dir.path().join("net"),
            postgres: None,
            base_port: Some(42_100),
            timing: crate::Timing::default(),
            micro: crate::MicroConfig::default(),
            seed: Some([8; 32]),
            plaintext: false,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(provision(&options)).unwrap();
        let alice = mpay_bank::AccountId::parse("cust:alice").unwrap();
        let bob = mpay_bank::AccountId::parse("shop:bob").unwrap();
        for bank in BANKS {
            let file = BankFile::load(&options.dir.join(format!("{}.toml", bank.name))).unwrap();
            let loaded = file.resolve(crate::wall_clock()).unwrap();
            for token in &loaded.config.tokens {
                let caller = token.caller();
                if caller.is_operator() {
                    continue;
                }
                // A processor's token alone reaches no customer and no
                // merchant: that takes a mandate granted at enrolment.
                assert!(
                    !caller.may_use(&alice),
                    "{}: {} on cust:alice",
                    bank.name,
                    caller.name()
                );
                assert!(
                    !caller.may_use(&bob),
                    "{}: {} on shop:bob",
                    bank.name,
                    caller.name()
                );
                let own = mpay_bank::AccountId::parse(&format!(
                    "{}:{}",
                    &caller.name()[..3],
                    caller.name()
                ))
                .unwrap();
                assert!(
                    caller.may_use(&own),
                    "{}: {} on its own account",
                    bank.name,
                    caller.name()
                );
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn every_provisioned_file_holding_a_secret_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            dir: dir.path().join("net"),
            postgres: None,
            base_port: Some(42_000),
            timing: crate::Timing::default(),
            micro: crate::MicroConfig::default(),
            seed: Some([7; 32]),
            plaintext: false,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(provision(&options)).unwrap();
        let mut secrets = Vec::new();
        let mut open = Vec::new();
        for entry in std::fs::read_dir(&options.dir).unwrap() {
            let path = entry.unwrap().path();
            if !holds_secret(&path) {
                continue;
            }
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            secrets.push(path.clone());
            if mode != 0o600 {
                open.push(format!("{} is {mode:o}", path.display()));
            }
        }
        // 3 banks + 6 services (configuration and keys each), the root's
        // keys and the operators' tokens.
        assert_eq!(secrets.len(), 20, "{secrets:?}");
        assert!(open.is_empty(), "readable by others: {open:?}");
        let leftovers: Vec<_> = std::fs::read_dir(&options.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    /// Names of the databases on `server` that start with `prefix`.
    async fn databases(server: &str, prefix: &str) -> Vec<String> {
        use mpay_sql::sqlx::Row;
        let db = mpay_sql::Db::connect(server).await.unwrap();
        let rows = mpay_sql::sqlx::query(
            "SELECT CAST(datname AS TEXT) AS datname FROM pg_database ORDER BY datname",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        db.close().await;
        rows.iter()
            .map(|r| r.try_get::<String, _>("datname").unwrap())
            .filter(|n| n.starts_with(prefix))
            .collect()
    }

    /// A temporary network on PostgreSQL leaves no database behind.
    #[test]
    fn a_provisioned_network_s_databases_are_dropped() {
        let server = std::env::var(mpay_sql::testing::POSTGRES_URL_ENV)
            .unwrap_or_else(|_| mpay_sql::testing::POSTGRES_URL_DEFAULT.to_owned());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        if let Err(error) = runtime.block_on(mpay_sql::Db::connect(&server)) {
            assert!(std::env::var_os("CI").is_none(), "PostgreSQL: {error}");
            eprintln!("SKIPPED POSTGRES: {error}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            dir: dir.path().join("net"),
            postgres: Some(server.clone()),
            base_port: Some(42_300),
            timing: crate::Timing::default(),
            micro: crate::MicroConfig::default(),
            seed: None,
            plaintext: false,
        };
        let processes = runtime.block_on(provision(&options)).unwrap();
        let bank1 = std::fs::read_to_string(&processes[0].config).unwrap();
        let bank1: toml::Table = toml::from_str(&bank1).unwrap();
        let name = database_name(bank1["db"].as_str().unwrap()).unwrap();
        let prefix = name.strip_suffix("bank1").unwrap().to_owned();
        let made = runtime.block_on(databases(&server, &prefix));
        assert_eq!(made.len(), processes.len(), "{made:?}");
        runtime
            .block_on(drop_databases(&server, &options.dir))
            .unwrap();
        assert_eq!(
            runtime.block_on(databases(&server, &prefix)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_database_of_a_url_is_read_back_or_left_alone() {
        assert_eq!(
            database_name("postgres://postgres@127.0.0.1:5432/mpay_x_bank1?sslmode=disable"),
            Some("mpay_x_bank1".into())
        );
        assert_eq!(database_name("sqlite:///tmp/net/bank1.db"), None);
        assert_eq!(database_name("postgres://h/"), None);
        assert_eq!(database_name("postgres://h/a;DROP"), None);
    }

    #[test]
    fn postgres_urls_name_a_database() {
        assert_eq!(
            postgres_database_url("postgres://postgres@127.0.0.1:5432/test", "mpay_x_bank1")
                .unwrap(),
            "postgres://postgres@127.0.0.1:5432/mpay_x_bank1"
        );
        assert_eq!(
            postgres_database_url("postgres://u:p@h/db?sslmode=disable", "n").unwrap(),
            "postgres://u:p@h/n?sslmode=disable"
        );
        assert_eq!(
            postgres_database_url("postgres://h", "n").unwrap(),
            "postgres://h/n"
        );
        assert!(postgres_database_url("nonsense", "n").is_err());
    }
}
