//! The network's directory: who the banks and the services (CPP, MPP, DC)
//! are, where they listen, and their certificates. A TOML file written by
//! provisioning and read by every service and by the CLI.
//!
//! ```toml
//! currency = "EUR"
//! scheme_root = "…hex of the scheme root's certificate…"
//! tls_ca = "/etc/mpay/tls/ca.pem"   # the CA of the https:// URLs below
//!
//! [[banks]]
//! name = "bank1"
//! id = "…32 hex…"
//! url = "https://127.0.0.1:7801"
//! certificate = "…hex…"
//!
//! [[services]]
//! name = "cpp1"
//! id = "…32 hex…"
//! role = "cpp"            # cpp | mpp | dc
//! region = "eu"
//! url = "https://127.0.0.1:7811"
//! certificate = "…hex…"
//! bank = "bank1"          # CPP, MPP: its home bank
//! account = "cpp:cpp1"    # CPP, MPP: its own account there
//! ```
//!
//! [`Directory::resolve`] checks it all (each certificate under the scheme
//! root, of the right role, for the right id; names and ids unique; one DC
//! per region that has processors; home banks listed) and gives a
//! [`ResolvedDirectory`] of parsed values, which the services use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mpay_identity::{Certificate, PartyId, Role, Timestamp, TrustStore, hex_bytes};
use mpay_money::Currency;
use mpay_wire::Decode;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, invalid, read_text, write_text};

/// Longest service, bank or region name.
pub const NAME_LEN_MAX: usize = 48;

/// The directory file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    /// The one currency of the network, e.g. `EUR`.
    pub currency: String,
    /// Hex of the scheme root certificate's wire bytes (role `SchemeRoot`).
    pub scheme_root: String,
    /// Every bank.
    #[serde(default)]
    pub banks: Vec<BankEntry>,
    /// Every CPP, MPP and DC.
    #[serde(default)]
    pub services: Vec<ServiceEntry>,
    /// PEM file of the network's TLS CA: the one root every service and
    /// client of the network trusts for `https://` URLs. None: no TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<String>,
}

/// A bank.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BankEntry {
    /// Its name (`bank1`), what configs refer to.
    pub name: String,
    /// Its party id, 32 hex digits.
    pub id: String,
    /// Base URL of its HTTP API.
    pub url: String,
    /// Hex of its certificate (role `Bank`, issued by the scheme root).
    pub certificate: String,
}

/// What a service is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ServiceRole {
    /// Customer payment processor.
    Cpp,
    /// Merchant payment processor.
    Mpp,
    /// Data center.
    Dc,
}

impl ServiceRole {
    /// The certificate role of such a service.
    pub fn certificate_role(self) -> Role {
        match self {
            ServiceRole::Cpp => Role::Cpp,
            ServiceRole::Mpp => Role::Mpp,
            ServiceRole::Dc => Role::DataCenter,
        }
    }

    /// `cpp`, `mpp`, `dc`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceRole::Cpp => "cpp",
            ServiceRole::Mpp => "mpp",
            ServiceRole::Dc => "dc",
        }
    }
}

/// A CPP, MPP or DC.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntry {
    /// Its name (`cpp1`, `mpp2`, `dc1`).
    pub name: String,
    /// Its party id, 32 hex digits.
    pub id: String,
    /// What it is.
    pub role: ServiceRole,
    /// Its region (`eu`, `us`, …).
    pub region: String,
    /// Base URL of its HTTP API, e.g. `http://127.0.0.1:7811`.
    pub url: String,
    /// Hex of its certificate (role Cpp/Mpp/DataCenter, issued by the
    /// scheme root).
    pub certificate: String,
    /// CPP, MPP: the name of its home bank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank: Option<String>,
    /// CPP, MPP: its own account at that bank (`cpp:cpp1`, `mpp:mpp1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

fn parse_id(what: &str, text: &str) -> Result<PartyId, ConfigError> {
    PartyId::from_hex(text).ok_or_else(|| invalid(format!("{what}: id is not 32 hex digits")))
}

fn parse_certificate(what: &str, text: &str) -> Result<Certificate, ConfigError> {
    let bytes =
        hex_bytes(text).ok_or_else(|| invalid(format!("{what}: certificate is not hex")))?;
    Certificate::from_wire(&bytes).map_err(|e| invalid(format!("{what}: certificate: {e}")))
}

fn check_name(what: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= NAME_LEN_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} `{name}`: names are 1..={NAME_LEN_MAX} characters of [A-Za-z0-9._-]"
        )))
    }
}

fn check_url(what: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(invalid(format!("{what}: url `{url}` is not http(s)://")))
    }
}

impl BankEntry {
    /// Its party id.
    pub fn party_id(&self) -> Result<PartyId, ConfigError> {
        parse_id(&format!("bank {}", self.name), &self.id)
    }

