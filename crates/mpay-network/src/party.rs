//! A customer's or a merchant's own file, and enrolment, which makes it.
//!
//! The file (TOML, readable by its owner only) holds the party's name, its
//! processor, the network folder, the path of its keys and the certificate
//! its processor issued; a merchant's also holds its bearer token at the
//! MPP. [`PartyFile::customer`] and [`PartyFile::merchant`] turn it into
//! the device that pays or the terminal that is paid
//! ([`mpay_api::device`]), with the processor found in the network
//! folder's directory.

use std::path::{Path, PathBuf};

use mpay_api::device::{CustomerDevice, DeviceError, MerchantTerminal};
use mpay_api::semops::{CppClient, EnrolCustomer, EnrolMerchant, MppClient};
use mpay_identity::{Certificate, PartyId, Role, SecretKeys, Suite, hex_string};
use mpay_money::Currency;
use mpay_semops::SignedTrans;
use mpay_wire::Encode;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, read_keys, read_text, write_keys};
use crate::directory::{Directory, ResolvedDirectory, ResolvedService, ServiceRole};
use crate::provision::{
    DIRECTORY_FILE, Operators, ProvisionError, grant_enrolment_mandate, write_private,
};
use crate::wall_clock;

/// What is wrong with a party's file, its network folder, or what its
/// processor answered.
#[derive(Debug, thiserror::Error)]
pub enum PartyError {
    /// The party's file, its keys or the network's directory is missing or
    /// wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The network folder's operators' file, a mandate, or writing a file.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// Signing, sealing or asking the processor.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The file or the directory says something that cannot be.
    #[error("{0}")]
    Invalid(String),
}

crate::device_error_from!(PartyError);

/// A customer's or merchant's own file.
#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct PartyFile {
    /// The party's name: its account at its processor.
    pub name: String,
    /// Its processor's directory name (CPP for a customer, MPP for a merchant).
    pub processor: String,
    /// The network folder.
    pub network: PathBuf,
    /// Hex party id.
    pub id: String,
    /// Path of its secret keys (hex).
    pub keys: PathBuf,
    /// Hex of its certificate.
    pub certificate: String,
    /// Merchant: its bearer token at the MPP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl std::fmt::Debug for PartyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartyFile")
            .field("name", &self.name)
            .field("processor", &self.processor)
            .field("id", &self.id)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

impl PartyFile {
    /// Reads the party's file at `path`.
    pub fn load(path: &Path) -> Result<PartyFile, PartyError> {
        let text = read_text(path)?;
        toml::from_str(&text).map_err(|e| {
            ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            }
            .into()
        })
    }

    /// Writes it to `path`, readable by the owner only.
    pub fn save(&self, path: &Path) -> Result<(), PartyError> {
        let text = toml::to_string(self)
            .map_err(|e| PartyError::Invalid(format!("encoding the party's file: {e}")))?;
        Ok(write_private(path, &text)?)
    }

    /// The party's id.
    pub fn id(&self) -> Result<PartyId, PartyError> {
        PartyId::from_hex(&self.id)
            .ok_or_else(|| PartyError::Invalid("party id: not 32 hex digits".into()))
    }

    /// The party's keys.
    pub fn keys(&self) -> Result<SecretKeys, PartyError> {
        Ok(read_keys(&self.keys)?)
    }

    /// The network's directory.
    pub fn directory(&self) -> Result<Directory, PartyError> {
        Ok(Directory::load(self.network.join(DIRECTORY_FILE))?)
    }

    /// The network's one currency.
    pub fn currency(&self) -> Result<Currency, PartyError> {
        Ok(self.directory()?.currency()?)
    }

    /// The directory with every certificate in it checked now.
    pub fn resolved(&self) -> Result<ResolvedDirectory, PartyError> {
        Ok(self.directory()?.resolve(wall_clock())?)
    }

    /// The party's processor in `resolved`.
    pub fn processor_in<'a>(
        &self,
        resolved: &'a ResolvedDirectory,
    ) -> Result<&'a ResolvedService, PartyError> {
        resolved
            .service(&self.processor)
            .ok_or_else(|| PartyError::Invalid(format!("no `{}` in the directory", self.processor)))
    }

    /// The customer's device, paying through its CPP.
    pub fn customer(&self) -> Result<CustomerDevice, PartyError> {
        let resolved = self.resolved()?;
        let cpp = self.processor_in(&resolved)?;
        Ok(CustomerDevice {
            name: self.name.clone(),
            id: self.id()?,
            keys: self.keys()?,
            cpp: cpp.id,
            cpp_certificate: cpp.certificate.clone(),
            client: CppClient::new(&cpp.url)?,
        })
    }

    /// The merchant's terminal at its MPP.
    pub fn merchant(&self) -> Result<MerchantTerminal, PartyError> {
        let resolved = self.resolved()?;
        let mpp = self.processor_in(&resolved)?;
        let token = self
            .token
            .clone()
            .ok_or_else(|| PartyError::Invalid("this file holds no merchant token".into()))?;
        Ok(MerchantTerminal {
            id: self.id()?,
            keys: self.keys()?,
            mpp: mpp.id,
            client: MppClient::new(&mpp.url)?,
            token,
        })
    }
}