    /// Its certificate, parsed (not yet checked).
    pub fn parse_certificate(&self) -> Result<Certificate, ConfigError> {
        parse_certificate(&format!("bank {}", self.name), &self.certificate)
    }
}

impl ServiceEntry {
    /// Its party id.
    pub fn party_id(&self) -> Result<PartyId, ConfigError> {
        parse_id(&format!("service {}", self.name), &self.id)
    }

    /// Its certificate, parsed (not yet checked).
    pub fn parse_certificate(&self) -> Result<Certificate, ConfigError> {
        parse_certificate(&format!("service {}", self.name), &self.certificate)
    }
}

impl Directory {
    /// Reads a directory TOML file (parsed, not yet checked: see
    /// [`Directory::resolve`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Directory, ConfigError> {
        let path = path.as_ref();
        let directory: Directory =
            toml::from_str(&read_text(path)?).map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        // The process now trusts this network's CA for clients made
        // without one (`CppClient::new`, `BankClient::new`, …).
        if let Some(ca) = &directory.tls_ca {
            mpay_tls::set_default_ca(Path::new(ca));
        }
        Ok(directory)
    }

    /// Writes the directory as TOML (temporary file, then rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        let text = toml::to_string(self).map_err(|e| invalid(format!("directory: {e}")))?;
        write_text(path.as_ref(), &text)
    }

    /// The bank named `name`.
    pub fn bank(&self, name: &str) -> Option<&BankEntry> {
        self.banks.iter().find(|b| b.name == name)
    }

    /// The bank with party id `id`.
    pub fn bank_by_id(&self, id: PartyId) -> Option<&BankEntry> {
        self.banks.iter().find(|b| b.party_id().ok() == Some(id))
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceEntry> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The service with party id `id`.
    pub fn service_by_id(&self, id: PartyId) -> Option<&ServiceEntry> {
        self.services.iter().find(|s| s.party_id().ok() == Some(id))
    }

    /// The DC of `region`.
    pub fn dc_of_region(&self, region: &str) -> Option<&ServiceEntry> {
        self.services
            .iter()
            .find(|s| s.role == ServiceRole::Dc && s.region == region)
    }

    /// Every service of `role`.
    pub fn services_of_role(&self, role: ServiceRole) -> impl Iterator<Item = &ServiceEntry> {
        self.services.iter().filter(move |s| s.role == role)
    }

    /// The network's currency.
    pub fn currency(&self) -> Result<Currency, ConfigError> {
        let code: [u8; 3] = self
            .currency
            .as_bytes()
            .try_into()
            .map_err(|_| invalid("currency must be a 3-letter ISO 4217 code"))?;
        Currency::new(code).map_err(|e| invalid(format!("currency: {e}")))
    }

    /// The scheme root's certificate, checked: role `SchemeRoot`,
    /// self-signed, valid at `now`.
    pub fn scheme_root_certificate(&self, now: Timestamp) -> Result<Certificate, ConfigError> {
        let root = parse_certificate("scheme root", &self.scheme_root)?;
        if root.body.role != Role::SchemeRoot || root.body.issuer != root.subject() {
            return Err(invalid(
                "scheme root: not a self-issued SchemeRoot certificate",
            ));
        }
        root.check_signed_by(root.keys(), now)
            .map_err(|e| invalid(format!("scheme root: {e}")))?;
        Ok(root)
    }

    /// Checks the whole directory at `now` and returns it parsed.
    pub fn resolve(&self, now: Timestamp) -> Result<ResolvedDirectory, ConfigError> {
        let currency = self.currency()?;
        let root = self.scheme_root_certificate(now)?;
        let mut trust = TrustStore::new();
        trust.add_issuer(root.clone());
        let mut names = BTreeSet::new();
        let mut ids = BTreeSet::new();
        let mut banks = Vec::with_capacity(self.banks.len());
        for entry in &self.banks {
            check_name("bank", &entry.name)?;
            check_url(&format!("bank {}", entry.name), &entry.url)?;
            let id = entry.party_id()?;
            let certificate = entry.parse_certificate()?;
            check_entry_certificate(
                &trust,
                &format!("bank {}", entry.name),
                id,
                &certificate,
                Role::Bank,
                now,
            )?;
            if !names.insert(entry.name.clone()) || !ids.insert(id) {
                return Err(invalid(format!(
                    "bank {}: name or id used twice",
                    entry.name
                )));
            }
            banks.push(ResolvedBank {
                name: entry.name.clone(),
                id,
                url: entry.url.trim_end_matches('/').to_owned(),
                certificate,
            });
        }
        let mut services = Vec::with_capacity(self.services.len());
        let mut dc_regions = BTreeMap::new();
        for entry in &self.services {
            let what = format!("service {}", entry.name);
            check_name("service", &entry.name)?;
            check_name("region", &entry.region)?;
            check_url(&what, &entry.url)?;
            let id = entry.party_id()?;
            let certificate = entry.parse_certificate()?;
            check_entry_certificate(
                &trust,
                &what,
                id,
                &certificate,
                entry.role.certificate_role(),
                now,
            )?;
            if !names.insert(entry.name.clone()) || !ids.insert(id) {
                return Err(invalid(format!("{what}: name or id used twice")));
            }
            let home = match entry.role {
                ServiceRole::Dc => {
                    if dc_regions
                        .insert(entry.region.clone(), entry.name.clone())
                        .is_some()
                    {
                        return Err(invalid(format!(
                            "{what}: region {} has two DCs",
                            entry.region
                        )));
                    }
                    None
                }
                ServiceRole::Cpp | ServiceRole::Mpp => {
                    let bank = entry
                        .bank
                        .as_deref()
                        .ok_or_else(|| invalid(format!("{what}: no home bank")))?;
                    let account = entry
                        .account
                        .as_deref()
                        .ok_or_else(|| invalid(format!("{what}: no account")))?;
                    if !banks.iter().any(|b| b.name == bank) {
                        return Err(invalid(format!("{what}: unknown bank `{bank}`")));
                    }
                    mpay_bank::AccountId::parse(account)
                        .map_err(|e| invalid(format!("{what}: account: {e}")))?;
                    Some((bank.to_owned(), account.to_owned()))
                }
            };
            services.push(ResolvedService {
                name: entry.name.clone(),
                id,
                role: entry.role,
                region: entry.region.clone(),
                url: entry.url.trim_end_matches('/').to_owned(),
                certificate,
                home,
            });
        }
        for service in &services {
            if service.role != ServiceRole::Dc && !dc_regions.contains_key(&service.region) {
                return Err(invalid(format!(
                    "service {}: region {} has no DC",
                    service.name, service.region
                )));
            }
        }
        let https = banks
            .iter()
            .map(|b| &b.url)
            .chain(services.iter().map(|s| &s.url))
            .any(|u| u.starts_with("https://"));
        if https && self.tls_ca.is_none() {
            return Err(invalid(
                "https:// URLs need tls_ca, the network's CA certificate",
            ));
        }
        Ok(ResolvedDirectory {
            currency,
            root,
            banks,
            services,
            tls_ca: self.tls_ca.as_ref().map(std::path::PathBuf::from),
        })
    }
}