/// The URL of service `name` in the network folder `network`'s directory.
pub fn service_url(network: &Path, name: &str) -> Result<String, PartyError> {
    let directory = Directory::load(network.join(DIRECTORY_FILE))?;
    Ok(directory
        .service(name)
        .ok_or_else(|| PartyError::Invalid(format!("no `{name}` in the directory")))?
        .url
        .clone())
}

/// The certificate of the merchant of `trans`, as the customer's device
/// finds it: from the MPP the TRANS names (through the directory), issued
/// by that MPP, trusted, and holding the key the TRANS is signed with.
/// Shipping details are sealed to it.
pub async fn merchant_certificate(
    resolved: &ResolvedDirectory,
    trans: &SignedTrans,
) -> Result<Certificate, PartyError> {
    let body = trans.unverified_body();
    let mpp = resolved
        .service_by_id(body.mpp)
        .filter(|s| s.role == ServiceRole::Mpp)
        .ok_or_else(|| {
            PartyError::Invalid("the TRANS names an MPP that is not in the directory".into())
        })?;
    let certificate = MppClient::new(&mpp.url)?
        .merchant_certificate(body.merchant)
        .await?;
    let now = wall_clock();
    if certificate.subject() != body.merchant || certificate.body.issuer != mpp.id {
        return Err(PartyError::Invalid(
            "the MPP gave a certificate that is not its merchant's".into(),
        ));
    }
    resolved
        .trust_store()
        .check_role(&certificate, Role::Merchant, now)
        .map_err(|e| PartyError::Invalid(format!("the merchant's certificate: {e}")))?;
    trans.verify(&certificate, now).map_err(|e| {
        PartyError::Invalid(format!(
            "the TRANS is not signed by the merchant's key: {e}"
        ))
    })?;
    Ok(certificate)
}

/// Enrolment of a party and its device at a processor: new keys, the
/// bank's mandate for the processor, the processor's certificate, and the
/// party's file written.
#[derive(Clone)]
pub struct Enrolment {
    /// The network folder.
    pub network: PathBuf,
    /// The processor (a CPP for a customer, an MPP for a merchant).
    pub processor: String,
    /// The party's name (its account at the processor).
    pub name: String,
    /// Its bank (directory name).
    pub bank: String,
    /// Its account at that bank (default: `cust:<name>` or `shop:<name>`).
    pub account: Option<String>,
    /// Where to write the party's file; its keys go beside it (`.keys`).
    pub out: PathBuf,
    /// The processor operator's token (default: the folder's operators' file).
    pub operator_token: Option<String>,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("processor", &self.processor)
            .field("name", &self.name)
            .field("bank", &self.bank)
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

impl Enrolment {
    /// Enrols a customer at its CPP with `pin`; its certificate.
    pub async fn customer(&self, pin: &str) -> Result<Certificate, PartyError> {
        let keys = fresh_keys()?;
        let account = self.mandated_account("cust").await?;
        let url = self.processor_url()?;
        let certificate = CppClient::new(&url)?
            .enroll_customer(
                &self.operator_token()?,
                &EnrolCustomer::new(&self.name, &self.bank, &account, pin, &keys.public()),
            )
            .await?;
        self.write(&keys, &certificate, None)?;
        Ok(certificate)
    }