fn check_entry_certificate(
    trust: &TrustStore,
    what: &str,
    id: PartyId,
    certificate: &Certificate,
    role: Role,
    now: Timestamp,
) -> Result<(), ConfigError> {
    if certificate.subject() != id {
        return Err(invalid(format!(
            "{what}: the certificate is of {}, not {id}",
            certificate.subject()
        )));
    }
    trust
        .check_role(certificate, role, now)
        .map_err(|e| invalid(format!("{what}: {e}")))
}

/// A bank of a [`ResolvedDirectory`].
#[derive(Clone, Debug)]
pub struct ResolvedBank {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: PartyId,
    /// Its base URL (no trailing slash).
    pub url: String,
    /// Its certificate, checked under the scheme root.
    pub certificate: Certificate,
}

/// A service of a [`ResolvedDirectory`].
#[derive(Clone, Debug)]
pub struct ResolvedService {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: PartyId,
    /// What it is.
    pub role: ServiceRole,
    /// Its region.
    pub region: String,
    /// Its base URL (no trailing slash).
    pub url: String,
    /// Its certificate, checked under the scheme root.
    pub certificate: Certificate,
    /// CPP, MPP: (home bank name, own account there).
    pub home: Option<(String, String)>,
}

/// A directory whose every entry was checked ([`Directory::resolve`]).
#[derive(Clone, Debug)]
pub struct ResolvedDirectory {
    /// The network's currency.
    pub currency: Currency,
    /// The scheme root's certificate.
    pub root: Certificate,
    /// The banks.
    pub banks: Vec<ResolvedBank>,
    /// The services.
    pub services: Vec<ResolvedService>,
    /// PEM file of the network's TLS CA, if it uses TLS.
    pub tls_ca: Option<std::path::PathBuf>,
}

impl ResolvedDirectory {
    /// The bank named `name`.
    pub fn bank(&self, name: &str) -> Option<&ResolvedBank> {
        self.banks.iter().find(|b| b.name == name)
    }

    /// The bank with id `id`.
    pub fn bank_by_id(&self, id: PartyId) -> Option<&ResolvedBank> {
        self.banks.iter().find(|b| b.id == id)
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&ResolvedService> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The service with id `id`.
    pub fn service_by_id(&self, id: PartyId) -> Option<&ResolvedService> {
        self.services.iter().find(|s| s.id == id)
    }

    /// The DC of `region`.
    pub fn dc_of_region(&self, region: &str) -> Option<&ResolvedService> {
        self.services
            .iter()
            .find(|s| s.role == ServiceRole::Dc && s.region == region)
    }

    /// A trust store with the scheme root and every CPP and MPP as issuers
    /// (they certify customer devices and merchants). Whoever checks a
    /// customer's or merchant's certificate must still check that its issuer
    /// is the right processor.
    pub fn trust_store(&self) -> TrustStore {
        let mut trust = TrustStore::new();
        trust.add_issuer(self.root.clone());
        for service in &self.services {
            if matches!(service.role, ServiceRole::Cpp | ServiceRole::Mpp) {
                trust.add_issuer(service.certificate.clone());
            }
        }
        trust
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpay_identity::{CertificateBody, SecretKeys, Suite, hex_string};
    use mpay_wire::Encode;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn cert(
        keys: &SecretKeys,
        subject: PartyId,
        role: Role,
        issuer: PartyId,
        issuer_keys: &SecretKeys,
    ) -> Certificate {
        Certificate::issue(
            CertificateBody {
                subject,
                role,
                keys: keys.public(),
                limits: None,
                issued_at: Timestamp(0),
                expires_at: Timestamp(1_000_000),
                issuer,
            },
            issuer_keys,
        )
    }

    fn sample() -> Directory {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let root_keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let root = PartyId::from_u64(1);
        let root_cert = cert(&root_keys, root, Role::SchemeRoot, root, &root_keys);
        let mut entry = |n: u64, role: Role| {
            let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
            let id = PartyId::from_u64(n);
            (
                id.to_hex(),
                hex_string(&cert(&keys, id, role, root, &root_keys).to_wire()),
            )
        };
        let (bank_id, bank_cert) = entry(2, Role::Bank);
        let (cpp_id, cpp_cert) = entry(3, Role::Cpp);
        let (dc_id, dc_cert) = entry(4, Role::DataCenter);
        Directory {
            currency: "EUR".into(),
            scheme_root: hex_string(&root_cert.to_wire()),
            banks: vec![BankEntry {
                name: "bank1".into(),
                id: bank_id,
                url: "http://127.0.0.1:1".into(),
                certificate: bank_cert,
            }],
            services: vec![
                ServiceEntry {
                    name: "cpp1".into(),
                    id: cpp_id,
                    role: ServiceRole::Cpp,
                    region: "eu".into(),
                    url: "http://127.0.0.1:2".into(),
                    certificate: cpp_cert,
                    bank: Some("bank1".into()),
                    account: Some("cpp:cpp1".into()),
                },
                ServiceEntry {
                    name: "dc1".into(),
                    id: dc_id,
                    role: ServiceRole::Dc,
                    region: "eu".into(),
                    url: "http://127.0.0.1:3".into(),
                    certificate: dc_cert,
                    bank: None,
                    account: None,
                },
            ],
            tls_ca: None,
        }
    }

    #[test]
    fn resolves_and_round_trips() {
        let directory = sample();
        let resolved = directory.resolve(Timestamp(10)).unwrap();
        assert_eq!(resolved.currency, Currency::EUR);
        assert_eq!(resolved.dc_of_region("eu").unwrap().name, "dc1");
        assert_eq!(
            resolved.service("cpp1").unwrap().home,
            Some(("bank1".into(), "cpp:cpp1".into()))
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.toml");
        directory.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("role = \"cpp\""), "{text}");
        assert_eq!(Directory::load(&path).unwrap(), directory);
        assert_eq!(
            directory.service_by_id(PartyId::from_u64(3)).unwrap().name,
            "cpp1"
        );
    }

    #[test]
    fn refuses_wrong_roles_ids_regions_and_banks() {
        let mut d = sample();
        d.services[1].role = ServiceRole::Mpp;
        assert!(d.resolve(Timestamp(10)).is_err(), "a DC certificate as MPP");
        let mut d = sample();
        d.services[0].id = PartyId::from_u64(9).to_hex();
        assert!(
            d.resolve(Timestamp(10)).is_err(),
            "certificate of another id"
        );
        let mut d = sample();
        d.services[1].region = "us".into();
        assert!(d.resolve(Timestamp(10)).is_err(), "a region without DC");
        let mut d = sample();
        d.services[0].bank = Some("nobank".into());
        assert!(d.resolve(Timestamp(10)).is_err(), "unknown home bank");
        let d = sample();
        assert!(d.resolve(Timestamp(2_000_000)).is_err(), "expired");
        let mut d = sample();
        d.currency = "EURO".into();
        assert!(d.resolve(Timestamp(10)).is_err());
    }
}