    /// Enrols a merchant at its MPP; its certificate.
    pub async fn merchant(&self) -> Result<Certificate, PartyError> {
        let keys = fresh_keys()?;
        let account = self.mandated_account("shop").await?;
        let url = self.processor_url()?;
        let (certificate, token) = MppClient::new(&url)?
            .enroll_merchant(
                &self.operator_token()?,
                &EnrolMerchant::new(&self.name, &self.bank, &account, &keys.public()),
            )
            .await?;
        self.write(&keys, &certificate, Some(token))?;
        Ok(certificate)
    }

    /// The party's bank account, with the processor's mandate on it granted.
    async fn mandated_account(&self, prefix: &str) -> Result<String, PartyError> {
        let account = self
            .account
            .clone()
            .unwrap_or_else(|| format!("{prefix}:{}", self.name));
        grant_enrolment_mandate(&self.network, &self.bank, &account, &self.processor).await?;
        Ok(account)
    }

    fn operator_token(&self) -> Result<String, PartyError> {
        match &self.operator_token {
            Some(token) => Ok(token.clone()),
            None => Ok(Operators::load(&self.network)?
                .token(&self.processor)?
                .to_owned()),
        }
    }

    fn processor_url(&self) -> Result<String, PartyError> {
        service_url(&self.network, &self.processor)
    }

    fn write(
        &self,
        keys: &SecretKeys,
        certificate: &Certificate,
        token: Option<String>,
    ) -> Result<(), PartyError> {
        let keys_path = self.out.with_extension("keys");
        write_keys(&keys_path, keys)?;
        PartyFile {
            name: self.name.clone(),
            processor: self.processor.clone(),
            network: canonical(&self.network)?,
            id: certificate.subject().to_hex(),
            keys: canonical(&keys_path)?,
            certificate: hex_string(&certificate.to_wire()),
            token,
        }
        .save(&self.out)
    }
}

fn canonical(path: &Path) -> Result<PathBuf, PartyError> {
    path.canonicalize().map_err(|error| {
        ProvisionError::Io {
            what: format!("resolving {}", path.display()),
            error,
        }
        .into()
    })
}

fn fresh_keys() -> Result<SecretKeys, PartyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| PartyError::Invalid(format!("OS randomness: {e}")))?;
    Ok(SecretKeys::generate(
        Suite::Ed25519X25519,
        &mut ChaCha20Rng::from_seed(seed),
    ))
}

/// The CPP's operator unlocks customer `name` (locked out by wrong PINs).
pub async fn unlock(network: &Path, cpp: &str, name: &str) -> Result<(), PartyError> {
    let url = service_url(network, cpp)?;
    Ok(CppClient::new(&url)?
        .unlock(Operators::load(network)?.token(cpp)?, name)
        .await?)
}

/// The CPP's operator gives customer `name` a new PIN.
pub async fn set_pin(network: &Path, cpp: &str, name: &str, pin: &str) -> Result<(), PartyError> {
    let url = service_url(network, cpp)?;
    Ok(CppClient::new(&url)?
        .set_pin(Operators::load(network)?.token(cpp)?, name, pin)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(token: Option<&str>) -> PartyFile {
        PartyFile {
            name: "ana".into(),
            processor: "cpp1".into(),
            network: "/nowhere".into(),
            id: "ab".repeat(16),
            keys: "/nowhere/ana.keys".into(),
            certificate: "00".into(),
            token: token.map(str::to_owned),
        }
    }

    #[test]
    fn the_file_round_trips_owner_only_and_keeps_its_token_out_of_debug() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("ana.toml");
        file(Some("secret-token")).save(&path).expect("saved");
        let back = PartyFile::load(&path).expect("loaded");
        assert_eq!(back.token.as_deref(), Some("secret-token"));
        assert_eq!(back.id().expect("an id").to_hex(), "ab".repeat(16));
        assert!(!format!("{back:?}").contains("secret-token"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        }
    }

    #[test]
    fn a_wrong_file_is_named_and_a_bad_id_refused() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, "name = 3\n").expect("written");
        let error = PartyFile::load(&path).expect_err("refused");
        assert!(error.to_string().contains("broken.toml"), "{error}");
        let mut bad = file(None);
        bad.id = "xyz".into();
        assert!(matches!(bad.id(), Err(PartyError::Invalid(_))));
        assert!(
            file(None)
                .merchant()
                .expect_err("no directory")
                .to_string()
                .contains("network.toml")
        );
    }
}
